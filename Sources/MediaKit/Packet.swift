import CFFmpeg

/// An owned AVPacket (av_packet_alloc / av_packet_free).
public final class Packet {
    let raw: UnsafeMutablePointer<AVPacket>

    public init() {
        guard let p = av_packet_alloc() else { fatalError("av_packet_alloc: out of memory") }
        raw = p
    }

    deinit {
        var p: UnsafeMutablePointer<AVPacket>? = raw
        av_packet_free(&p)
    }

    public func unref() { av_packet_unref(raw) }
    /// Moves this packet's data and fields into `other` (av_packet_move_ref),
    /// leaving this one empty to be filled again.
    public func move(to other: Packet) { other.unref(); av_packet_move_ref(other.raw, raw) }
    public var streamIndex: Int { get { Int(raw.pointee.stream_index) } set { raw.pointee.stream_index = Int32(newValue) } }
    public var pts: Int64? { raw.pointee.pts == ms_nopts_value() ? nil : raw.pointee.pts }
    public var dts: Int64? { raw.pointee.dts == ms_nopts_value() ? nil : raw.pointee.dts }
    /// The demuxer marked it a keyframe (a place decoding can start).
    public var isKeyframe: Bool { raw.pointee.flags & AV_PKT_FLAG_KEY != 0 }
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: raw.pointee.data, count: Int(raw.pointee.size)) }

    public func rescaleTimestamps(from a: AVRational, to b: AVRational) { av_packet_rescale_ts(raw, a, b) }
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
