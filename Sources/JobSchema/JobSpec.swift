/// The job payloads of manifest v1 (../shared/spec/manifest-v1.md) as typed
/// values: the job types, codecs, containers and their rules, read from a
/// manifest by JobSpec+Parsing.swift. Nothing from a manifest reaches FFmpeg
/// as a raw string: the pipeline builds its filter graphs and options from
/// these enums and numbers. The spool's envelope (version, id, priority,
/// tenant, labels, attempts, timeout) is SpoolKit's `Manifest`, which holds
/// one `JobSpec`.

public enum JobType: String, Sendable, CaseIterable, Codable {
    case probe, transcode, thumbnail, compose, audio, package
}

public enum JobSpec: Sendable {
    case probe(input: String)
    case transcode(Transcode)
    case thumbnail(Thumbnail)
    case compose(Compose)
    case audio(Audio)
    case package(Package)

    public var inputPaths: [String] {
        switch self {
        case .probe(let i): [i]
        case .transcode(let t): [t.input]
        case .thumbnail(let t): [t.input]
        case .compose(let c): c.clips.map(\.path) + (c.audio.map { [$0.path] } ?? [])
        case .audio(let a): [a.input]
        case .package(let p): [p.input]
        }
    }

    public var outputPaths: [String] {
        switch self {
        case .probe: []
        case .transcode(let t): [t.output.path]
        case .thumbnail(let t): if case .storyboard(let s) = t.times { [t.output, s.vtt] } else { [t.output] }
        case .compose(let c): [c.output.path]
        case .audio(let a): [a.output.path]
        case .package(let p): [p.output]
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

    public init(codec: VideoCodec? = nil, width: Int? = nil, height: Int? = nil, fps: Double? = nil, crf: Int? = nil,
                bitrateKbps: Int? = nil, preset: Preset? = nil, pixelFormat: PixelFormat? = nil,
                squarePixels: Bool = false, hdr: HDRMode = .tonemap) {
        self.codec = codec; self.width = width; self.height = height; self.fps = fps; self.crf = crf
        self.bitrateKbps = bitrateKbps; self.preset = preset; self.pixelFormat = pixelFormat
        self.squarePixels = squarePixels; self.hdr = hdr
    }
}

public struct AudioSettings: Sendable {
    public var codec: AudioCodec?
    public var bitrateKbps: Int?
    public var sampleRate: Int?
    public var channels: Int?

    public init(codec: AudioCodec? = nil, bitrateKbps: Int? = nil, sampleRate: Int? = nil, channels: Int? = nil) {
        self.codec = codec; self.bitrateKbps = bitrateKbps; self.sampleRate = sampleRate; self.channels = channels
    }
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

public struct Trim: Sendable {
    public var start: Double
    public var duration: Double?
    public init(start: Double, duration: Double? = nil) { self.start = start; self.duration = duration }
}

public struct Transcode: Sendable {
    public var input: String
    public var trim: Trim?
    public var output: OutputSpec
}

/// Stills and storyboards: jpg, png, webp; animated previews: webp, gif.
public enum ImageFormat: String, Sendable, CaseIterable { case jpg, png, webp, gif }

public struct Thumbnail: Sendable {
    /// Which frames: at given times, a number evenly spaced, or a storyboard.
    public enum Times: Sendable { case at([Double]), count(Int), storyboard(Storyboard), preview(Preview) }
    public var input: String
    public var times: Times
    public var width: Int?
    public var height: Int?
    public var output: String
    public var format: ImageFormat
    public var sheetColumns: Int?
    /// See OutputSpec.overwrite.
    public var overwrite = false
    /// How stills at given times are found (an extension of manifest v1).
    public var seek = SeekMode.accurate

    public init(input: String, times: Times, width: Int? = nil, height: Int? = nil, output: String, format: ImageFormat,
                sheetColumns: Int? = nil, overwrite: Bool = false, seek: SeekMode = .accurate) {
        self.input = input; self.times = times; self.width = width; self.height = height; self.output = output
        self.format = format; self.sheetColumns = sheetColumns; self.overwrite = overwrite; self.seek = seek
    }
}

/// `seek` of a thumbnail job: `accurate` takes the first frame at or after
/// each time (the ffmpeg command's `-ss` before `-i`); `keyframe` the
/// keyframe at or before it, one frame decoded (`-noaccurate_seek`), for
/// callers that prefer speed to the exact time.
public enum SeekMode: String, Sendable, CaseIterable { case accurate, keyframe }

/// `storyboard` (an extension of manifest v1): a tile every `interval`
/// seconds, from 0 to the end, in sheets of `columns` x `rows` (the numbered
/// output files), and a WebVTT file mapping each time range to its tile
/// (`sheet.jpg#xywh=x,y,w,h`, as Mux, JW Player and Jellyfin read it).
public struct Storyboard: Sendable, Equatable {
    public var interval: Double
    public var columns: Int
    public var rows: Int
    /// The WebVTT file's path, in the sheets' directory (it names them by
    /// file name).
    public var vtt: String
    /// Tiles are this wide when the manifest gives neither width nor height.
    public static let defaultTileWidth = 160
    /// At most this many tiles in one job (LIMIT_EXCEEDED beyond).
    public static let maxTiles = 10_000
    public init(interval: Double, columns: Int, rows: Int, vtt: String) {
        self.interval = interval; self.columns = columns; self.rows = rows; self.vtt = vtt
    }
}

/// `preview` (an extension of manifest v1): a short looping animation (an
/// animated WebP or a GIF with a palette made for the clip) of one stretch
/// of the input, or of `moments` evenly spaced stretches, at `fps`.
public struct Preview: Sendable, Equatable {
    public enum Span: Sendable, Equatable {
        /// From `start` for `duration` seconds.
        case range(start: Double, duration: Double)
        /// `count` stretches of `duration` seconds, evenly spaced over the input.
        case moments(count: Int, duration: Double)
    }
    public var span: Span
    public var fps: Int
    /// Loops forever (the default), else plays once.
    public var loop: Bool
    /// Frames are this wide when the manifest gives neither width nor height.
    public static let defaultWidth = 320
    /// The longest preview, in seconds of the input.
    public static let maxSeconds = 60.0
    public init(span: Span, fps: Int, loop: Bool) { self.span = span; self.fps = fps; self.loop = loop }
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

/// `package` (an extension of manifest v1, docs/manifest.md): one input
/// to an adaptive-streaming ladder in one output directory: fMP4 (CMAF)
/// segments, HLS playlists and a master playlist, and a DASH MPD over the
/// same segments; optionally a storyboard and an animated preview beside
/// them. The input is decoded once for every rendition.
public struct Package: Sendable {
    public enum Formats: String, Sendable, CaseIterable { case hls, dash, both
        public var hls: Bool { self != .dash }
        public var dash: Bool { self != .hls }
    }
    /// One video rendition: its size (a height, a width, or both), and a
    /// bitrate (capped VBR) or a CRF.
    public struct Rendition: Sendable, Equatable {
        public var width: Int?
        public var height: Int?
        public var bitrateKbps: Int?
        public var crf: Int?
        public var codec: VideoCodec
        public init(width: Int? = nil, height: Int? = nil, bitrateKbps: Int? = nil, crf: Int? = nil, codec: VideoCodec = .h264) {
            self.width = width; self.height = height; self.bitrateKbps = bitrateKbps; self.crf = crf; self.codec = codec
        }
    }
    public struct AudioRendition: Sendable, Equatable {
        public var bitrateKbps: Int
        public var channels: Int
        public init(bitrateKbps: Int = 128, channels: Int = 2) { self.bitrateKbps = bitrateKbps; self.channels = channels }
    }
    public var input: String
    /// The directory to write (published whole, by one rename).
    public var output: String
    public var overwrite = false
    public var formats = Formats.both
    /// Target segment length; every rendition has a keyframe at each boundary.
    public var segmentSeconds = 4.0
    /// Nil: the default ladder (`defaultLadder`), capped at the input's height.
    public var renditions: [Rendition]?
    /// Empty: no audio.
    public var audio: [AudioRendition] = [AudioRendition()]
    public var preset = Preset.veryfast
    /// Written in the directory as storyboard-NN.jpg and storyboard.vtt.
    public var storyboard: Storyboard?
    /// Written in the directory as preview.webp.
    public var preview: Preview?

    /// Heights and bitrates of the default H.264 ladder, top first; the
    /// rungs at or below the input's height are used, at most
    /// `defaultRungs` of them.
    public static let defaultLadder: [(height: Int, kbps: Int)] = [(2160, 14000), (1440, 8000), (1080, 5000), (720, 2800), (480, 1400), (360, 800), (240, 400)]
    public static let defaultRungs = 4
    public static let storyboardVTT = "storyboard.vtt"
    public static let storyboardSheets = "storyboard-%02d.jpg"
    public static let previewName = "preview.webp"
    public static let masterPlaylist = "master.m3u8"
    public static let mpd = "manifest.mpd"
}
