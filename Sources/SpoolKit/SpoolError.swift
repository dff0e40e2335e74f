import SystemPackage

/// The stable error codes of spool-v1.md. Producers and operators match on
/// the raw strings: never rename one.
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    case manifestInvalid = "MANIFEST_INVALID"
    case manifestTooLarge = "MANIFEST_TOO_LARGE"
    case idInvalid = "ID_INVALID"
    case idMismatch = "ID_MISMATCH"
    case idConflict = "ID_CONFLICT"
    case inputNotFound = "INPUT_NOT_FOUND"
    case inputNotAllowed = "INPUT_NOT_ALLOWED"
    case inputInvalid = "INPUT_INVALID"
    case unsupported = "UNSUPPORTED"
    case limitExceeded = "LIMIT_EXCEEDED"
    case outputNotAllowed = "OUTPUT_NOT_ALLOWED"
    case timeout = "TIMEOUT"
    case noSpace = "NO_SPACE"
    case ioError = "IO_ERROR"
    case interrupted = "INTERRUPTED"
    /// An operator's `mediaspool cancel` (an extension of spool v1's codes).
    case cancelled = "CANCELLED"
    case `internal` = "INTERNAL"

    public var retryable: Bool {
        switch self {
        case .timeout, .noSpace, .ioError, .interrupted: return true
        default: return false
        }
    }
}

/// An error of a job or of the spool: a stable code, a message a person can
/// act on, the step it happened in, and the underlying cause when there is one.
public struct SpoolError: Error, CustomStringConvertible, Sendable {
    public var code: ErrorCode
    public var message: String
    public var step: String?
    public var cause: (any Error & Sendable)?

    public init(_ code: ErrorCode, _ message: String, step: String? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.step = step
        self.cause = cause
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// Maps an errno met while writing or moving files to the spool's codes.
    public static func io(_ errno: Errno, _ what: String, step: String? = nil) -> SpoolError {
        switch errno {
        case .noSpace, .diskQuotaExceeded:
            return SpoolError(.noSpace, "\(what): no space left on device; free disk space (the job is retried)", step: step, cause: errno)
        default:
            return SpoolError(.ioError, "\(what): \(errno)", step: step, cause: errno)
        }
    }
}
