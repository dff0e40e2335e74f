import CFFmpeg

/// An owned AVFrame (av_frame_alloc / av_frame_free).
public final class Frame {
    public let raw: UnsafeMutablePointer<AVFrame>

    public init() {
        guard let f = av_frame_alloc() else { fatalError("av_frame_alloc: out of memory") }
        raw = f
    }

    deinit {
        var p: UnsafeMutablePointer<AVFrame>? = raw
        av_frame_free(&p)
    }

    public func unref() { av_frame_unref(raw) }

    public var pts: Int64? {
        get { raw.pointee.pts == ms_nopts_value() ? nil : raw.pointee.pts }
        set { raw.pointee.pts = newValue ?? ms_nopts_value() }
    }
    /// The best guess of the timestamp (pts, else the decoder's estimate).
    public var bestEffortTimestamp: Int64? {
        let t = raw.pointee.best_effort_timestamp
        return t == ms_nopts_value() ? pts : t
    }
    public var width: Int { Int(raw.pointee.width) }
    public var height: Int { Int(raw.pointee.height) }
    public var sampleCount: Int { Int(raw.pointee.nb_samples) }

    /// A value of metadata attached by a filter (ebur128's lavfi.r128.I, …).
    public func metadata(_ key: String) -> String? {
        guard let e = av_dict_get(raw.pointee.metadata, key, nil, 0), let v = e.pointee.value else { return nil }
        return String(cString: v)
    }
}

/// An owned AVPacket (av_packet_alloc / av_packet_free).
public final class Packet {
    public let raw: UnsafeMutablePointer<AVPacket>

    public init() {
        guard let p = av_packet_alloc() else { fatalError("av_packet_alloc: out of memory") }
        raw = p
    }

    deinit {
        var p: UnsafeMutablePointer<AVPacket>? = raw
        av_packet_free(&p)
    }

    public func unref() { av_packet_unref(raw) }
    public var streamIndex: Int { get { Int(raw.pointee.stream_index) } set { raw.pointee.stream_index = Int32(newValue) } }
    public var pts: Int64? { raw.pointee.pts == ms_nopts_value() ? nil : raw.pointee.pts }
    public var dts: Int64? { raw.pointee.dts == ms_nopts_value() ? nil : raw.pointee.dts }
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: raw.pointee.data, count: Int(raw.pointee.size)) }

    public func rescaleTimestamps(from a: AVRational, to b: AVRational) { av_packet_rescale_ts(raw, a, b) }
}

extension InputFormat {
    /// Reads the next packet: false at the end of the input.
    public func read(into p: Packet) throws(AVError) -> Bool {
        p.unref()
        let r = av_read_frame(ctx, p.raw)
        if r == AVError.eof.code { return false }
        try check(r)
        return true
    }

    /// Seeks `stream` to the keyframe at or before `seconds`.
    public func seek(stream: Int, to seconds: Double) throws(AVError) {
        let tb = self.stream(stream).timeBase
        let ts = Int64((seconds / av_q2d(tb)).rounded(.down))
        try check(av_seek_frame(ctx, Int32(stream), ts, AVSEEK_FLAG_BACKWARD))
    }

    /// Back to the first packet: byte 0 where the format seeks by bytes
    /// (MPEG-TS, whose timestamp seeks may land past the only keyframe),
    /// else the first timestamp.
    public func rewind() throws(AVError) {
        if ctx.pointee.iformat.pointee.flags & AVFMT_NO_BYTE_SEEK == 0, av_seek_frame(ctx, -1, 0, AVSEEK_FLAG_BYTE) >= 0 { return }
        let start = ctx.pointee.start_time == ms_nopts_value() ? 0 : ctx.pointee.start_time
        try check(av_seek_frame(ctx, -1, start, AVSEEK_FLAG_BACKWARD))
    }

    /// av_find_best_stream for a media type, or nil.
    public func bestStream(_ type: AVMediaType) -> Int? {
        let r = av_find_best_stream(ctx, type, -1, -1, nil, 0)
        guard r >= 0 else { return nil }
        if type == AVMEDIA_TYPE_VIDEO && stream(Int(r)).isAttachedPicture { return nil }
        return Int(r)
    }
}
