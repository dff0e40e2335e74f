/// What a probe reports of a file: the `probe` of a result record
/// (manifest-v1.md "probe", with mediaspool's extensions in
/// docs/manifest.md). One type for both sides: MediaKit fills it from
/// libavformat, SpoolKit stores it in records. Plain data, no FFmpeg and no
/// spool, so each side depends on it and neither on the other.

public struct ProbeStream: Codable, Sendable, Equatable {
    public var index: Int
    public var type: String
    public var codec: String?
    public var width: Int?
    public var height: Int?
    public var fps: Double?
    public var pixelFormat: String?
    public var sampleRate: Int?
    public var channels: Int?
    public var channelLayout: String?
    public var durationSeconds: Double?
    public var bitRate: Int64?
    // Extensions of manifest v1's probe (docs/manifest.md): what real-world
    // video needs for display.
    public var rotation: Int?
    public var displayWidth: Int?
    public var displayHeight: Int?
    public var sampleAspectRatio: String?
    public var colorPrimaries: String?
    public var colorTransfer: String?
    public var colorSpace: String?
    public var colorRange: String?
    public var fieldOrder: String?
    public var defaultTrack: Bool?
    public init(index: Int, type: String) { self.index = index; self.type = type }

    /// `type` as a value (nil for a kind this version does not know).
    public var kind: StreamKind? { StreamKind(rawValue: type) }
}

public enum StreamKind: String, Sendable { case video, audio, subtitle, data }

public struct ProbeRecord: Codable, Sendable, Equatable {
    public var format: String
    public var durationSeconds: Double?
    public var bitRate: Int64?
    public var streams: [ProbeStream]
    public init(format: String, durationSeconds: Double?, bitRate: Int64?, streams: [ProbeStream]) {
        self.format = format; self.durationSeconds = durationSeconds; self.bitRate = bitRate; self.streams = streams
    }
}
