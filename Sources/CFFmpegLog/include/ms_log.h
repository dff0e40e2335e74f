#ifndef MEDIASPOOL_FFMPEG_LOG_H
#define MEDIASPOOL_FFMPEG_LOG_H
// FFmpeg's log, routed to the daemon's logger. av_log_set_callback takes a
// va_list callback, which Swift cannot write; log.c's callback formats the
// line (with FFmpeg's "[h264 @ 0x…] " prefix) and hands it on with the job id
// the calling thread set. Lines above `threshold` (less severe) are dropped
// before formatting. Its state lives once, in log.c.

/// Receives one formatted line: FFmpeg's level, the thread's job id ("" for
/// none), the line.
typedef void (*ms_log_sink)(int level, const char *job, const char *line);

/// Routes FFmpeg's log to `sink`, dropping lines less severe than `threshold`.
void ms_log_install(ms_log_sink sink, int threshold);

/// The job whose FFmpeg lines this thread logs from now on ("" for none).
void ms_log_set_job(const char *job);

#endif
