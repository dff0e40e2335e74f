// Reading a manifest's job payload: the fields of each job type, their
// ranges and the container matrix. Each reader takes the manifest's
// top-level object after the spool's envelope fields (SpoolKit's
// `Manifest.parse`) and refuses any field it does not know.

extension JobSpec {
    /// The payload of a manifest of `type`: its fields from `r`, which the
    /// caller then finishes (unknown fields refused).
    public static func parse(_ type: JobType, _ r: inout ObjectReader) throws(SchemaError) -> JobSpec {
        switch type {
        case .probe: .probe(input: try r.requiredString("input"))
        case .transcode: .transcode(try parseTranscode(&r))
        case .thumbnail: .thumbnail(try parseThumbnail(&r))
        case .compose: .compose(try parseCompose(&r))
        case .audio: .audio(try parseAudio(&r))
        case .package: .package(try parsePackage(&r))
        }
    }

    static func parseVideo(_ o: ObjectReader?) throws(SchemaError) -> VideoSettings {
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

    static func parseAudioSettings(_ o: ObjectReader?) throws(SchemaError) -> AudioSettings {
        guard var o else { return AudioSettings() }
        let a = AudioSettings(
            codec: try o.oneOf("codec", AudioCodec.self), bitrateKbps: try o.int("bitrateKbps", 8...1536),
            sampleRate: try o.int("sampleRate", 8000...192_000), channels: try o.int("channels", 1...8))
        if let c = a.channels, ![1, 2, 6, 8].contains(c) {
            throw SchemaError.invalid(o.sub("channels"), "must be 1 (mono), 2 (stereo), 6 (5.1) or 8 (7.1), found \(c)")
        }
        if let sr = a.sampleRate, ![8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000].contains(sr) {
            throw SchemaError.invalid(o.sub("sampleRate"), "must be a standard rate (8000, 16000, 22050, 44100, 48000, …), found \(sr)")
        }
        try o.finish()
        return a
    }

    /// `output` of transcode, compose and audio. `videoAllowed` is false for
    /// the audio job type.
    static func parseOutput(_ r: inout ObjectReader, key: String = "output", videoAllowed: Bool,
                            extra: (inout ObjectReader) throws(SchemaError) -> Void = { _ throws(SchemaError) in }) throws(SchemaError) -> OutputSpec {
        guard var o = try r.object(key) else { throw SchemaError.invalid(r.sub(key), "is required") }
        let path = try o.requiredString("path")
        guard let container = Container.of(path: path) else {
            throw SchemaError.unsupported("\(o.sub("path")) \"\(path)\" has no supported extension: use .mp4 .m4v .mov .mkv .webm (video) or .m4a .mp3 .opus .ogg .wav .flac (audio)")
        }
        var video = try parseVideo(videoAllowed ? o.object("video") : nil)
        var audio = try parseAudioSettings(o.object("audio"))
        let overwrite = try o.bool("overwrite") ?? false
        try extra(&o)
        try o.finish()
        if !videoAllowed && container.hasVideo {
            throw SchemaError.unsupported("\(o.sub("path")): an audio job writes an audio container (.m4a .mp3 .opus .ogg .wav .flac)")
        }
        if video.codec == nil { video.codec = container.defaultVideoCodec }
        if audio.codec == nil { audio.codec = container.defaultAudioCodec }
        if video.hdr == .keep {
            // After the container's default codec (vp9 for .webm) is known.
            guard [VideoCodec.hevc, .vp9, .av1].contains(video.codec ?? .h264), video.pixelFormat == .yuv420p10le else {
                throw SchemaError.unsupported("\(o.sub("video.hdr")) \"keep\" needs a 10-bit output that carries HDR: codec \"hevc\", \"vp9\" or \"av1\" with pixelFormat \"yuv420p10le\"; or use \"tonemap\"")
            }
        }
        if let c = audio.channels, c > 2, audio.codec == .mp3 {
            throw SchemaError.unsupported("\(o.sub("audio.channels")) \(c): MP3 carries at most 2 channels; use aac or opus for 5.1 and 7.1")
        }
        if !container.hasVideo, let c = video.codec, c != .none {
            throw SchemaError.unsupported("\(o.sub("video.codec")) \"\(c.rawValue)\" cannot go in .\(container.rawValue), an audio-only container")
        }
        if let c = video.codec, !container.allows(video: c) {
            throw SchemaError.unsupported("\(o.sub("video.codec")) \"\(c.rawValue)\" cannot be written to .\(container.rawValue); pick another codec or container")
        }
        if let c = audio.codec, !container.allows(audio: c) {
            throw SchemaError.unsupported("\(o.sub("audio.codec")) \"\(c.rawValue)\" cannot be written to .\(container.rawValue); pick another codec or container")
        }
        if video.codec == VideoCodec.none && audio.codec == AudioCodec.none {
            throw SchemaError.invalid(o.sub("video.codec"), "and audio.codec are both \"none\": the output would be empty")
        }
        return OutputSpec(path: path, container: container, video: video, audio: audio, overwrite: overwrite)
    }

    static func parseTranscode(_ r: inout ObjectReader) throws(SchemaError) -> Transcode {
        let input = try r.requiredString("input")
        var trim: Trim?
        if var t = try r.object("trim") {
            trim = Trim(start: try t.number("start", 0...864_000) ?? 0, duration: try t.number("duration", 0.001...864_000))
            try t.finish()
        }
        let out = try parseOutput(&r, videoAllowed: true)
        return Transcode(input: input, trim: trim, output: out)
    }

    static func parseThumbnail(_ r: inout ObjectReader) throws(SchemaError) -> Thumbnail {
        let input = try r.requiredString("input")
        let at = try r.array("at", count: 1...1000)
        let count = try r.int("count", 1...1000)
        let storyboard = try parseStoryboard(r.object("storyboard"))
        let preview = try parsePreview(r.object("preview"))
        let times: Thumbnail.Times
        switch (at, count) {
        case _ where preview != nil:
            guard at == nil, count == nil, storyboard == nil, !r.has("sheet") else {
                throw SchemaError.invalid("$.preview", "cannot be given together with $.at, $.count, $.sheet or $.storyboard: a preview is one animation")
            }
            times = .preview(preview!)
        case _ where storyboard != nil:
            guard at == nil, count == nil, !r.has("sheet") else {
                throw SchemaError.invalid("$.storyboard", "cannot be given together with $.at, $.count or $.sheet: a storyboard takes a tile every interval and makes its own sheets")
            }
            times = .storyboard(storyboard!)
        case (let a?, nil):
            var ts: [Double] = []
            for (i, v) in a.enumerated() {
                guard case .number(let d) = v, d.isFinite, d >= 0, d <= 864_000 else { throw SchemaError.invalid("$.at[\(i)]", "must be a number of seconds >= 0") }
                ts.append(d)
            }
            times = .at(ts)
        case (nil, let c?): times = .count(c)
        case (nil, nil): throw SchemaError.invalid("$.at", "or $.count (or $.storyboard) is required")
        default: throw SchemaError.invalid("$.count", "cannot be given together with $.at; use one")
        }
        let width = try r.int("width", 16...8192), height = try r.int("height", 16...8192)
        var sheet: Int?
        if var s = try r.object("sheet") {
            sheet = try s.int("columns", 1...50) ?? 4
            try s.finish()
        }
        let seek = try r.oneOf("seek", SeekMode.self) ?? .accurate
        switch (seek, times) {
        case (.keyframe, .storyboard), (.keyframe, .preview):
            throw SchemaError.invalid("$.seek", "\"keyframe\" is for stills (at, count); a storyboard's and a preview's frames are taken at their times")
        default: break
        }
        guard var o = try r.object("output") else { throw SchemaError.invalid("$.output", "is required") }
        let path = try o.requiredString("path")
        let overwrite = try o.bool("overwrite") ?? false
        try o.finish()
        let ext = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
        let format: ImageFormat
        if case .preview = times {
            guard let f = ImageFormat(rawValue: ext), f == .webp || f == .gif else {
                throw SchemaError.unsupported("$.output.path \"\(path)\" of a preview must end in .webp (animated WebP) or .gif")
            }
            format = f
        } else {
            guard let f = ImageFormat(rawValue: ext == "jpeg" ? "jpg" : ext), f != .gif else {
                throw SchemaError.unsupported("$.output.path \"\(path)\" must end in .jpg, .png or .webp")
            }
            format = f
        }
        switch times {
        case .storyboard(let s):
            guard Thumbnail.hasNumberPattern(String(path.split(separator: "/").last ?? "")), !directory(of: path).contains("%") else {
                throw SchemaError.invalid("$.output.path", "needs a %d-style number in its file name for the storyboard's sheets (for example boards/a-%02d.jpg)")
            }
            guard directory(of: s.vtt) == directory(of: path) else {
                throw SchemaError.invalid("$.storyboard.vtt", "must be in the sheets' directory (\(directory(of: path).isEmpty ? "the media root" : directory(of: path))): the WebVTT file names them by file name")
            }
        case .preview: break
        case .at, .count:
            let n: Int = if case .at(let a) = times { a.count } else if case .count(let c) = times { c } else { 0 }
            if n > 1 && sheet == nil && !Thumbnail.hasNumberPattern(path) {
                throw SchemaError.invalid("$.output.path", "needs a %d-style number (for example thumbs/a-%02d.jpg) for \(n) images, or add \"sheet\" for one contact sheet")
            }
        }
        return Thumbnail(input: input, times: times, width: width, height: height, output: path, format: format, sheetColumns: sheet, overwrite: overwrite, seek: seek)
    }

    /// `storyboard`: interval 0.1-3600 s (default 10), columns and rows 1-20
    /// (default 5), and the WebVTT file's path (required, .vtt).
    static func parseStoryboard(_ reader: ObjectReader?) throws(SchemaError) -> Storyboard? {
        guard var s = reader else { return nil }
        let interval = try s.number("interval", 0.1...3600) ?? 10
        let columns = try s.int("columns", 1...20) ?? 5, rows = try s.int("rows", 1...20) ?? 5
        let vtt = try s.requiredString("vtt")
        try s.finish()
        guard vtt.lowercased().hasSuffix(".vtt") else { throw SchemaError.invalid("$.storyboard.vtt", "must end in .vtt") }
        return Storyboard(interval: interval, columns: columns, rows: rows, vtt: vtt)
    }

    /// `preview`: `start` (default 0) and `duration` (0.1-60 s, default 3),
    /// or `moments` (2-20) of `momentDuration` (0.2-10 s, default 1), at most
    /// 60 s in all; `fps` 1-30 (default 10); `loop` (default true).
    static func parsePreview(_ reader: ObjectReader?) throws(SchemaError) -> Preview? {
        guard var p = reader else { return nil }
        let start = try p.number("start", 0...864_000), duration = try p.number("duration", 0.1...Preview.maxSeconds)
        let moments = try p.int("moments", 2...20), momentDuration = try p.number("momentDuration", 0.2...10)
        let fps = try p.int("fps", 1...30) ?? 10, loop = try p.bool("loop") ?? true
        try p.finish()
        let span: Preview.Span
        if let moments {
            guard start == nil, duration == nil else {
                throw SchemaError.invalid("$.preview.moments", "cannot be given together with start or duration: moments are spread over the whole input")
            }
            let each = momentDuration ?? 1
            guard Double(moments) * each <= Preview.maxSeconds else {
                throw SchemaError.invalid("$.preview", "\(moments) moments of \(each) s make more than \(Int(Preview.maxSeconds)) s")
            }
            span = .moments(count: moments, duration: each)
        } else {
            guard momentDuration == nil else { throw SchemaError.invalid("$.preview.momentDuration", "needs moments") }
            span = .range(start: start ?? 0, duration: duration ?? 3)
        }
        return Preview(span: span, fps: fps, loop: loop)
    }

    /// The directory part of a manifest path ("" for a bare file name),
    /// without `.` components or doubled slashes.
    static func directory(of path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).dropLast().filter { $0 != "." }.joined(separator: "/")
    }

    static func parseCompose(_ r: inout ObjectReader) throws(SchemaError) -> Compose {
        guard let clipValues = try r.array("clips", count: 1...500) else { throw SchemaError.invalid("$.clips", "is required: a list of clips") }
        var clips: [Compose.Clip] = []
        for (i, v) in clipValues.enumerated() {
            var c = try ObjectReader(v, at: "$.clips[\(i)]")
            clips.append(Compose.Clip(path: try c.requiredString("path"), start: try c.number("start", 0...864_000),
                                      duration: try c.number("duration", 0.04...864_000),
                                      motion: try c.oneOf("motion", Motion.self) ?? .none))
            try c.finish()
            if let ext = clips[i].path.split(separator: ".").last?.lowercased(), ["png", "jpg", "jpeg", "webp", "bmp"].contains(ext), clips[i].duration == nil {
                throw SchemaError.invalid("$.clips[\(i)].duration", "is required for a still image")
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
        let out = try parseOutput(&r, videoAllowed: true) { (o: inout ObjectReader) throws(SchemaError) in
            width = try o.int("width", 16...16384); height = try o.int("height", 16...16384)
            fps = try o.number("fps", 1...240); fit = try o.oneOf("fit", Fit.self) ?? .pad
        }
        guard out.container.hasVideo else {
            throw SchemaError.unsupported("$.output.path: compose writes a video container (.mp4 .m4v .mov .mkv .webm)")
        }
        if out.video.hdr == .keep {
            throw SchemaError.unsupported("$.output.video.hdr \"keep\": compose tone-maps HDR clips to BT.709 (clips of several kinds share one output); use transcode to keep HDR")
        }
        return Compose(clips: clips, transition: transition, transitionDuration: transition == .none ? 0 : tdur,
                       audio: music, output: out, width: width, height: height, fps: fps, fit: fit)
    }

    static func parseAudio(_ r: inout ObjectReader) throws(SchemaError) -> Audio {
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

extension Thumbnail {
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
}

extension DecodeOptions {
    /// `decode` (an extension of manifest v1, docs/manifest.md): how the
    /// inputs are read; the defaults when the field is absent.
    public static func parse(_ reader: ObjectReader?) throws(SchemaError) -> DecodeOptions {
        var decode = DecodeOptions()
        guard var d = reader else { return decode }
        decode.autorotate = try d.bool("autorotate") ?? true
        decode.deinterlace = try d.oneOf("deinterlace", Deinterlace.self) ?? .auto
        decode.audioTrack = try d.int("audioTrack", 0...63)
        try d.finish()
        return decode
    }
}

extension JobSpec {
    /// `package`: input, output (a directory path), formats, segmentSeconds
    /// (1-30, default 4), renditions (1-8; each height or width 16-8192,
    /// bitrateKbps 50-100000 or crf 0-51, codec h264 or hevc), audio (0-4
    /// renditions of bitrateKbps 32-512 and channels 1, 2 or 6), preset,
    /// storyboard and preview (as the thumbnail job's, written inside).
    static func parsePackage(_ r: inout ObjectReader) throws(SchemaError) -> Package {
        let input = try r.requiredString("input")
        guard var o = try r.object("output") else { throw SchemaError.invalid("$.output", "is required: {\"path\": \"a directory to write\"}") }
        let path = try o.requiredString("path")
        let overwrite = try o.bool("overwrite") ?? false
        try o.finish()
        guard let last = path.split(separator: "/").last, last != ".", !path.hasSuffix("/") else {
            throw SchemaError.invalid("$.output.path", "\"\(path)\" must name the directory to write (not end in /)")
        }
        var p = Package(input: input, output: path, overwrite: overwrite)
        p.formats = try r.oneOf("formats", Package.Formats.self) ?? .both
        p.segmentSeconds = try r.number("segmentSeconds", 1...30) ?? 4
        p.preset = try r.oneOf("preset", Preset.self) ?? .veryfast
        if let values = try r.array("renditions", count: 1...8) {
            var list: [Package.Rendition] = []
            for (i, v) in values.enumerated() {
                var o = try ObjectReader(v, at: "$.renditions[\(i)]")
                let rr = Package.Rendition(width: try o.int("width", 16...8192), height: try o.int("height", 16...8192),
                                           bitrateKbps: try o.int("bitrateKbps", 50...100_000), crf: try o.int("crf", 0...51),
                                           codec: try o.oneOf("codec", VideoCodec.self) ?? .h264)
                try o.finish()
                guard rr.width != nil || rr.height != nil else { throw SchemaError.invalid("$.renditions[\(i)]", "needs a height or a width") }
                guard rr.bitrateKbps == nil || rr.crf == nil else { throw SchemaError.invalid("$.renditions[\(i)]", "takes bitrateKbps or crf, not both") }
                guard [.h264, .hevc].contains(rr.codec) else {
                    throw SchemaError.unsupported("$.renditions[\(i)].codec \"\(rr.codec.rawValue)\": a package's renditions are h264 or hevc")
                }
                list.append(rr)
            }
            p.renditions = list
        }
        if let values = try r.array("audio", count: 0...4) {
            var list: [Package.AudioRendition] = []
            for (i, v) in values.enumerated() {
                var o = try ObjectReader(v, at: "$.audio[\(i)]")
                let a = Package.AudioRendition(bitrateKbps: try o.int("bitrateKbps", 32...512) ?? 128, channels: try o.int("channels", 1...6) ?? 2)
                try o.finish()
                guard [1, 2, 6].contains(a.channels) else { throw SchemaError.invalid("$.audio[\(i)].channels", "must be 1, 2 or 6, found \(a.channels)") }
                list.append(a)
            }
            p.audio = list
        }
        if var s = try r.object("storyboard") {
            let interval = try s.number("interval", 0.1...3600) ?? 10
            let columns = try s.int("columns", 1...20) ?? 5, rows = try s.int("rows", 1...20) ?? 5
            try s.finish()
            p.storyboard = Storyboard(interval: interval, columns: columns, rows: rows, vtt: Package.storyboardVTT)
        }
        p.preview = try parsePreview(r.object("preview"))
        return p
    }
}
