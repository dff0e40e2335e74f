import CFFmpeg
import CFFmpegLog

/// FFmpeg's own log lines (av_log), sent to a sink instead of stderr, each
/// with the id of the job whose thread logged it. Without this, a daemon's
/// journal gets every encoder's statistics and warnings as bare stderr
/// lines nobody can tie to a job.
///
/// Lines from FFmpeg's worker threads (frame threads, x264's own threads)
/// carry no job id: only the thread that runs a job sets it.
public enum FFmpegLog {
    public enum Level: Int32, Sendable {
        case error = 16, warning = 24, info = 32, verbose = 40, debug = 48
        init(avLevel: Int32) {
            self = avLevel <= 16 ? .error : avLevel <= 24 ? .warning : avLevel <= 32 ? .info : avLevel <= 40 ? .verbose : .debug
        }
    }

    /// The sink: FFmpeg's level, the job id ("" when none) and the line.
    /// A C function pointer, because FFmpeg calls it from any thread.
    public typealias Sink = @convention(c) (Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void

    /// Routes every line at `threshold` or more severe to `sink`, process-wide.
    public static func install(threshold: Level, sink: Sink) {
        ms_log_install(sink, threshold.rawValue)
    }

    /// The job whose lines the calling thread logs until the next call (nil: none).
    public static func setJob(_ id: String?) {
        ms_log_set_job(id ?? "")
    }

    /// Decodes a sink call: level and job, and the line without its newline
    /// (nil for an empty one: FFmpeg sometimes logs a bare newline).
    public static func decode(_ level: Int32, _ job: UnsafePointer<CChar>?, _ line: UnsafePointer<CChar>?) -> (level: Level, job: String?, line: String)? {
        guard let line else { return nil }
        var text = String(cString: line)
        while text.last == "\n" || text.last == "\r" { text.removeLast() }
        if text.allSatisfy({ $0 == " " || $0 == "\t" }) { return nil }
        let j = job.map { String(cString: $0) }
        return (Level(avLevel: level), j?.isEmpty == false ? j : nil, text)
    }
}
