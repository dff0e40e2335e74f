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

// FFmpeg's log, routed to the daemon's logger. av_log_set_callback takes a
// va_list callback, which Swift cannot write; this one formats the line
// (with FFmpeg's "[h264 @ 0x…] " prefix) and hands it on with the job id the
// calling thread set. Lines above `threshold` (less severe) are dropped
// before formatting. Only MediaKit calls these, so their statics exist once.
typedef void (*ms_log_sink)(int level, const char *job, const char *line);
// State lives in function-local statics: Swift's importer emits the static
// inline functions of a header but not its file-scope static variables.
static inline ms_log_sink *ms_log_sink_slot(void) { static ms_log_sink s; return &s; }
static inline int *ms_log_threshold_slot(void) { static int t = AV_LOG_WARNING; return &t; }
static inline char *ms_log_job_slot(void) { static __thread char j[160]; return j; }
static inline int *ms_log_prefix_slot(void) { static __thread int p = 1; return &p; }

static void ms_log_callback(void *avcl, int level, const char *fmt, va_list vl) {
    if (level > __atomic_load_n(ms_log_threshold_slot(), __ATOMIC_RELAXED)) return;
    ms_log_sink sink = __atomic_load_n(ms_log_sink_slot(), __ATOMIC_ACQUIRE);
    if (!sink) return;
    char line[1024];
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, ms_log_prefix_slot());
    sink(level, ms_log_job_slot(), line);
}

static inline void ms_log_install(ms_log_sink sink, int threshold) {
    __atomic_store_n(ms_log_threshold_slot(), threshold, __ATOMIC_RELAXED);
    __atomic_store_n(ms_log_sink_slot(), sink, __ATOMIC_RELEASE);
    av_log_set_callback(ms_log_callback);
}

/// The job whose FFmpeg lines this thread logs from now on ("" for none).
static inline void ms_log_set_job(const char *job) {
    char *slot = ms_log_job_slot();
    size_t n = job ? strnlen(job, 159) : 0;
    if (n) memcpy(slot, job, n);
    slot[n] = 0;
}

#endif
