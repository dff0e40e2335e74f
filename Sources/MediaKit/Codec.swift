import CFFmpeg

/// The steps of a codec loop. EAGAIN and EOF are states, not errors.
public enum CodecResult: Equatable {
    case frame        // decoders: a frame was produced
    case packet       // encoders: a packet was produced
    case needsInput
    case endOfStream
}

/// An owned AVCodecContext (avcodec_alloc_context3 / avcodec_free_context).
class CodecContext {
    let ctx: UnsafeMutablePointer<AVCodecContext>

    init(codec: UnsafePointer<AVCodec>) throws(AVError) {
        guard let c = avcodec_alloc_context3(codec) else { throw .noMemory }
        ctx = c
    }

    deinit {
        var p: UnsafeMutablePointer<AVCodecContext>? = ctx
        avcodec_free_context(&p)
    }

    var timeBase: AVRational { ctx.pointee.time_base }
}

/// A decoder for one stream of an InputFormat, using all cores.
public final class Decoder {
    let cc: CodecContext
    public let streamIndex: Int
    public let timeBase: AVRational

    public init(_ stream: StreamRef, threads: Int = 0) throws(AVError) {
        guard let codec = avcodec_find_decoder(stream.par.pointee.codec_id) else { throw .decoderNotFound }
        cc = try CodecContext(codec: codec)
        try check(avcodec_parameters_to_context(cc.ctx, stream.par))
        cc.ctx.pointee.pkt_timebase = stream.timeBase
        cc.ctx.pointee.thread_count = Int32(threads)  // 0: as many as cores (FFmpeg's API default is 1)
        try check(avcodec_open2(cc.ctx, codec, nil))
        streamIndex = stream.index
        timeBase = stream.timeBase
    }

    var ctx: UnsafeMutablePointer<AVCodecContext> { cc.ctx }
    /// The decoded frames' formats, for a filter graph's source.
    public var sampleFormat: AVSampleFormat { cc.ctx.pointee.sample_fmt }
    public var pixelFormat: AVPixelFormat { cc.ctx.pointee.pix_fmt }

    /// Sends a packet, or nil to drain.
    public func send(_ p: Packet?) throws(AVError) {
        let r = avcodec_send_packet(cc.ctx, p?.raw)
        if r == AVError.eof.code { return }
        try check(r)
    }

    public func receive(into f: Frame) throws(AVError) -> CodecResult {
        let r = avcodec_receive_frame(cc.ctx, f.raw)
        if r == AVError.again.code { return .needsInput }
        if r == AVError.eof.code { return .endOfStream }
        try check(r)
        return .frame
    }

    public func flush() { avcodec_flush_buffers(cc.ctx) }
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

/// An encoder, configured by the caller before `open`.
public final class Encoder {
    let cc: CodecContext
    let codec: UnsafePointer<AVCodec>
    private let options = AVOptions()

    /// `name` is an FFmpeg encoder name chosen by mediaspool from a typed
    /// setting (libx264, aac, …), never taken from a manifest.
    /// `threads` 0: as many as cores (FFmpeg's API default is 1).
    public init(name: String, threads: Int = 0) throws(AVError) {
        guard let c = avcodec_find_encoder_by_name(name) else { throw .encoderNotFound }
        codec = c
        cc = try CodecContext(codec: c)
        cc.ctx.pointee.thread_count = Int32(threads)
    }

    var ctx: UnsafeMutablePointer<AVCodecContext> { cc.ctx }
    public var timeBase: AVRational { cc.ctx.pointee.time_base }
    public var frameSize: Int { Int(cc.ctx.pointee.frame_size) }

    /// A private option of the encoder (crf, preset, …).
    public func setOption(_ key: String, _ value: String) { options.set(key, value) }
    /// An option set and not yet consumed by `open` (what the settings asked for).
    public func pendingOption(_ key: String) -> String? { options.get(key) }

    public func open(globalHeader: Bool) throws(AVError) {
        if globalHeader { cc.ctx.pointee.flags |= Int32(AV_CODEC_FLAG_GLOBAL_HEADER) }
        try check(avcodec_open2(cc.ctx, codec, &options.raw))
    }

    public func send(_ f: Frame?) throws(AVError) {
        ms_frame_clear_reordered_opaque(f?.raw)
        let r = avcodec_send_frame(cc.ctx, f?.raw)
        if r == AVError.eof.code { return }
        try check(r)
    }

    public func receive(into p: Packet) throws(AVError) -> CodecResult {
        let r = avcodec_receive_packet(cc.ctx, p.raw)
        if r == AVError.again.code { return .needsInput }
        if r == AVError.eof.code { return .endOfStream }
        try check(r)
        return .packet
    }

    /// `preferredSampleFormat` by its FFmpeg name (for a filter's aformat).
    public var preferredSampleFormatName: String { String(cString: av_get_sample_fmt_name(preferredSampleFormat)) }

    /// The first supported sample format of the encoder.
    public var preferredSampleFormat: AVSampleFormat {
        codec.pointee.sample_fmts.map { $0.pointee } ?? AV_SAMPLE_FMT_FLTP
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

extension AVSampleFormat {
    /// FFmpeg's name of the format (s16, fltp, …), for a filter's aformat.
    public var name: String { String(cString: av_get_sample_fmt_name(self)) }
}

extension AVError {
    public static let encoderNotFound = AVError(ms_averror_encoder_not_found())
}
