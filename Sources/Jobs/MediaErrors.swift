import MediaKit
import SpoolKit
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// FFmpeg's error codes in the spool's terms: the one mapping every job
/// type uses.
extension SpoolError {
    /// `writing`: the output being written, when the failure may be the
    /// disk's (a full disk or an I/O error while writing is NO_SPACE or
    /// IO_ERROR about the output, step write-output).
    static func media(_ e: AVError, _ what: String, step: String, job: JobContext, writing output: String? = nil) -> SpoolError {
        if e == .encoderNotFound {
            return SpoolError(.unsupported, "this build has no encoder for the requested codec", step: step == "compose" ? "encode" : step, cause: e)
        }
        if let output, let n = e.posixErrno, step == "write-output" || [ENOSPC, EDQUOT, EIO].contains(n) {
            return SpoolError.io(Errno(rawValue: n), "writing \(output)", step: "write-output")
        }
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
