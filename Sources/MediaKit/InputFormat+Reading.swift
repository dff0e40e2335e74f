import CFFmpeg
import JobSchema

/// Reading and seeking an open input.
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

    /// Back to the first packet: byte 0 for the formats without an index,
    /// which seek by bytes anyway (MPEG-TS and -PS, whose timestamp seeks may
    /// land past the only keyframe, raw streams); else the first timestamp,
    /// through the index. Matroska, ASF and AVI do not find their way back
    /// from byte 0 once they have read past it (a still at 0 after one at
    /// 5 s came from 11.2 s, or nothing decoded), and an AVI read from byte
    /// 0 loses its timestamps.
    public func rewind() throws(AVError) {
        if Self.rewindsByBytes.contains(formatName), av_seek_frame(ctx, -1, 0, AVSEEK_FLAG_BYTE) >= 0 { return }
        let start = ctx.pointee.start_time == ms_nopts_value() ? 0 : ctx.pointee.start_time
        try check(av_seek_frame(ctx, -1, start, AVSEEK_FLAG_BACKWARD))
    }

    static let rewindsByBytes: Set<String> = ["mpegts", "mpeg", "mpegvideo", "h264", "hevc", "m4v", "mjpeg"]

    /// The best video or audio stream (av_find_best_stream), or nil.
    public func bestStream(_ kind: StreamKind) -> Int? {
        switch kind {
        case .video: bestStream(AVMEDIA_TYPE_VIDEO)
        case .audio: bestStream(AVMEDIA_TYPE_AUDIO)
        case .subtitle: bestStream(AVMEDIA_TYPE_SUBTITLE)
        case .data: bestStream(AVMEDIA_TYPE_DATA)
        }
    }

    /// av_find_best_stream for a media type, or nil.
    public func bestStream(_ type: AVMediaType) -> Int? {
        let r = av_find_best_stream(ctx, type, -1, -1, nil, 0)
        guard r >= 0 else { return nil }
        if type == AVMEDIA_TYPE_VIDEO && stream(Int(r)).isAttachedPicture { return nil }
        return Int(r)
    }
}
