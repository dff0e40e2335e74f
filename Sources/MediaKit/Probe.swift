import CFFmpeg

/// What `probe` reports of one stream.
public struct StreamInfo: Sendable, Equatable {
    public enum Kind: String, Sendable { case video, audio, subtitle, data }
    public var index: Int
    public var kind: Kind
    public var codec: String
    public var width: Int?
    public var height: Int?
    public var fps: Double?
    public var pixelFormat: String?
    public var sampleRate: Int?
    public var channels: Int?
    public var channelLayout: String?
    public var durationSeconds: Double?
    public var bitRate: Int64?
    /// Video: degrees the picture is turned for display (display matrix).
    public var rotation: Int?
    /// Video: what a viewer sees, sample aspect and rotation applied.
    public var displayWidth: Int?
    public var displayHeight: Int?
    public var sampleAspectRatio: String?
    public var colorPrimaries: String?
    public var colorTransfer: String?
    public var colorSpace: String?
    public var colorRange: String?
    /// Video: "progressive", "tff", "bff" (interlaced), or nil when unknown.
    public var fieldOrder: String?
    /// Flagged as the track to play by default.
    public var isDefault: Bool = false
}

public struct MediaInfo: Sendable, Equatable {
    public var format: String
    public var durationSeconds: Double?
    public var bitRate: Int64?
    public var streams: [StreamInfo]
}

extension InputFormat {
    /// The container and stream facts (ffprobe's -show_format -show_streams
    /// subset of manifest-v1.md "probe").
    public func info() -> MediaInfo {
        let streams = self.streams.map { s -> StreamInfo in
            let kind: StreamInfo.Kind = switch s.mediaType {
            case AVMEDIA_TYPE_VIDEO: .video
            case AVMEDIA_TYPE_AUDIO: .audio
            case AVMEDIA_TYPE_SUBTITLE: .subtitle
            default: .data
            }
            var i = StreamInfo(index: s.index, kind: kind, codec: s.codecName, durationSeconds: s.durationSeconds, bitRate: s.bitRate)
            if kind == .video {
                i.width = s.width; i.height = s.height; i.pixelFormat = s.pixelFormat
                i.fps = s.isAttachedPicture ? nil : s.fps
                let m = s.displayMatrix
                i.rotation = m?.rotationDegrees ?? 0
                let d = s.displaySize()
                i.displayWidth = d.width; i.displayHeight = d.height
                let sar = s.sampleAspect
                if sar.num > 0 && sar.den > 0 { i.sampleAspectRatio = "\(sar.num):\(sar.den)" }
                let c = s.colour
                i.colorPrimaries = c.primariesName; i.colorTransfer = c.transferName
                i.colorSpace = c.spaceName; i.colorRange = c.rangeName
                i.fieldOrder = s.fieldOrder == .unknown ? nil : s.fieldOrder.rawValue
            }
            i.isDefault = s.isDefault
            if kind == .audio {
                i.sampleRate = s.sampleRate; i.channels = s.channels; i.channelLayout = s.channelLayout
            }
            return i
        }
        return MediaInfo(format: formatName, durationSeconds: durationSeconds, bitRate: bitRate, streams: streams)
    }
}
