import CFFmpeg

/// A time base or an aspect ratio (FFmpeg's AVRational), by a name the
/// job code can use without importing the C module.
public typealias Rational = AVRational

/// Timestamps and time bases without reaching into FFmpeg's C API.
extension AVRational {
    /// The rational as a number (av_q2d): seconds per tick of a time base.
    public var doubleValue: Double { av_q2d(self) }
    /// 1/x (av_inv_q): a frame rate's time base.
    public var inverted: AVRational { av_inv_q(self) }
    /// A rate or ratio that is set (FFmpeg uses 0/x for "unknown").
    public var isKnown: Bool { num > 0 && den > 0 }
}

/// `ticks` in time base `from` expressed in time base `to`, rounded to the
/// nearest (av_rescale_q).
public func rescale(_ ticks: Int64, from: AVRational, to: AVRational) -> Int64 { av_rescale_q(ticks, from, to) }
