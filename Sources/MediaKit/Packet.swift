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
    public var streamIndex: Int { get { Int(raw.pointee.stream_index) } set { raw.pointee.stream_index = Int32(newValue) } }
    public var pts: Int64? { raw.pointee.pts == ms_nopts_value() ? nil : raw.pointee.pts }
    public var dts: Int64? { raw.pointee.dts == ms_nopts_value() ? nil : raw.pointee.dts }
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: raw.pointee.data, count: Int(raw.pointee.size)) }

    public func rescaleTimestamps(from a: AVRational, to b: AVRational) { av_packet_rescale_ts(raw, a, b) }
}
