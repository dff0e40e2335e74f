import CFFmpeg
import JobSchema

extension InputFormat {
    /// The container and stream facts (ffprobe's -show_format -show_streams
    /// subset of manifest-v1.md "probe").
    public func info() -> ProbeRecord {
        let streams = self.streams.map { s -> ProbeStream in
            let kind: StreamKind = switch s.mediaType {
            case AVMEDIA_TYPE_VIDEO: .video
            case AVMEDIA_TYPE_AUDIO: .audio
            case AVMEDIA_TYPE_SUBTITLE: .subtitle
            default: .data
            }
            var i = ProbeStream(index: s.index, type: kind.rawValue)
            i.codec = s.codecName; i.durationSeconds = s.durationSeconds; i.bitRate = s.bitRate
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
            if kind == .video || kind == .audio { i.defaultTrack = s.isDefault }
            if kind == .audio {
                i.sampleRate = s.sampleRate; i.channels = s.channels; i.channelLayout = s.channelLayout
            }
            return i
        }
        return ProbeRecord(format: formatName, durationSeconds: durationSeconds, bitRate: bitRate, streams: streams)
    }
}
