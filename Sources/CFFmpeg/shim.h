#ifndef MEDIASPOOL_CFFMPEG_SHIM_H
#define MEDIASPOOL_CFFMPEG_SHIM_H
// Thin shim: only what Swift cannot import from the libav* headers
// (function-like macros and constants built from them).
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libswscale/swscale.h>
#include <libswresample/swresample.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/imgutils.h>
#include <libavutil/sha.h>
#include <libavutil/mem.h>
#include <libavutil/display.h>
#include <libavutil/mastering_display_metadata.h>

static inline int ms_averror(int e) { return AVERROR(e); }
static inline int ms_averror_eof(void) { return AVERROR_EOF; }
static inline int ms_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int ms_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int ms_averror_exit(void) { return AVERROR_EXIT; }
static inline int ms_averror_decoder_not_found(void) { return AVERROR_DECODER_NOT_FOUND; }
static inline int ms_averror_demuxer_not_found(void) { return AVERROR_DEMUXER_NOT_FOUND; }
static inline int ms_averror_encoder_not_found(void) { return AVERROR_ENCODER_NOT_FOUND; }
static inline int ms_averror_filter_not_found(void) { return AVERROR_FILTER_NOT_FOUND; }
static inline int64_t ms_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline int ms_time_base(void) { return AV_TIME_BASE; }

// FFmpeg 5.x's libx265 wrapper av_mallocs 8 bytes per frame whose
// reordered_opaque is set (decoders set it to AV_NOPTS_VALUE) and x265 3.5
// never hands them back: a leak per encoded frame, found by LeakSanitizer.
// We never use reordered_opaque, so it is cleared before a frame is encoded.
// (The field is deprecated and gone in FFmpeg 7; hence the shim.)
static inline void ms_frame_clear_reordered_opaque(AVFrame *f) {
#if LIBAVUTIL_VERSION_MAJOR < 59
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    if (f) f->reordered_opaque = 0;
#pragma GCC diagnostic pop
#endif
}

#endif
