/// Job manifest v1 (../shared/spec/manifest-v1.md) as typed values. Nothing
/// from a manifest reaches FFmpeg as a raw string: the pipeline builds its
/// filter graphs and options from these enums and numbers.
public struct Manifest: Sendable {
    public var type: JobType
    public var id: String?
    public var priority: Int
    public var tenant: String?
    public var labels: [String: String]
    public var maxAttempts: Int?
    public var timeoutSeconds: Double?
    public var job: JobSpec
    /// How inputs are read (extension of manifest v1, docs/manifest.md).
    public var decode = DecodeOptions()

    /// Every input path the job opens, in order, and every output path.
    public var inputPaths: [String] { job.inputPaths }
    public var outputPaths: [String] { job.outputPaths }
}

public enum JobType: String, Sendable, CaseIterable, Codable {
    case probe, transcode, thumbnail, compose, audio
}

public enum JobSpec: Sendable {
    case probe(input: String)
    case transcode(Transcode)
    case thumbnail(Thumbnail)
    case compose(Compose)
    case audio(Audio)

    public var inputPaths: [String] {
        switch self {
        case .probe(let i): [i]
        case .transcode(let t): [t.input]
        case .thumbnail(let t): [t.input]
        case .compose(let c): c.clips.map(\.path) + (c.audio.map { [$0.path] } ?? [])
        case .audio(let a): [a.input]
        }
    }

    public var outputPaths: [String] {
        switch self {
        case .probe: []
        case .transcode(let t): [t.output.path]
        case .thumbnail(let t): [t.output]
        case .compose(let c): [c.output.path]
        case .audio(let a): [a.output.path]
        }
    }
}

public enum VideoCodec: String, Sendable, CaseIterable { case h264, hevc, vp9, av1, copy, none }
public enum AudioCodec: String, Sendable, CaseIterable { case aac, opus, mp3, copy, none }
public enum Preset: String, Sendable, CaseIterable {
    case ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow, placebo
}
public enum PixelFormat: String, Sendable, CaseIterable {
    case yuv420p, yuv422p, yuv444p, yuv420p10le, yuvj420p, nv12
}

/// `decode` (extension of manifest v1): how every video and audio input of
/// the job is interpreted before anything else is done to it.
public struct DecodeOptions: Sendable, Equatable {
    /// Apply the container's display matrix (phone rotation, flips) so the
    /// picture comes out upright, as the ffmpeg command does. Stream copy
    /// keeps the matrix instead.
    public var autorotate = true
    /// `auto`: deinterlace (bwdif) what the stream says is interlaced.
    public var deinterlace = Deinterlace.auto
    /// Which audio track, counted from 0 among the input's audio tracks;
    /// by default the one flagged default (else FFmpeg's best).
    public var audioTrack: Int?
    public init() {}
}

public enum Deinterlace: String, Sendable, CaseIterable { case auto, on, off }

/// What happens to HDR (PQ or HLG) video: tone-mapped to BT.709 SDR, or
/// kept (10-bit HEVC, VP9 or AV1 outputs only).
public enum HDRMode: String, Sendable, CaseIterable { case tonemap, keep }

public struct VideoSettings: Sendable {
    public var codec: VideoCodec?
    public var width: Int?
    public var height: Int?
    public var fps: Double?
    public var crf: Int?
    public var bitrateKbps: Int?
    public var preset: Preset?
    public var pixelFormat: PixelFormat?
    /// Scale to square pixels (display size) instead of keeping the
    /// input's sample aspect ratio.
    public var squarePixels: Bool = false
    public var hdr: HDRMode = .tonemap
}

public struct AudioSettings: Sendable {
    public var codec: AudioCodec?
    public var bitrateKbps: Int?
    public var sampleRate: Int?
    public var channels: Int?
}

/// The container, from the output file's extension.
public enum Container: String, Sendable, CaseIterable {
    case mp4, m4v, mov, mkv, webm, m4a, mp3, opus, ogg, wav, flac
    public var hasVideo: Bool { [.mp4, .m4v, .mov, .mkv, .webm].contains(self) }

    public static func of(path: String) -> Container? {
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return nil }
        return Container(rawValue: path[path.index(after: dot)...].lowercased())
    }

    public var defaultVideoCodec: VideoCodec { !hasVideo ? .none : self == .webm ? .vp9 : .h264 }
    public var defaultAudioCodec: AudioCodec {
        switch self {
        case .webm, .opus, .ogg: .opus
        case .mp3: .mp3
        case .wav, .flac: .copy // PCM / FLAC chosen by the container; see pipeline docs
        default: .aac
        }
    }

    public func allows(video: VideoCodec) -> Bool {
        switch video {
        case .none: true
        case .copy: hasVideo
        case .h264, .hevc: [.mp4, .m4v, .mov, .mkv].contains(self)
        case .vp9: [.mp4, .mkv, .webm].contains(self)
        case .av1: [.mp4, .mkv, .webm].contains(self)
        }
    }

    public func allows(audio: AudioCodec) -> Bool {
        switch audio {
        case .none, .copy: true
        case .aac: [.mp4, .m4v, .mov, .mkv, .m4a].contains(self)
        case .opus: [.mp4, .mkv, .webm, .opus, .ogg].contains(self)
        case .mp3: [.mp4, .mov, .mkv, .mp3].contains(self)
        }
    }
}

public struct OutputSpec: Sendable {
    public var path: String
    public var container: Container
    public var video: VideoSettings
    public var audio: AudioSettings
    /// Replace a file another retained job wrote (mediaspool's extension of
    /// manifest v1; default false: OUTPUT_NOT_ALLOWED).
    public var overwrite = false
}

public struct Trim: Sendable { public var start: Double; public var duration: Double? }

public struct Transcode: Sendable {
    public var input: String
    public var trim: Trim?
    public var output: OutputSpec
}

public enum ImageFormat: String, Sendable, CaseIterable { case jpg, png, webp }

public struct Thumbnail: Sendable {
    public enum Times: Sendable { case at([Double]), count(Int) }
    public var input: String
    public var times: Times
    public var width: Int?
    public var height: Int?
    public var output: String
    public var format: ImageFormat
    public var sheetColumns: Int?
    /// See OutputSpec.overwrite.
    public var overwrite = false
}

public enum Motion: String, Sendable, CaseIterable { case none, zoomIn = "zoom-in", zoomOut = "zoom-out", panLeft = "pan-left", panRight = "pan-right" }
public enum Fit: String, Sendable, CaseIterable { case pad, crop }
public enum TransitionType: String, Sendable, CaseIterable { case none, crossfade }
public enum MixMode: String, Sendable, CaseIterable { case mix, replace }

public struct Compose: Sendable {
    public struct Clip: Sendable { public var path: String; public var start: Double?; public var duration: Double?; public var motion: Motion }
    public struct Music: Sendable {
        public var path: String; public var mode: MixMode; public var volume: Double
        public var fadeIn: Double; public var fadeOut: Double; public var loop: Bool
    }
    public var clips: [Clip]
    public var transition: TransitionType
    public var transitionDuration: Double
    public var audio: Music?
    public var output: OutputSpec
    public var width: Int?
    public var height: Int?
    public var fps: Double?
    public var fit: Fit
}

public struct Audio: Sendable {
    public var input: String
    public var targetLufs: Double?
    public var truePeak: Double?
    public var output: OutputSpec
}

// MARK: - Parsing

extension Manifest {
    public static let maxBytes = 1 << 20
    static let priorityRange = -10...10
    static let tenantMaxBytes = 128

    /// What the scheduler orders by (Scanner.swift): priority, tenant and
    /// type, read by the same parser and field rules as `parse`, without
    /// validating the rest. A field that breaks its rule reads as 0, "" or ""
    /// (the claim then refuses the manifest with the reason).
    static func schedulingFields(_ bytes: [UInt8]) -> (priority: Int, tenant: String, type: String) {
        guard bytes.count <= maxBytes, let doc = try? JSONValue.parse(bytes), var r = try? ObjectReader(doc, at: "$") else { return (0, "", "") }
        let priority = (try? r.int("priority", priorityRange)).flatMap { $0 } ?? 0
        let tenant = (try? r.string("tenant", maxLength: tenantMaxBytes)).flatMap { $0 } ?? ""
        let type = (try? r.oneOf("type", JobType.self)).flatMap { $0 }?.rawValue ?? ""
        return (priority, tenant, type)
    }

    /// Parses and validates manifest bytes. `fileID` is the id taken from the
    /// file name, checked against an `id` field.
    public static func parse(_ bytes: [UInt8], fileID: String?) throws(SpoolError) -> Manifest {
        guard bytes.count <= maxBytes else {
            throw SpoolError(.manifestTooLarge, "manifest is \(bytes.count) bytes; the limit is 1 MiB (1048576 bytes)", step: "validate")
        }
        let doc: JSONValue
        do { doc = try JSONValue.parse(bytes) } catch {
            throw SpoolError(.manifestInvalid, "$ is not valid JSON (\(jsonErrorText(error))); write one UTF-8 JSON object", step: "validate")
        }
        var r = try ObjectReader(doc, at: "$")
        guard let version = try r.int("version", 1...1) else { throw ManifestError.invalid("$.version", "is required and must be 1") }
        _ = version
        guard let type = try r.oneOf("type", JobType.self) else {
            if r.has("type") { throw ManifestError.invalid("$.type", "is unknown") }
            throw ManifestError.invalid("$.type", "is required: one of \"probe\", \"transcode\", \"thumbnail\", \"compose\", \"audio\"")
        }
        let id = try r.string("id", maxLength: 128)
        if let id, !JobID.isValid(id) {
            throw SpoolError(.idInvalid, "$.id \"\(id)\" is not a valid job id: 1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit", step: "validate")
        }
        if let id, let fileID, id != fileID {
            throw SpoolError(.idMismatch, "$.id is \"\(id)\" but the file is named \(fileID).json; make them equal or drop the id field", step: "validate")
        }
        let priority = try r.int("priority", priorityRange) ?? 0
        let tenant = try r.string("tenant", maxLength: tenantMaxBytes)
        var labels: [String: String] = [:]
        if let l = try r.object("labels") {
            guard l.fields.count <= 64 else { throw ManifestError.invalid("$.labels", "must have at most 64 entries") }
            var lr = l
            for k in l.fields.keys.sorted() {
                guard !k.isEmpty, k.utf8.count <= 128, !k.contains("=") else { throw ManifestError.invalid(l.sub(k), "label names must be 1-128 bytes without '='") }
                labels[k] = try lr.string(k, maxLength: 1024) ?? ""
            }
            try lr.finish()
        }
        let maxAttempts = try r.int("maxAttempts", 1...10)
        let timeout = try r.number("timeoutSeconds", 1...86400)

        var decode = DecodeOptions()
        if var d = try r.object("decode") {
            decode.autorotate = try d.bool("autorotate") ?? true
            decode.deinterlace = try d.oneOf("deinterlace", Deinterlace.self) ?? .auto
            decode.audioTrack = try d.int("audioTrack", 0...63)
            try d.finish()
        }
        let job: JobSpec
        switch type {
        case .probe: job = .probe(input: try r.requiredString("input"))
        case .transcode: job = .transcode(try parseTranscode(&r))
        case .thumbnail: job = .thumbnail(try parseThumbnail(&r))
        case .compose: job = .compose(try parseCompose(&r))
        case .audio: job = .audio(try parseAudio(&r))
        }
        try r.finish()
        return Manifest(type: type, id: id, priority: priority, tenant: tenant, labels: labels,
                        maxAttempts: maxAttempts, timeoutSeconds: timeout, job: job, decode: decode)
    }

    private static func jsonErrorText(_ error: any Error) -> String { (error as? JSONParseError)?.description ?? "\(error)" }

    static func parseVideo(_ o: ObjectReader?) throws(SpoolError) -> VideoSettings {
        guard var o else { return VideoSettings() }
        let v = VideoSettings(
            codec: try o.oneOf("codec", VideoCodec.self),
            width: try o.int("width", 16...16384), height: try o.int("height", 16...16384),
            fps: try o.number("fps", 1...240), crf: try o.int("crf", 0...63),
            bitrateKbps: try o.int("bitrateKbps", 8...500_000), preset: try o.oneOf("preset", Preset.self),
            pixelFormat: try o.oneOf("pixelFormat", PixelFormat.self),
            squarePixels: try o.bool("squarePixels") ?? false, hdr: try o.oneOf("hdr", HDRMode.self) ?? .tonemap)
        try o.finish()
        return v
    }

    static func parseAudioSettings(_ o: ObjectReader?) throws(SpoolError) -> AudioSettings {
        guard var o else { return AudioSettings() }
        let a = AudioSettings(
            codec: try o.oneOf("codec", AudioCodec.self), bitrateKbps: try o.int("bitrateKbps", 8...1536),
            sampleRate: try o.int("sampleRate", 8000...192_000), channels: try o.int("channels", 1...8))
        if let c = a.channels, ![1, 2, 6, 8].contains(c) {
            throw ManifestError.invalid(o.sub("channels"), "must be 1 (mono), 2 (stereo), 6 (5.1) or 8 (7.1), found \(c)")
        }
        if let sr = a.sampleRate, ![8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000].contains(sr) {
            throw ManifestError.invalid(o.sub("sampleRate"), "must be a standard rate (8000, 16000, 22050, 44100, 48000, …), found \(sr)")
        }
        try o.finish()
        return a
    }

    /// `output` of transcode, compose and audio. `videoAllowed` is false for
    /// the audio job type.
    static func parseOutput(_ r: inout ObjectReader, key: String = "output", videoAllowed: Bool,
                            extra: (inout ObjectReader) throws(SpoolError) -> Void = { _ throws(SpoolError) in }) throws(SpoolError) -> OutputSpec {
        guard var o = try r.object(key) else { throw ManifestError.invalid(r.sub(key), "is required") }
        let path = try o.requiredString("path")
        guard let container = Container.of(path: path) else {
            throw SpoolError(.unsupported, "\(o.sub("path")) \"\(path)\" has no supported extension: use .mp4 .m4v .mov .mkv .webm (video) or .m4a .mp3 .opus .ogg .wav .flac (audio)", step: "validate")
        }
        var video = try parseVideo(videoAllowed ? o.object("video") : nil)
        var audio = try parseAudioSettings(o.object("audio"))
        let overwrite = try o.bool("overwrite") ?? false
        try extra(&o)
        try o.finish()
        if !videoAllowed && container.hasVideo {
            throw SpoolError(.unsupported, "\(o.sub("path")): an audio job writes an audio container (.m4a .mp3 .opus .ogg .wav .flac)", step: "validate")
        }
        if video.codec == nil { video.codec = container.defaultVideoCodec }
        if audio.codec == nil { audio.codec = container.defaultAudioCodec }
        if video.hdr == .keep {
            // After the container's default codec (vp9 for .webm) is known.
            guard [VideoCodec.hevc, .vp9, .av1].contains(video.codec ?? .h264), video.pixelFormat == .yuv420p10le else {
                throw SpoolError(.unsupported, "\(o.sub("video.hdr")) \"keep\" needs a 10-bit output that carries HDR: codec \"hevc\", \"vp9\" or \"av1\" with pixelFormat \"yuv420p10le\"; or use \"tonemap\"", step: "validate")
            }
        }
        if let c = audio.channels, c > 2, audio.codec == .mp3 {
            throw SpoolError(.unsupported, "\(o.sub("audio.channels")) \(c): MP3 carries at most 2 channels; use aac or opus for 5.1 and 7.1", step: "validate")
        }
        if !container.hasVideo, let c = video.codec, c != .none {
            throw SpoolError(.unsupported, "\(o.sub("video.codec")) \"\(c.rawValue)\" cannot go in .\(container.rawValue), an audio-only container", step: "validate")
        }
        if let c = video.codec, !container.allows(video: c) {
            throw SpoolError(.unsupported, "\(o.sub("video.codec")) \"\(c.rawValue)\" cannot be written to .\(container.rawValue); pick another codec or container", step: "validate")
        }
        if let c = audio.codec, !container.allows(audio: c) {
            throw SpoolError(.unsupported, "\(o.sub("audio.codec")) \"\(c.rawValue)\" cannot be written to .\(container.rawValue); pick another codec or container", step: "validate")
        }
        if video.codec == VideoCodec.none && audio.codec == AudioCodec.none {
            throw ManifestError.invalid(o.sub("video.codec"), "and audio.codec are both \"none\": the output would be empty")
        }
        return OutputSpec(path: path, container: container, video: video, audio: audio, overwrite: overwrite)
    }

    static func parseTranscode(_ r: inout ObjectReader) throws(SpoolError) -> Transcode {
        let input = try r.requiredString("input")
        var trim: Trim?
        if var t = try r.object("trim") {
            trim = Trim(start: try t.number("start", 0...864_000) ?? 0, duration: try t.number("duration", 0.001...864_000))
            try t.finish()
        }
        let out = try parseOutput(&r, videoAllowed: true)
        return Transcode(input: input, trim: trim, output: out)
    }

    static func parseThumbnail(_ r: inout ObjectReader) throws(SpoolError) -> Thumbnail {
        let input = try r.requiredString("input")
        let at = try r.array("at", count: 1...1000)
        let count = try r.int("count", 1...1000)
        let times: Thumbnail.Times
        switch (at, count) {
        case (let a?, nil):
            var ts: [Double] = []
            for (i, v) in a.enumerated() {
                guard case .number(let d) = v, d.isFinite, d >= 0, d <= 864_000 else { throw ManifestError.invalid("$.at[\(i)]", "must be a number of seconds >= 0") }
                ts.append(d)
            }
            times = .at(ts)
        case (nil, let c?): times = .count(c)
        case (nil, nil): throw ManifestError.invalid("$.at", "or $.count is required")
        default: throw ManifestError.invalid("$.count", "cannot be given together with $.at; use one")
        }
        let width = try r.int("width", 16...8192), height = try r.int("height", 16...8192)
        var sheet: Int?
        if var s = try r.object("sheet") {
            sheet = try s.int("columns", 1...50) ?? 4
            try s.finish()
        }
        guard var o = try r.object("output") else { throw ManifestError.invalid("$.output", "is required") }
        let path = try o.requiredString("path")
        let overwrite = try o.bool("overwrite") ?? false
        try o.finish()
        let ext = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
        guard let format = ImageFormat(rawValue: ext == "jpeg" ? "jpg" : ext) else {
            throw SpoolError(.unsupported, "$.output.path \"\(path)\" must end in .jpg, .png or .webp", step: "validate")
        }
        let n: Int = switch times { case .at(let a): a.count; case .count(let c): c }
        if n > 1 && sheet == nil && !hasNumberPattern(path) {
            throw ManifestError.invalid("$.output.path", "needs a %d-style number (for example thumbs/a-%02d.jpg) for \(n) images, or add \"sheet\" for one contact sheet")
        }
        return Thumbnail(input: input, times: times, width: width, height: height, output: path, format: format, sheetColumns: sheet, overwrite: overwrite)
    }

    /// Whether a path holds exactly one `%d` / `%0Nd` and no other `%`.
    public static func hasNumberPattern(_ path: String) -> Bool {
        let u = Array(path.utf8)
        var found = 0
        var i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: "%") {
                var j = i + 1
                if j < u.count, u[j] == UInt8(ascii: "0") { j += 1; if j < u.count, (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(u[j]) { j += 1 } }
                guard j < u.count, u[j] == UInt8(ascii: "d") else { return false }
                found += 1
                i = j
            }
            i += 1
        }
        return found == 1
    }

    static func parseCompose(_ r: inout ObjectReader) throws(SpoolError) -> Compose {
        guard let clipValues = try r.array("clips", count: 1...500) else { throw ManifestError.invalid("$.clips", "is required: a list of clips") }
        var clips: [Compose.Clip] = []
        for (i, v) in clipValues.enumerated() {
            var c = try ObjectReader(v, at: "$.clips[\(i)]")
            clips.append(Compose.Clip(path: try c.requiredString("path"), start: try c.number("start", 0...864_000),
                                      duration: try c.number("duration", 0.04...864_000),
                                      motion: try c.oneOf("motion", Motion.self) ?? .none))
            try c.finish()
            if let ext = clips[i].path.split(separator: ".").last?.lowercased(), ["png", "jpg", "jpeg", "webp", "bmp"].contains(ext), clips[i].duration == nil {
                throw ManifestError.invalid("$.clips[\(i)].duration", "is required for a still image")
            }
        }
        var transition = TransitionType.none, tdur = 0.0
        if var t = try r.object("transition") {
            transition = try t.oneOf("type", TransitionType.self) ?? .none
            tdur = try t.number("duration", 0.04...10) ?? (transition == .crossfade ? 0.5 : 0)
            try t.finish()
        }
        var music: Compose.Music?
        if var a = try r.object("audio") {
            music = Compose.Music(path: try a.requiredString("path"), mode: try a.oneOf("mode", MixMode.self) ?? .mix,
                                  volume: try a.number("volume", 0...10) ?? 1, fadeIn: try a.number("fadeIn", 0...600) ?? 0,
                                  fadeOut: try a.number("fadeOut", 0...600) ?? 0, loop: try a.bool("loop") ?? false)
            try a.finish()
        }
        var width: Int?, height: Int?, fps: Double?, fit = Fit.pad
        let out = try parseOutput(&r, videoAllowed: true) { (o: inout ObjectReader) throws(SpoolError) in
            width = try o.int("width", 16...16384); height = try o.int("height", 16...16384)
            fps = try o.number("fps", 1...240); fit = try o.oneOf("fit", Fit.self) ?? .pad
        }
        guard out.container.hasVideo else {
            throw SpoolError(.unsupported, "$.output.path: compose writes a video container (.mp4 .m4v .mov .mkv .webm)", step: "validate")
        }
        if out.video.hdr == .keep {
            throw SpoolError(.unsupported, "$.output.video.hdr \"keep\": compose tone-maps HDR clips to BT.709 (clips of several kinds share one output); use transcode to keep HDR", step: "validate")
        }
        return Compose(clips: clips, transition: transition, transitionDuration: transition == .none ? 0 : tdur,
                       audio: music, output: out, width: width, height: height, fps: fps, fit: fit)
    }

    static func parseAudio(_ r: inout ObjectReader) throws(SpoolError) -> Audio {
        let input = try r.requiredString("input")
        var target: Double?, peak: Double?
        if var l = try r.object("loudness") {
            target = try l.number("targetLufs", -70...(-5)) ?? -16
            peak = try l.number("truePeak", -9...0) ?? -1.5
            try l.finish()
        }
        let out = try parseOutput(&r, videoAllowed: false)
        return Audio(input: input, targetLufs: target, truePeak: peak, output: out)
    }
}
