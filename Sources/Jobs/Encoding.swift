import JobSchema
import MediaKit
import SpoolKit

/// Typed manifest settings -> FFmpeg names. Every string handed to FFmpeg
/// here is a constant of this file or a number formatted by it.
enum Encoding {
    static func muxer(_ c: Container) -> String {
        switch c {
        case .mp4, .m4v: "mp4"
        case .mov: "mov"
        case .mkv: "matroska"
        case .webm: "webm"
        case .m4a: "ipod"
        case .mp3: "mp3"
        case .opus: "opus"
        case .ogg: "ogg"
        case .wav: "wav"
        case .flac: "flac"
        }
    }

    static func videoEncoder(_ c: VideoCodec) -> String? {
        switch c {
        case .h264: "libx264"
        case .hevc: "libx265"
        case .vp9: "libvpx-vp9"
        case .av1: "libsvtav1"
        case .copy, .none: nil
        }
    }

    /// wav and flac decide their codec; elsewhere the setting does.
    static func audioEncoder(_ c: AudioCodec, container: Container) -> String? {
        if container == .wav { return "pcm_s16le" }
        if container == .flac { return "flac" }
        switch c {
        case .aac: return "aac"
        case .opus: return "libopus"
        case .mp3: return "libmp3lame"
        case .copy, .none: return nil
        }
    }

    /// Applies quality settings to a video encoder.
    static func configure(video e: Encoder, codec: VideoCodec, settings v: VideoSettings) {
        switch codec {
        case .h264, .hevc:
            e.setOption("preset", (v.preset ?? .medium).rawValue)
            if v.bitrateKbps == nil { e.setOption("crf", "\(v.crf ?? (codec == .h264 ? 23 : 28))") }
            if codec == .hevc { e.setOption("x265-params", "log-level=error") }
        case .vp9:
            e.setOption("row-mt", "1")
            e.setOption("deadline", "good")
            e.setOption("cpu-used", "4")
            if v.bitrateKbps == nil { e.setOption("crf", "\(v.crf ?? 32)"); e.bitRate = 0 }
        case .av1:
            e.setOption("preset", "8")
            if v.bitrateKbps == nil { e.setOption("crf", "\(v.crf ?? 35)") }
        case .copy, .none: break
        }
        if let b = v.bitrateKbps { e.bitRate = Int64(b) * 1000 }
    }

    /// A sample rate the encoder takes: the wanted one when supported, else 48 kHz.
    static func sampleRate(_ wanted: Int, encoder: String) -> Int {
        switch encoder {
        case "libopus": return [8000, 12000, 16000, 24000, 48000].contains(wanted) ? wanted : 48000
        case "libmp3lame": return [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000].contains(wanted) ? wanted : 48000
        case "aac": return [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000].contains(wanted) ? wanted : 48000
        default: return wanted
        }
    }

    static func pixelFormat(_ p: PixelFormat?) -> String { (p ?? .yuv420p).rawValue }

    /// A video encoder for what a graph's sink delivers, opened, with its
    /// stream not yet added.
    /// HDR10 metadata an HDR-keeping encoder is given (x265 writes it as SEI).
    struct HDRMetadata {
        var masterDisplay: String?
        var contentLight: String?
        init(_ s: StreamRef) { masterDisplay = s.masteringDisplayX265; contentLight = s.contentLightX265 }
        /// x265-params entries (numbers formatted by MediaKit from the stream's side data).
        var x265Params: [String] {
            ["hdr10=1", "repeat-headers=1"] + (masterDisplay.map { ["master-display=\($0)"] } ?? []) + (contentLight.map { ["max-cll=\($0)"] } ?? [])
        }
    }

    static func videoEncoder(for graph: FilterGraph, sink: Int, settings v: VideoSettings, colour: ColourTags = ColourTags(),
                             hdrMetadata: HDRMetadata? = nil, fields: FieldOrder = .progressive, variableRate: Bool = false,
                             extraOptions: [(String, String)] = [],
                             output: OutputFile, threads: Int) throws(AVError) -> Encoder {
        guard let name = videoEncoder(v.codec ?? .h264) else { throw AVError.encoderNotFound }
        let enc = try Encoder(name: name, threads: threads)
        let fr = graph.frameRate(sink: sink)
        // Constant rate: 1/fps (x264 rates a 1/1000 time base's uneven
        // 33/34 ms steps as jitter, 2.6 dB worse at the same crf). Variable
        // rate: the graph's own time base, so every timestamp of a phone
        // clip is kept (1/average-rate would merge neighbouring frames).
        enc.setVideo(width: graph.width(sink: sink), height: graph.height(sink: sink), pixelFormat: graph.pixelFormat(sink: sink),
                     sampleAspect: graph.sampleAspect(sink: sink),
                     timeBase: fr.isKnown && !variableRate ? fr.inverted : graph.timeBase(sink: sink), frameRate: fr.isKnown ? fr : nil)
        configure(video: enc, codec: v.codec ?? .h264, settings: v)
        enc.setColour(colour)
        // Interlaced video kept interlaced (decode.deinterlace "off"): coded as fields.
        if fields == .topFirst || fields == .bottomFirst {
            enc.setInterlaced(topFieldFirst: fields == .topFirst)
        }
        if let hdr = hdrMetadata, v.codec == .hevc, colour.isPQ { enc.setOption("x265-params", (["log-level=error"] + hdr.x265Params).joined(separator: ":")) }
        for (k, value) in extraOptions { enc.setOption(k, value) }
        try enc.open(globalHeader: output.needsGlobalHeader)
        return enc
    }

    /// Configures and opens an audio encoder, and sets the sink's frame size
    /// when the encoder needs fixed-size frames.
    static func openAudio(_ enc: Encoder, rate: Int, channels: Int, settings a: AudioSettings, graph: FilterGraph, sink: Int, output: OutputFile) throws(AVError) {
        enc.setAudio(sampleRate: rate, channels: channels)
        if let b = a.bitrateKbps { enc.bitRate = Int64(b) * 1000 }
        else if ["aac", "libmp3lame"].contains(enc.name) { enc.bitRate = 128_000 }
        try enc.open(globalHeader: output.needsGlobalHeader)
        if enc.needsFixedFrameSize {
            graph.setFrameSize(enc.frameSize, sink: sink)
        }
    }

    /// The encoder, sample rate and channel count an audio output gets
    /// (more than two channels are downmixed to stereo).
    static func audioTarget(_ a: AudioSettings, container: Container, inputRate: Int, inputChannels: Int) -> (encoder: String?, rate: Int, channels: Int) {
        let name = audioEncoder(a.codec == .copy ? .aac : (a.codec ?? .aac), container: container)
        let rate = name.map { sampleRate(a.sampleRate ?? inputRate, encoder: $0) } ?? inputRate
        return (name, rate, a.channels ?? min(2, max(1, inputChannels)))
    }
}

/// Filter chains as text built only from typed values (numbers are
/// formatted here; names are constants).
enum FilterText {
    static func num(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e9 ? String(Int(d)) : String(format: "%.6f", d)
    }

    /// Cut, then the source's own steps (deinterlace, upright, tone map),
    /// then the requested size, rate and pixel format.
    ///
    /// A picture that is scaled is turned upright after the scale, not
    /// before it as the ffmpeg command's autorotate does: the scale is asked
    /// for the stored picture's sides (width and height swapped under a
    /// transpose), so the output has the same size and aspect, and the
    /// transpose moves the small picture instead of the large one. A phone's
    /// 20 s 1080p portrait clip to 480p in the daemon (perf): the transpose
    /// (libavfilter) took 0.50 CPU s per job, now 0.06, the scale 0.66 s
    /// either way; the job 4.85 -> 4.43 CPU s. The pictures differ by
    /// swscale's rounding (PSNR 63 dB against the command's order).
    static func videoChain(source: SourceVideo, trim: Trim?, width: Int?, height: Int?, squarePixels: Bool,
                           fps: Double?, pixelFormat: String) -> String {
        var f: [String] = []
        if let t = trim {
            f.append("trim=start=\(num(t.start))" + (t.duration.map { ":duration=\(num($0))" } ?? ""))
            f.append("setpts=PTS-STARTPTS")
        }
        let scaling = scale(width: width, height: height, squarePixels: squarePixels, source: source)
        if !scaling.isEmpty && !source.upright.isEmpty && source.uprightCommutesWithScale {
            let (w, h) = source.uprightSwapsSides ? (height, width) : (width, height)
            f += source.deinterlace + source.toneMap
            f += scale(width: w, height: h, squarePixels: squarePixels, source: source.stored)
            f += source.upright
        } else {
            f += source.filters
            f += scaling
        }
        if let fps { f.append("fps=\(num(fps))") }
        f.append("format=\(pixelFormat)")
        return f.joined(separator: ",")
    }

    /// trim, resample and downmix, then `extra` (gain, limiter) on the
    /// final signal, then the encoder's sample format.
    static func audioChain(trim: Trim?, extra: [String], sampleRate: Int, sampleFormat: String, channels: Int) -> String {
        var f: [String] = []
        if let t = trim {
            f.append("atrim=start=\(num(t.start))" + (t.duration.map { ":duration=\(num($0))" } ?? ""))
            f.append("asetpts=PTS-STARTPTS")
        }
        f.append(resampleAndDownmix(sampleRate: sampleRate, channels: channels))
        f += extra
        f.append("aformat=sample_fmts=\(sampleFormat):channel_layouts=\(layout(channels))")
        return f.joined(separator: ",")
    }

    static func resampleAndDownmix(sampleRate: Int, channels: Int) -> String {
        "aresample=\(sampleRate),aformat=channel_layouts=\(layout(channels))"
    }

    /// The layout of an output with this many channels (the manifest allows 1, 2, 6, 8).
    static func layout(_ channels: Int) -> String {
        switch channels {
        case 1: "mono"
        case 6: "5.1"
        case 8: "7.1"
        default: "stereo"
        }
    }
}
