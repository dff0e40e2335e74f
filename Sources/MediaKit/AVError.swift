import CFFmpeg

/// An FFmpeg error code (negative AVERROR value) with names for the ones
/// callers branch on. EAGAIN and EOF are states of the codec loops, not
/// failures: the loops in this module turn them into enum cases.
public struct AVError: Error, Equatable, Sendable, CustomStringConvertible {
    public let code: Int32

    public init(_ code: Int32) { self.code = code }

    public static let eof = AVError(ms_averror_eof())
    public static let again = AVError(ms_averror_eagain())
    public static let invalidData = AVError(ms_averror_invaliddata())
    /// The interrupt callback asked FFmpeg to stop.
    public static let exit = AVError(ms_averror_exit())
    public static let decoderNotFound = AVError(ms_averror_decoder_not_found())
    public static let demuxerNotFound = AVError(ms_averror_demuxer_not_found())
    public static let noMemory = AVError(ms_averror(ENOMEM))
    public static func errno(_ e: Int32) -> AVError { AVError(ms_averror(e)) }

    /// The POSIX errno behind this code, when it is one.
    public var posixErrno: Int32? { code < 0 && code > -4096 ? -code : nil }

    public var description: String {
        var buf = [CChar](repeating: 0, count: 256)
        av_strerror(code, &buf, buf.count)
        return String(cString: buf)
    }
}

/// Calls an FFmpeg function returning an int error code; throws below zero.
@discardableResult
@inline(__always)
func check(_ r: Int32) throws(AVError) -> Int32 {
    if r < 0 { throw AVError(r) }
    return r
}

/// av_max_alloc: the largest block FFmpeg's allocator hands out.
public func setMaxAllocation(_ bytes: Int) { av_max_alloc(bytes) }
