import CFFmpeg

/// An owned AVFilterGraph with named buffer sources and sinks. The graph
/// description is built by mediaspool from typed values (see Jobs'
/// FilterSpec); nothing in it comes from a manifest as text.
public final class FilterGraph {
    let graph: UnsafeMutablePointer<AVFilterGraph>
    private(set) var sources: [UnsafeMutablePointer<AVFilterContext>] = []
    private(set) var sinks: [UnsafeMutablePointer<AVFilterContext>] = []

    public enum Source {
        case video(width: Int, height: Int, pixelFormat: AVPixelFormat, timeBase: AVRational, sampleAspect: AVRational, frameRate: AVRational?)
        case audio(sampleRate: Int, sampleFormat: AVSampleFormat, layout: String, timeBase: AVRational)
    }

    public enum Sink { case video, audio }

    /// `description` uses `[in0]`, `[in1]`… for the sources and `[out0]`…
    /// for the sinks.
    public init(description: String, sources srcs: [Source], sinks snks: [Sink], threads: Int = 0) throws(AVError) {
        guard let g = avfilter_graph_alloc() else { throw .noMemory }
        graph = g
        graph.pointee.nb_threads = Int32(threads)
        var outputs: UnsafeMutablePointer<AVFilterInOut>? = nil  // open outputs of our sources
        var inputs: UnsafeMutablePointer<AVFilterInOut>? = nil   // open inputs of our sinks
        defer { avfilter_inout_free(&outputs); avfilter_inout_free(&inputs) }
        for (i, s) in srcs.enumerated() {
            let ctx: UnsafeMutablePointer<AVFilterContext>
            switch s {
            case let .video(w, h, pf, tb, sar, fr):
                var args = "video_size=\(w)x\(h):pix_fmt=\(pf.rawValue):time_base=\(tb.num)/\(tb.den):pixel_aspect=\(max(sar.num, 1))/\(max(sar.den, 1))"
                if let fr, fr.num > 0, fr.den > 0 { args += ":frame_rate=\(fr.num)/\(fr.den)" }
                ctx = try Self.create(graph, "buffer", "in\(i)", args)
            case let .audio(sr, sf, layout, tb):
                let args = "time_base=\(tb.num)/\(tb.den):sample_rate=\(sr):sample_fmt=\(String(cString: av_get_sample_fmt_name(sf))):channel_layout=\(layout)"
                ctx = try Self.create(graph, "abuffer", "in\(i)", args)
            }
            sources.append(ctx)
            let io = avfilter_inout_alloc()!
            io.pointee.name = av_strdup("in\(i)"); io.pointee.filter_ctx = ctx; io.pointee.pad_idx = 0; io.pointee.next = outputs
            outputs = io
        }
        for (i, s) in snks.enumerated() {
            let ctx = try Self.create(graph, s == .video ? "buffersink" : "abuffersink", "out\(i)", nil)
            sinks.append(ctx)
            let io = avfilter_inout_alloc()!
            io.pointee.name = av_strdup("out\(i)"); io.pointee.filter_ctx = ctx; io.pointee.pad_idx = 0; io.pointee.next = inputs
            inputs = io
        }
        try check(avfilter_graph_parse_ptr(graph, description, &inputs, &outputs, nil))
        try check(avfilter_graph_config(graph, nil))
    }

    static func create(_ g: UnsafeMutablePointer<AVFilterGraph>, _ filter: String, _ name: String, _ args: String?) throws(AVError) -> UnsafeMutablePointer<AVFilterContext> {
        guard let f = avfilter_get_by_name(filter) else { throw AVError(ms_averror_filter_not_found()) }
        var ctx: UnsafeMutablePointer<AVFilterContext>?
        try check(avfilter_graph_create_filter(&ctx, f, name, args, nil, g))
        return ctx!
    }

    deinit {
        var g: UnsafeMutablePointer<AVFilterGraph>? = graph
        avfilter_graph_free(&g)
    }

    /// Pushes a frame (keeps the caller's reference), or nil for end of stream.
    public func push(_ f: Frame?, source: Int = 0) throws(AVError) {
        try check(av_buffersrc_add_frame_flags(sources[source], f?.raw, Int32(AV_BUFFERSRC_FLAG_KEEP_REF)))
    }

    public func pull(into f: Frame, sink: Int = 0) throws(AVError) -> CodecResult {
        f.unref()
        let r = av_buffersink_get_frame(sinks[sink], f.raw)
        if r == AVError.again.code { return .needsInput }
        if r == AVError.eof.code { return .endOfStream }
        try check(r)
        return .frame
    }

    /// How often the graph asked this source for a frame it did not have:
    /// the source to feed next (ffmpeg's own scheduling rule).
    public func failedRequests(source: Int) -> UInt32 { av_buffersrc_get_nb_failed_requests(sources[source]) }

    /// Audio sinks: frames of exactly this many samples (for encoders with a frame size).
    public func setFrameSize(_ n: Int, sink: Int = 0) { av_buffersink_set_frame_size(sinks[sink], UInt32(n)) }

    public func timeBase(sink: Int = 0) -> AVRational { av_buffersink_get_time_base(sinks[sink]) }
    public func frameRate(sink: Int = 0) -> AVRational { av_buffersink_get_frame_rate(sinks[sink]) }
    public func width(sink: Int = 0) -> Int { Int(av_buffersink_get_w(sinks[sink])) }
    public func height(sink: Int = 0) -> Int { Int(av_buffersink_get_h(sinks[sink])) }
    public func pixelFormat(sink: Int = 0) -> AVPixelFormat { AVPixelFormat(rawValue: av_buffersink_get_format(sinks[sink])) }
    public func sampleFormat(sink: Int = 0) -> AVSampleFormat { AVSampleFormat(rawValue: av_buffersink_get_format(sinks[sink])) }
    public func sampleRate(sink: Int = 0) -> Int { Int(av_buffersink_get_sample_rate(sinks[sink])) }
    public func sampleAspect(sink: Int = 0) -> AVRational { av_buffersink_get_sample_aspect_ratio(sinks[sink]) }
    public func channelLayout(sink: Int = 0) -> AVChannelLayout {
        var l = AVChannelLayout()
        _ = av_buffersink_get_ch_layout(sinks[sink], &l)
        return l
    }
}

extension StreamRef {
    /// The channel layout description for an abuffer source ("stereo", "5.1", "mono").
    public var layoutDescription: String {
        if par.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC {
            var l = AVChannelLayout()
            av_channel_layout_default(&l, par.pointee.ch_layout.nb_channels)
            var buf = [CChar](repeating: 0, count: 64)
            av_channel_layout_describe(&l, &buf, buf.count)
            return String(cString: buf)
        }
        return channelLayout ?? "stereo"
    }
    /// The container's sample aspect ratio (MP4 `pasp`, Matroska display
    /// size) when it has one, else the bitstream's, as the ffmpeg command
    /// and av_guess_sample_aspect_ratio take it.
    public var sampleAspect: AVRational {
        let container = raw.pointee.sample_aspect_ratio
        return container.num > 0 && container.den > 0 ? container : par.pointee.sample_aspect_ratio
    }
    public var guessedFrameRate: AVRational { raw.pointee.avg_frame_rate.num > 0 ? raw.pointee.avg_frame_rate : raw.pointee.r_frame_rate }
    var codecParameters: UnsafeMutablePointer<AVCodecParameters> { par }
}

extension Frame {
    /// The layout of an audio frame, as text for an abuffer source.
    public var layoutDescription: String {
        var buf = [CChar](repeating: 0, count: 64)
        if raw.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC {
            var l = AVChannelLayout()
            av_channel_layout_default(&l, raw.pointee.ch_layout.nb_channels)
            av_channel_layout_describe(&l, &buf, buf.count)
        } else {
            av_channel_layout_describe(&raw.pointee.ch_layout, &buf, buf.count)
        }
        return String(cString: buf)
    }
}
