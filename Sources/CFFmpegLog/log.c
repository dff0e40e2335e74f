#include "ms_log.h"
#include <stdarg.h>
#include <string.h>
#include <libavutil/log.h>

static ms_log_sink sink_fn;
static int threshold_level = AV_LOG_WARNING;
// Per thread: the job the worker runs, and FFmpeg's "print the prefix" state.
static __thread char job_id[160];
static __thread int print_prefix = 1;

static void callback(void *avcl, int level, const char *fmt, va_list vl) {
    if (level > __atomic_load_n(&threshold_level, __ATOMIC_RELAXED)) return;
    ms_log_sink sink = __atomic_load_n(&sink_fn, __ATOMIC_ACQUIRE);
    if (!sink) return;
    char line[1024];
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
    sink(level, job_id, line);
}

void ms_log_install(ms_log_sink sink, int threshold) {
    __atomic_store_n(&threshold_level, threshold, __ATOMIC_RELAXED);
    __atomic_store_n(&sink_fn, sink, __ATOMIC_RELEASE);
    av_log_set_callback(callback);
}

void ms_log_set_job(const char *job) {
    size_t n = job ? strnlen(job, sizeof job_id - 1) : 0;
    if (n) memcpy(job_id, job, n);
    job_id[n] = 0;
}
