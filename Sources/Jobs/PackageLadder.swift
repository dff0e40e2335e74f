import Foundation
import JobSchema
import MediaKit
import SpoolKit

/// A `package` job's ladder: the input decoded once, each video frame
/// split to every rendition's scaler and encoder, each audio frame to every
/// audio rendition's encoder, all written by FFmpeg's dash muxer into one
/// directory as fMP4 (CMAF) segments with HLS playlists and a DASH MPD.
///
///   packets ─▶ video decoder ─▶ upright/deinterlace/tone map ─▶ split ─┬▶ scale ─▶ x264 ─┐
///                                                                     └▶ scale ─▶ x264 ─┼▶ dash muxer
///   packets ─▶ audio decoder ─▶ asplit ─▶ resample, downmix ─▶ AAC ──────────────────────┘
///
/// Every rendition gets a keyframe (an IDR, closed GOP, no scene-cut
/// keyframes) at the first frame a segment length after the last one
/// (EncodeStage.keyframeEvery), the same frame in all of them, so the muxer cuts every
/// rendition's segments at the same times and players can switch between
/// them. The encoders run their own threads (x264's frame threads, each
/// given the job's share), so the renditions encode in parallel while this
/// thread decodes. All FFmpeg state lives and dies on the calling (worker)
/// thread.
final class PackageLadder {
    struct Rung: Equatable {
        var width: Int, height: Int
        var kbps: Int?, crf: Int?
        var codec: VideoCodec
    }

    let job: JobContext
    let package: Package
    private let input: InputFormat
    private(set) var rungs: [Rung] = []
    private(set) var audioChannels: [Int] = []
    private var out: OutputFile!
    private var videoIndex: Int?, audioIndex: Int?
    private var videoDecode: DecodeStage?, audioDecode: DecodeStage?
    private var videoEncodes: [EncodeStage] = [], audioEncodes: [EncodeStage] = []
    private var demuxDamage = DamagePolicy()
    private var lastVideoSeconds = 0.0
    /// The segment length as the muxer gets it (whole milliseconds), and
    /// the keyframes with it.
    private var segment: Double { (package.segmentSeconds * 1000).rounded() / 1000 }

    init(job: JobContext, inputFile: InputFile, package: Package) throws(SpoolError) {
        self.job = job
        self.package = package
        do {
            input = try InputFormat(url: inputFile.openedPath, limits: OpenLimits(maxStreams: job.limits.maxStreams),
                                    shouldAbort: { [job] in job.shouldAbort })
        } catch { throw SpoolError.media(error, "input \(package.input)", step: "open-input", job: job) }
    }

    var durationSeconds: Double? { input.durationSeconds }

    private func mediaError(_ e: AVError, step: String) -> SpoolError {
        SpoolError.media(e, "input \(package.input)", step: step, job: job, writing: step == "write-output" ? package.output : nil)
    }

    /// The renditions for a picture of the source's display size: those of
    /// the manifest, or the default ladder's rungs at or below the input's
    /// short side (a portrait clip's rungs set its width), top first.
    static func rungs(_ p: Package, source: SourceVideo) -> [Rung] {
        func even(_ x: Int) -> Int { max(2, x / 2 * 2) }
        if let list = p.renditions {
            return list.map { r in
                let (w, h) = FilterText.squareSize(width: r.width.map(even), height: r.height.map(even), source: source)
                return Rung(width: even(w), height: even(h), kbps: r.bitrateKbps, crf: r.bitrateKbps == nil ? (r.crf ?? 23) : nil, codec: r.codec)
            }
        }
        let portrait = source.displayHeight > source.displayWidth
        let short = min(source.displayWidth, source.displayHeight)
        var picked = Array(Package.defaultLadder.filter { $0.height <= short }.prefix(Package.defaultRungs))
        if picked.isEmpty { picked = [(even(short), 400)] }
        return picked.map { side, kbps in
            let (w, h) = portrait ? FilterText.squareSize(width: side, height: nil, source: source)
                                  : FilterText.squareSize(width: nil, height: side, source: source)
            return Rung(width: even(w), height: even(h), kbps: kbps, crf: nil, codec: .h264)
        }
    }

    /// Decodes, encodes and muxes everything into the directory at
    /// `directoryURL` (the dash muxer's manifest and HLS playlists, the
    /// segments). Throws with no promise about what the directory holds.
    func run(directoryURL: String) throws(SpoolError) {
        if let d = input.durationSeconds, d > job.limits.maxDurationSeconds {
            throw SpoolError(.limitExceeded, "input \(package.input) lasts \(Int(d)) s; the limit is \(Int(job.limits.maxDurationSeconds)) s (limits.maxDurationSeconds)", step: "open-input")
        }
        videoIndex = input.videoStream
        audioIndex = package.audio.isEmpty ? nil : try SourceAudio.stream(of: input, decode: job.manifest.decode, inputName: package.input)
        guard let v = videoIndex else {
            throw SpoolError(.inputInvalid, "input \(package.input) has no video stream: a package is a video ladder (use an audio job for audio alone)", step: "open-input")
        }
        let s = input.stream(v)
        if s.width > job.limits.maxWidth || s.height > job.limits.maxHeight {
            throw SpoolError(.limitExceeded, "input \(package.input) is \(s.width)x\(s.height); the limit is \(job.limits.maxWidth)x\(job.limits.maxHeight) (limits.maxWidth/maxHeight)", step: "open-input")
        }
        do {
            out = try OutputFile(format: "dash", path: directoryURL + "/" + Package.mpd, shouldAbort: { [job] in job.shouldAbort })
        } catch { throw mediaError(error, step: "open-output") }
        try addVideo(v)
        if let a = audioIndex { try addAudio(a) }
        var options: [(String, String)] = [
            ("seg_duration", String(format: "%.3f", segment)),
            ("use_template", "1"), ("use_timeline", "1"), ("dash_segment_type", "mp4"),
            // HLS playlists are always written (the record's duration and
            // the master playlist's measured bandwidth come from them);
            // removed after for a DASH-only package.
            ("hls_playlist", "1"), ("hls_master_name", Package.masterPlaylist),
            ("init_seg_name", "init-$RepresentationID$.m4s"),
            ("media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s"),
            ("adaptation_sets", audioEncodes.isEmpty ? "id=0,streams=v" : "id=0,streams=v id=1,streams=a"),
        ]
        options.append(("write_prft", "0"))
        do { try out.writeHeader(options: options) } catch { throw mediaError(error, step: "write-output") }
        try pump()
        do { try out.finish() } catch { throw mediaError(error, step: "write-output") }
        out = nil
    }

    private func addVideo(_ idx: Int) throws(SpoolError) {
        let s = input.stream(idx)
        let source = SourceVideo(stream: s, decode: job.manifest.decode)
        rungs = Self.rungs(package, source: source)
        for r in rungs where r.width > job.limits.maxWidth || r.height > job.limits.maxHeight {
            throw SpoolError(.limitExceeded, "a rendition of \(r.width)x\(r.height) is over the limit of \(job.limits.maxWidth)x\(job.limits.maxHeight) (limits.maxWidth/maxHeight); ask for a smaller one", step: "validate")
        }
        try MemoryBudget.check(job, pictures: [(s.width, s.height, MemoryBudget.framesDecoding)] + rungs.map { ($0.width, $0.height, MemoryBudget.framesTranscoding) },
                               what: "input \(package.input) and its \(rungs.count) renditions")
        do throws(AVError) {
            let dec = try Decoder(s, threads: job.threads)
            let n = rungs.count
            var description = "[in0]" + (source.filters + ["split=\(n)"]).joined(separator: ",")
            description += (0..<n).map { "[s\($0)]" }.joined()
            // No setsar=1: scale gives each rung the sample aspect ratio
            // that keeps the input's display aspect exactly (854x480 of a
            // 16:9 input is 1280:1281), so every rung of the adaptation set
            // has the same display aspect, as the dash muxer requires.
            for (i, r) in rungs.enumerated() {
                description += ";[s\(i)]scale=\(r.width):\(r.height),format=yuv420p[out\(i)]"
            }
            // One filter thread: the scalers are 5% of the ladder's CPU and
            // the encoders' threads already fill the cores; slice threads
            // for them only added context switches (perf: finish_task_switch
            // 1,605 samples against the ffmpeg command's 379; bench/ladder.py
            // against one ffmpeg command with split: 0.94x with the job's
            // threads, 1.03x and 1.08x with one).
            let graph = try FilterGraph(description: description,
                                        sources: [.video(width: s.width, height: s.height, pixelFormat: dec.pixelFormat,
                                                         timeBase: s.timeBase, sampleAspect: s.sampleAspect, frameRate: s.guessedFrameRate)],
                                        sinks: Array(repeating: .video, count: n), threads: 1)
            let colour = source.toneMapped ? source.colour : source.colour.converted(from: dec.pixelFormatName, to: "yuv420p")
            let fr = graph.frameRate(sink: 0)
            // The encoders' own keyframes no nearer than two segments: the
            // forced ones at the boundaries are the ones that count.
            let gop = fr.isKnown ? max(2, Int((2 * package.segmentSeconds * fr.doubleValue).rounded())) : 250
            for (i, r) in rungs.enumerated() {
                var extra: [(String, String)] = [("forced-idr", "1"), ("g", "\(gop)")]
                switch r.codec {
                case .hevc: extra.append(("x265-params", "log-level=error:scenecut=0:open-gop=0"))
                default: extra.append(("x264-params", "scenecut=0:open_gop=0"))
                }
                if let k = r.kbps { extra += [("maxrate", "\(k * 1000)"), ("bufsize", "\(k * 2000)")] }
                let settings = VideoSettings(codec: r.codec, crf: r.crf, bitrateKbps: r.kbps, preset: package.preset)
                let enc = try Encoding.videoEncoder(for: graph, sink: i, settings: settings, colour: colour,
                                                    variableRate: s.isVariableFrameRate, extraOptions: extra,
                                                    output: out, threads: job.threads)
                let o = try out.addStream(from: enc)
                let stage = EncodeStage(graph: graph, sink: i, encoder: enc, output: out, stream: o, isVideo: true)
                stage.keyframeEvery = segment
                videoEncodes.append(stage)
            }
            videoDecode = DecodeStage(decoder: dec, graph: graph, origin: input.startTimestamp(in: dec.timeBase))
            job.logger.debug("package: \(n) renditions of \(source.summary): \(rungs.map { "\($0.width)x\($0.height)" }.joined(separator: ", "))", metadata: ["STEP": "open-video"])
        } catch { throw mediaError(error, step: "open-video") }
    }

    private func addAudio(_ idx: Int) throws(SpoolError) {
        let s = input.stream(idx)
        do throws(AVError) {
            let dec = try Decoder(s, threads: job.threads)
            let m = package.audio.count
            let encoders = try package.audio.map { _ throws(AVError) in try Encoder(name: "aac", threads: job.threads) }
            let rate = Encoding.sampleRate(s.sampleRate, encoder: "aac")
            var description = "[in0]asplit=\(m)" + (0..<m).map { "[a\($0)]" }.joined()
            for (i, a) in package.audio.enumerated() {
                let chain = FilterText.audioChain(trim: nil, extra: [], sampleRate: rate, sampleFormat: encoders[i].preferredSampleFormat.name, channels: a.channels)
                description += ";[a\(i)]\(chain)[out\(i)]"
            }
            let graph = try FilterGraph(description: description,
                                        sources: [.audio(sampleRate: s.sampleRate, sampleFormat: dec.sampleFormat,
                                                         layout: s.layoutDescription, timeBase: s.timeBase)],
                                        sinks: Array(repeating: .audio, count: m), threads: job.threads)
            for (i, a) in package.audio.enumerated() {
                try Encoding.openAudio(encoders[i], rate: rate, channels: a.channels, settings: AudioSettings(codec: .aac, bitrateKbps: a.bitrateKbps),
                                       graph: graph, sink: i, output: out)
                let o = try out.addStream(from: encoders[i])
                audioEncodes.append(EncodeStage(graph: graph, sink: i, encoder: encoders[i], output: out, stream: o, isVideo: false))
            }
            audioChannels = package.audio.map(\.channels)
            audioDecode = DecodeStage(decoder: dec, graph: graph, origin: input.startTimestamp(in: dec.timeBase))
        } catch { throw mediaError(error, step: "open-audio") }
    }

    private func drainVideo() throws(MediaFailure) {
        for e in videoEncodes { try e.drain(onFrame: { [unowned self] t in lastVideoSeconds = max(lastVideoSeconds, t) }) }
    }

    private func drainAudio() throws(MediaFailure) {
        for e in audioEncodes { try e.drain() }
    }

    /// Reads every packet once and drives both decoders; then drains them.
    private func pump() throws(SpoolError) {
        let pkt = Packet()
        let expected = max(0.001, input.durationSeconds ?? 0)
        var lastProgress = Date.distantPast
        while true {
            try job.checkCancelled(step: "package")
            let more: Bool
            do { more = try input.read(into: pkt) } catch {
                if error == .exit { try job.checkCancelled(step: "package") }
                do { try demuxDamage.absorb(error) } catch { throw mediaError(error, step: "demux") }
                continue
            }
            if !more { break }
            do throws(MediaFailure) {
                if pkt.streamIndex == videoIndex, let d = videoDecode {
                    try d.feed(pkt, afterEach: drainVideo)
                } else if pkt.streamIndex == audioIndex, let d = audioDecode {
                    try d.feed(pkt, afterEach: drainAudio)
                }
            } catch { throw mediaError(error.error, step: error.step.rawValue) }
            if Date().timeIntervalSince(lastProgress) > 0.25 {
                lastProgress = Date()
                job.progress(step: "package", fraction: min(0.95, lastVideoSeconds / expected))
            }
        }
        do throws(MediaFailure) {
            try videoDecode?.finish(afterEach: drainVideo)
            try audioDecode?.finish(afterEach: drainAudio)
        } catch { throw mediaError(error.error, step: error.step.rawValue) }
        if (videoDecode?.framesDecoded ?? 0) == 0 {
            throw SpoolError(.inputInvalid, "input \(package.input): no video frame could be decoded; the file is corrupt or truncated", step: "decode")
        }
    }
}
