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

extension Frame {
    /// Lets the encoder choose the picture type (a decoded frame carries
    /// its source's I/P/B, which an encoder would otherwise follow).
    public func clearPictureType() { raw.pointee.pict_type = AV_PICTURE_TYPE_NONE }
}

extension Packet {
    /// Moves the packet's timestamps `ticks` earlier (those it has; a
    /// negative count moves them later), and forgets its byte position in
    /// the input (meaningless in the output).
    public func shiftTimestamps(by ticks: Int64) {
        if raw.pointee.pts != ms_nopts_value() { raw.pointee.pts -= ticks }
        if raw.pointee.dts != ms_nopts_value() { raw.pointee.dts -= ticks }
        raw.pointee.pos = -1
    }

    /// Keeps decoding order strictly increasing, as muxers require: a DTS
    /// at or before `last` moves to just after it (the PTS no earlier than
    /// the DTS). Returns the packet's DTS, if it has one.
    public func keepDTS(after last: Int64?) -> Int64? {
        guard let dts else { return nil }
        if let last, dts <= last {
            raw.pointee.dts = last + 1
            if let pts { raw.pointee.pts = max(pts, last + 1) }
        }
        return raw.pointee.dts
    }
}

extension AVSampleFormat {
    /// FFmpeg's name of the format (s16, fltp, …), for a filter's aformat.
    public var name: String { String(cString: av_get_sample_fmt_name(self)) }
}

/// Which frames a decoder may skip (AVCodecContext.skip_frame): a still
/// taken far into a file decodes only what the target frame needs.
public enum FrameSkip: Sendable {
    /// Decode every frame.
    case none
    /// Skip frames no other frame refers to (B-frames).
    case nonReference
    /// Decode keyframes only.
    case nonKey
}

extension Decoder {
    public var skip: FrameSkip {
        get {
            switch ctx.pointee.skip_frame {
            case AVDISCARD_NONKEY: .nonKey
            case AVDISCARD_NONREF: .nonReference
            default: .none
            }
        }
        set {
            ctx.pointee.skip_frame = switch newValue {
            case .none: AVDISCARD_DEFAULT
            case .nonReference: AVDISCARD_NONREF
            case .nonKey: AVDISCARD_NONKEY
            }
        }
    }
}

extension Encoder {
    /// Encodes one picture as a still image (JPEG, PNG, WebP) with an
    /// encoder of its own, sized and tagged as the frame is. `jpegQuality`:
    /// a fixed quantiser (FFmpeg's qscale) instead of the encoder's default.
    public static func encodeStill(_ frame: Frame, encoder name: String, jpegQuality: Int? = nil) throws(AVError) -> [UInt8] {
        let enc = try Encoder(name: name, threads: 1)
        enc.ctx.pointee.width = frame.raw.pointee.width
        enc.ctx.pointee.height = frame.raw.pointee.height
        enc.ctx.pointee.pix_fmt = frame.pixelFormat
        enc.ctx.pointee.time_base = AVRational(num: 1, den: 1)
        enc.ctx.pointee.color_range = frame.raw.pointee.color_range
        if let q = jpegQuality {
            enc.ctx.pointee.flags |= Int32(AV_CODEC_FLAG_QSCALE)
            enc.ctx.pointee.global_quality = Int32(FF_QP2LAMBDA) * Int32(q)
        }
        try enc.open(globalHeader: false)
        frame.pts = 0
        if jpegQuality != nil { frame.raw.pointee.quality = enc.ctx.pointee.global_quality }
        try enc.send(frame)
        try enc.send(nil)
        var bytes: [UInt8] = []
        let pkt = Packet()
        while try enc.receive(into: pkt) == .packet { bytes += pkt.bytes }
        return bytes
    }
}

extension Encoder {
    /// The encoder's FFmpeg name (libx264, aac, …).
    public var name: String { String(cString: ctx.pointee.codec.pointee.name) }
    /// Bits per second (0: the encoder's own rate control, e.g. crf).
    public var bitRate: Int64 {
        get { ctx.pointee.bit_rate }
        set { ctx.pointee.bit_rate = newValue }
    }

    /// What a video encoder encodes: picture size and format, sample aspect,
    /// time base and (when known) frame rate. Before `open`.
    public func setVideo(width: Int, height: Int, pixelFormat: AVPixelFormat, sampleAspect: Rational, timeBase: Rational, frameRate: Rational?) {
        ctx.pointee.width = Int32(width)
        ctx.pointee.height = Int32(height)
        ctx.pointee.pix_fmt = pixelFormat
        ctx.pointee.sample_aspect_ratio = sampleAspect
        ctx.pointee.time_base = timeBase
        if let frameRate { ctx.pointee.framerate = frameRate }
    }

    /// Codes the pictures as fields (interlaced kept), top or bottom first.
    public func setInterlaced(topFieldFirst: Bool) {
        ctx.pointee.flags |= Int32(AV_CODEC_FLAG_INTERLACED_DCT) | Int32(AV_CODEC_FLAG_INTERLACED_ME)
        ctx.pointee.field_order = topFieldFirst ? AV_FIELD_TT : AV_FIELD_BB
    }

    /// What an audio encoder encodes: its preferred sample format, `rate`
    /// and the default layout of `channels`, time base 1/rate. Before `open`.
    public func setAudio(sampleRate rate: Int, channels: Int) {
        ctx.pointee.sample_rate = Int32(rate)
        ctx.pointee.sample_fmt = preferredSampleFormat
        av_channel_layout_default(&ctx.pointee.ch_layout, Int32(channels))
        ctx.pointee.time_base = AVRational(num: 1, den: Int32(rate))
    }

    /// Whether the encoder takes frames of exactly `frameSize` samples (AAC,
    /// MP3; not the PCM or variable-size ones).
    public var needsFixedFrameSize: Bool {
        frameSize > 0 && ctx.pointee.codec.pointee.capabilities & Int32(AV_CODEC_CAP_VARIABLE_FRAME_SIZE) == 0
    }
}

extension StreamRef {
    /// The HDR10 side data (mastering display, content light level), to
    /// carry to an output that keeps HDR.
    public var hdrSideData: [(AVPacketSideDataType, [UInt8])] {
        sideData([AV_PKT_DATA_MASTERING_DISPLAY_METADATA, AV_PKT_DATA_CONTENT_LIGHT_LEVEL])
    }
}
