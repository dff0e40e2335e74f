import CFFmpeg

/// Limits applied while opening untrusted media.
public struct OpenLimits: Sendable {
    public var maxStreams: Int
    /// Skip frame-rate estimation by decoding (fps_probe_size = 0).
    public var quickStreamInfo: Bool
    /// For probes and stills: when an MP4 or QuickTime header describes every stream,
    /// an H.264 stream's pixel format, colour and sample aspect are read
    /// from the sequence parameter set in its header (H264SequenceHeader)
    /// instead of decoding its first picture; its decoder then skips every
    /// picture while avformat_find_stream_info reads the other streams.
    public var h264FromParameterSets: Bool
    /// With `h264FromParameterSets`, Matroska too. There the first decoded
    /// picture also dates the stream (its packets have no dts), so the
    /// stream's start time is read from its first packets instead, which
    /// leaves the input read past them: for probes, which read no packets.
    public var h264InMatroska: Bool
    public init(maxStreams: Int = 64, quickStreamInfo: Bool = false, h264FromParameterSets: Bool = false, h264InMatroska: Bool = false) {
        self.maxStreams = maxStreams; self.quickStreamInfo = quickStreamInfo
        self.h264FromParameterSets = h264FromParameterSets; self.h264InMatroska = h264InMatroska
    }
}

/// The demuxers mediaspool lets FFmpeg use. Left out on purpose: playlist and
/// concatenation demuxers (hls, dash, concat, ffconcat) and image2 patterns,
/// which open further files named inside the input.
public let allowedDemuxers = [
    "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "mpegts", "mpeg", "flv", "asf", "mp3", "aac", "ac3", "eac3",
    "wav", "w64", "aiff", "caf", "flac", "ogg", "h264", "hevc", "m4v", "mjpeg", "gif", "ivf", "obu",
    "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe",
].joined(separator: ",")

/// An opened input (AVFormatContext from avformat_open_input), owned:
/// closed on deinit. Confined to the thread of the job that opened it.
public final class InputFormat {
    private(set) var raw: UnsafeMutablePointer<AVFormatContext>?
    private let interrupt: InterruptHandler

    /// Opens `url` (a plain file path) with the file protocol only and the
    /// allowed demuxers, and reads stream information.
    /// `demuxers` is the allow-list; only mediaspool's own outputs are read
    /// with more (image2, for reading back a written .jpg).
    public init(url: String, limits: OpenLimits = OpenLimits(), demuxers: String = allowedDemuxers,
                shouldAbort: @escaping @Sendable () -> Bool) throws(AVError) {
        interrupt = InterruptHandler(shouldAbort)
        raw = try open(url: url, limits: limits, demuxers: demuxers)
        let name = formatName
        let matroska = limits.h264InMatroska && name == "matroska,webm"
        guard limits.h264FromParameterSets && (name == "mov,mp4,m4a,3gp,3g2,mj2" || matroska) && headersSuffice else {
            try check(avformat_find_stream_info(ctx, nil))
            return
        }
        if matroska {
            guard try !findMatroskaStreamInfoFromParameterSets() else { return }
            // What the first packets showed is not what decoding would
            // give: open again and decode, as without the option.
            avformat_close_input(&raw)
            h264StreamsFromParameterSets = 0
            raw = try open(url: url, limits: limits, demuxers: demuxers)
            try check(avformat_find_stream_info(ctx, nil))
            return
        }
        // One dictionary per stream: skip_frame=all for the H.264 streams
        // the parameter sets described (their decoder still opens; it reads
        // no picture). avformat_find_stream_info leaves the unused options in them.
        let fileSize = avio_size(ctx.pointee.pb)
        var described = Set<Int>()
        for s in streams {
            guard let sps = s.h264ParameterSets(fileSize: fileSize) else { continue }
            sps.apply(to: s.par)
            described.insert(s.index)
        }
        try findStreamInfo(skippingPicturesOf: described)
    }

    /// avformat_open_input with the file protocol and `demuxers` only, and
    /// the limits that apply before stream information is read.
    private func open(url: String, limits: OpenLimits, demuxers: String) throws(AVError) -> UnsafeMutablePointer<AVFormatContext> {
        guard let ctx = avformat_alloc_context() else { throw .noMemory }
        interrupt.install(on: ctx)
        ctx.pointee.max_streams = Int32(clamping: limits.maxStreams + 1)
        let opts = AVOptions([("protocol_whitelist", "file"), ("format_whitelist", demuxers)])
        var c: UnsafeMutablePointer<AVFormatContext>? = ctx
        let r = avformat_open_input(&c, url, nil, &opts.raw) // frees ctx on failure
        guard r >= 0, let opened = c else { throw AVError(r) }
        if Int(opened.pointee.nb_streams) > limits.maxStreams {
            avformat_close_input(&c)
            throw AVError.errno(E2BIG)
        }
        // Containers that declare their frame rates (MP4, Matroska, …) need
        // no frames decoded to estimate them; fps_probe_size 0 keeps
        // avformat_find_stream_info to the headers and the first frames.
        if limits.quickStreamInfo { opened.pointee.fps_probe_size = 0 }
        return opened
    }

    /// avformat_find_stream_info with skip_frame=all for the streams in
    /// `described`: their decoder still opens, and reads no picture.
    func findStreamInfo(skippingPicturesOf described: Set<Int>) throws(AVError) {
        // One dictionary per stream; avformat_find_stream_info leaves the unused options in them.
        var options = [OpaquePointer?](repeating: nil, count: streamCount)
        defer { for i in options.indices { av_dict_free(&options[i]) } }
        for i in described { av_dict_set(&options[i], "skip_frame", "all", 0) }
        h264StreamsFromParameterSets = described.count
        let c = ctx
        try options.withUnsafeMutableBufferPointer { buffer throws(AVError) in
            try check(avformat_find_stream_info(c, buffer.baseAddress))
        }
    }

    /// How many H.264 streams `h264FromParameterSets` described without
    /// decoding (the others were decoded as usual).
    public private(set) var h264StreamsFromParameterSets = 0

    /// Whether the container header alone describes every stream: MP4 or
    /// Matroska (whose headers carry codec, extradata, size, rate and
    /// duration), every stream with a known codec, video with a size, audio
    /// with a rate and channels.
    private var headersSuffice: Bool {
        let name = formatName
        guard name == "mov,mp4,m4a,3gp,3g2,mj2" || name == "matroska,webm", streamCount > 0 else { return false }
        return streams.allSatisfy { s in
            guard s.par.pointee.codec_id != AV_CODEC_ID_NONE else { return false }
            switch s.mediaType {
            case AVMEDIA_TYPE_VIDEO: return s.width > 0 && s.height > 0
            case AVMEDIA_TYPE_AUDIO: return s.sampleRate > 0 && s.channels > 0
            default: return true
            }
        }
    }

    deinit { avformat_close_input(&raw) }

    var ctx: UnsafeMutablePointer<AVFormatContext> { raw! }

    public var formatName: String { ctx.pointee.iformat.map { String(cString: $0.pointee.name) } ?? "unknown" }

    /// Container duration in seconds, when known.
    public var durationSeconds: Double? {
        let d = ctx.pointee.duration
        return d == ms_nopts_value() || d <= 0 ? nil : Double(d) / Double(ms_time_base())
    }

    public var bitRate: Int64? { ctx.pointee.bit_rate > 0 ? ctx.pointee.bit_rate : nil }

    /// The container's start time in seconds (0 when unknown).
    public var startSeconds: Double {
        let s = ctx.pointee.start_time
        return s == ms_nopts_value() ? 0 : Double(s) / Double(ms_time_base())
    }

    /// The container's start time in `tb` units (0 when unknown): what
    /// the ffmpeg command subtracts from every timestamp so that outputs
    /// start at zero (an MPEG-TS from a camera starts at 1.4 s or 10 h).
    public func startTimestamp(in tb: AVRational) -> Int64 {
        let s = ctx.pointee.start_time
        return s == ms_nopts_value() ? 0 : av_rescale_q(s, AVRational(num: 1, den: ms_time_base()), tb)
    }

    public var streamCount: Int { Int(ctx.pointee.nb_streams) }

    public func stream(_ i: Int) -> StreamRef {
        precondition(i >= 0 && i < streamCount, "stream index out of range")
        return StreamRef(raw: ctx.pointee.streams[i]!)
    }

    public var streams: [StreamRef] { (0..<streamCount).map(stream) }
}

/// A borrowed AVStream: valid while its InputFormat lives.
public struct StreamRef {
    let raw: UnsafeMutablePointer<AVStream>

    /// Whether packets of `other` decode with this stream's decoder set-up:
    /// same codec, size, pixel format, extradata and sample aspect (what a
    /// stream-copy join needs).
    public func sameCoding(as other: StreamRef) -> Bool {
        let p = par.pointee, q = other.par.pointee
        return p.codec_id == q.codec_id && p.width == q.width && p.height == q.height && p.format == q.format
            && p.extradata_size == q.extradata_size
            && (p.extradata_size == 0 || memcmp(p.extradata, q.extradata, Int(p.extradata_size)) == 0)
            && av_cmp_q(p.sample_aspect_ratio, q.sample_aspect_ratio) == 0
    }

    /// The SPS in an H.264 stream's header, when it can describe what only
    /// the decoder would learn of the stream (see
    /// `OpenLimits.h264FromParameterSets`; `apply(to:)` fills it in). Nil
    /// when the stream is no H.264, already has a pixel format, or has an
    /// SPS this reader does not fully understand. `fileSize`: check that
    /// the first sample is in the file (MP4); nil when the caller reads
    /// the first packets itself (Matroska, whose index has no sizes).
    func h264ParameterSets(fileSize: Int64?) -> H264SequenceHeader? {
        let p = par.pointee
        guard p.codec_type == AVMEDIA_TYPE_VIDEO, p.codec_id == AV_CODEC_ID_H264, p.format < 0,
              let extradata = p.extradata, p.extradata_size > 0,
              let sps = H264SequenceHeader(avcC: Array(UnsafeBufferPointer(start: extradata, count: Int(p.extradata_size)))),
              // The size the decoder would give is the container's (a
              // remux that crops in the SPS leaves the old size in stsd).
              sps.width == Int(p.width), sps.height == Int(p.height) else { return nil }
        if let fileSize, !firstSampleIsIn(fileSize: fileSize) { return nil }
        return sps
    }

    /// Whether the stream has a first sample and its bytes are in the file:
    /// a track without samples, or a file cut after its header (an upload
    /// that stopped), has no picture to decode, and the decoder would say
    /// so by leaving the pixel format unknown.
    private func firstSampleIsIn(fileSize: Int64) -> Bool {
        guard let first = avformat_index_get_entry(raw, 0) else { return false }
        return first.pointee.size > 0 && first.pointee.pos + Int64(first.pointee.size) <= fileSize
    }

    /// Whether both streams have the same codec.
    public func sameCodec(as other: StreamRef) -> Bool { par.pointee.codec_id == other.par.pointee.codec_id }

    public var index: Int { Int(raw.pointee.index) }
    var par: UnsafeMutablePointer<AVCodecParameters> { raw.pointee.codecpar }
    public var mediaType: AVMediaType { par.pointee.codec_type }
    public var codecName: String { String(cString: avcodec_get_name(par.pointee.codec_id)) }
    public var width: Int { Int(par.pointee.width) }
    public var height: Int { Int(par.pointee.height) }
    public var sampleRate: Int { Int(par.pointee.sample_rate) }
    public var channels: Int { Int(par.pointee.ch_layout.nb_channels) }
    public var bitRate: Int64? { par.pointee.bit_rate > 0 ? par.pointee.bit_rate : nil }
    public var timeBase: AVRational { raw.pointee.time_base }

    public var channelLayout: String? {
        var buf = [CChar](repeating: 0, count: 128)
        guard av_channel_layout_describe(&par.pointee.ch_layout, &buf, buf.count) > 0 else { return nil }
        return String(cString: buf)
    }

    public var pixelFormat: String? {
        guard mediaType == AVMEDIA_TYPE_VIDEO, par.pointee.format >= 0,
              let n = av_get_pix_fmt_name(AVPixelFormat(rawValue: par.pointee.format)) else { return nil }
        return String(cString: n)
    }

    public var fps: Double? {
        let r = raw.pointee.avg_frame_rate.num > 0 ? raw.pointee.avg_frame_rate : raw.pointee.r_frame_rate
        return r.num > 0 && r.den > 0 ? Double(r.num) / Double(r.den) : nil
    }

    /// The stream's start time in seconds, when known.
    public var startSeconds: Double? {
        let s = raw.pointee.start_time
        return s == ms_nopts_value() ? nil : Double(s) * av_q2d(timeBase)
    }

    public var durationSeconds: Double? {
        let d = raw.pointee.duration
        guard d != ms_nopts_value(), d > 0 else { return nil }
        return Double(d) * av_q2d(timeBase)
    }

    /// An attached picture (cover art), not a real video stream.
    public var isAttachedPicture: Bool { raw.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0 }
}

/// Bridges FFmpeg's C interrupt callback to a Swift closure. Owned by the
/// context it is installed on, so it outlives every callback.
final class InterruptHandler {
    let shouldAbort: @Sendable () -> Bool
    init(_ f: @escaping @Sendable () -> Bool) { shouldAbort = f }

    func install(on ctx: UnsafeMutablePointer<AVFormatContext>) {
        ctx.pointee.interrupt_callback.callback = { opaque in
            guard let opaque else { return 0 }
            return Unmanaged<InterruptHandler>.fromOpaque(opaque).takeUnretainedValue().shouldAbort() ? 1 : 0
        }
        ctx.pointee.interrupt_callback.opaque = Unmanaged.passUnretained(self).toOpaque()
    }
}
