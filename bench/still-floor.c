// The decode floor of a still (issue 16): what the same libavcodec takes
// in-process to seek to the keyframe at or before T and decode every frame
// from there to the first one at or after T, with one thread (what each job
// gets when both workers are busy). No scaling, no encoding, no spool: a
// thumbnail job can only add to this (or save by skipping non-reference
// frames, which mediaspool does and this loop does not).
//   cc -O2 -o still-floor bench/still-floor.c $(pkg-config --cflags --libs libavformat libavcodec libavutil)
//   still-floor FILE T N     -> prints the seconds for N stills, and frames decoded per still
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static int still(const char *path, double at, int *decoded) {
    AVFormatContext *f = NULL;
    if (avformat_open_input(&f, path, NULL, NULL) < 0) return -1;
    // No avformat_find_stream_info: an MP4 header gives the decoder all it
    // needs (mediaspool's stills skip it too), and it would decode a frame.
    int vs = av_find_best_stream(f, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (vs < 0) return -1;
    AVStream *st = f->streams[vs];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    avcodec_parameters_to_context(c, st->codecpar);
    c->thread_count = 1;
    if (avcodec_open2(c, codec, NULL) < 0) return -1;
    int64_t start = f->start_time == AV_NOPTS_VALUE ? 0 : f->start_time;
    int64_t target = av_rescale_q(start + (int64_t)(at * AV_TIME_BASE), AV_TIME_BASE_Q, st->time_base);
    av_seek_frame(f, vs, target, AVSEEK_FLAG_BACKWARD);
    AVPacket *p = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    int done = 0, n = 0;
    while (!done) {
        int r = av_read_frame(f, p);
        if (r >= 0 && p->stream_index != vs) { av_packet_unref(p); continue; }
        avcodec_send_packet(c, r >= 0 ? p : NULL);
        av_packet_unref(p);
        while (avcodec_receive_frame(c, fr) >= 0) {
            n++;
            if (fr->best_effort_timestamp >= target) done = 1;
            av_frame_unref(fr);
            if (done) break;
        }
        if (r < 0) break;
    }
    *decoded = n;
    av_frame_free(&fr); av_packet_free(&p);
    avcodec_free_context(&c); avformat_close_input(&f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: still-floor FILE T N\n"); return 2; }
    av_log_set_level(AV_LOG_QUIET);
    double at = atof(argv[2]); int n = atoi(argv[3]), decoded = 0;
    double t0 = now();
    for (int i = 0; i < n; i++) if (still(argv[1], at, &decoded) < 0) { fprintf(stderr, "still-floor: cannot decode %s\n", argv[1]); return 1; }
    printf("%.4f %d\n", now() - t0, decoded);
    return 0;
}
