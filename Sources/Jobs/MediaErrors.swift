import MediaKit
import SpoolKit
#if canImport(Glibc)
import Glibc
#endif

/// FFmpeg's error codes in the spool's terms.
extension SpoolError {
    static func media(_ e: AVError, _ what: String, step: String, job: JobContext) -> SpoolError {
        if e == .exit, job.cancelReason != .none {
            if job.cancelReason == .timeout { return job.timeoutError(step: step) }
            return SpoolError(.interrupted, "the daemon is stopping; the job will run again after restart", step: step, cause: e)
        }
        switch e.posixErrno {
        case ENOSPC, EDQUOT: return SpoolError(.noSpace, "\(what): no space left on device; free disk space (the job is retried)", step: step, cause: e)
        case E2BIG: return SpoolError(.limitExceeded, "\(what): more streams than the configured limit (limits.maxStreams = \(job.limits.maxStreams))", step: step, cause: e)
        case ENOMEM: return SpoolError(.limitExceeded, "\(what): needs more memory than allowed (limits.maxAllocBytes)", step: step, cause: e)
        case EIO, EAGAIN, EBUSY: return SpoolError(.ioError, "\(what): \(e)", step: step, cause: e)
        default: break
        }
        if e == .demuxerNotFound || e == .invalidData || e == .eof || e.posixErrno == EINVAL || e.posixErrno == EPERM {
            return SpoolError(.inputInvalid, "\(what): \(e == .eof ? "the file is empty or truncated" : e.description); check that the file is a complete audio, video or image file", step: step, cause: e)
        }
        if e == .decoderNotFound {
            return SpoolError(.unsupported, "\(what): no decoder for this codec in this build", step: step, cause: e)
        }
        return SpoolError(.inputInvalid, "\(what): \(e)", step: step, cause: e)
    }
}
