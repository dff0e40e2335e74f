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

    /// The first supported sample format of the encoder (for aformat).
    /// `preferredSampleFormat` by its FFmpeg name (for a filter's aformat).
    public var preferredSampleFormatName: String { String(cString: av_get_sample_fmt_name(preferredSampleFormat)) }

    public var preferredSampleFormat: AVSampleFormat {
        codec.pointee.sample_fmts.map { $0.pointee } ?? AV_SAMPLE_FMT_FLTP
    }
}

extension AVError {
    public static let encoderNotFound = AVError(ms_averror_encoder_not_found())
}
