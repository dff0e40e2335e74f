import JobSchema
import Foundation
import MediaKit
import SpoolKit
import SystemPackage

/// `compose`: clips (video or stills) in order, brought to one size, rate,
/// pixel format and stereo 48 kHz, joined by concat or crossfades, with an
/// optional music track mixed under or replacing the clips' sound. When the
/// clips already match and nothing asks for a change, they are joined by
/// stream copy instead (no decoder is opened).
public struct ComposeJob: JobRunner {
    public init() {}

    public func run(_ job: JobContext) throws(SpoolError) -> JobOutcome {
        guard case .compose(let c) = job.manifest.job else { preconditionFailure("ComposeJob given a \(job.manifest.type) job") }
        let t0 = Date()
        job.progress(step: "check-paths", fraction: 0)
        // Every clip stays open for the whole job: two descriptors each (the
        // checked input and FFmpeg's own open of it), plus the output and music.
        let needed = 2 * c.clips.count + 8
        guard needed <= job.descriptorBudget else {
            throw SpoolError(.limitExceeded, "a compose of \(c.clips.count) clips holds about \(needed) files open at once; this daemon allows \(job.descriptorBudget) per job (LimitNOFILE shared by the workers): split it into smaller composes, or raise LimitNOFILE or lower the worker count", step: "check-limits")
        }
        var clips: [ClipInput] = []
        for (i, clip) in c.clips.enumerated() {
            clips.append(try ClipInput(job: job, path: clip.path, field: "clips[\(i)].path", clip: clip))
        }
        let music = try c.audio.map { m throws(SpoolError) in try ClipInput(job: job, path: m.path, field: "audio.path", clip: nil) }
        let target = try job.openOutput(c.output.path, overwrite: c.output.overwrite)
        let T = c.transitionDuration
        if c.transition == .crossfade, let shortest = clips.map(\.duration).min(), T >= shortest {
            throw SpoolError(.manifestInvalid, "$.transition.duration (\(FilterText.num(T)) s) must be shorter than every clip (the shortest lasts \(FilterText.num((shortest * 100).rounded() / 100)) s)", step: "validate")
        }
        let record: OutputRecord
        let step: String
        if CopyJoiner.applies(c, clips: clips) {
            record = try CopyJoiner(job: job, compose: c, clips: clips, target: target).run()
            step = "join (stream copy)"
        } else {
            record = try Composer(job: job, compose: c, clips: clips, music: music, target: target).run()
            step = "decode+filter+encode"
        }
        return JobOutcome(outputs: [record], steps: [StepTiming(name: step, durationMs: Int(Date().timeIntervalSince(t0) * 1000))],
                          sideFiles: Poster.make(job, output: c.output.path, record: record))
    }
}

/// One opened clip (or the music track), classified.
final class ClipInput {
    let name: String
    let fmt: InputFormat
    let file: InputFile
    let video: Int?
    let audio: Int?
    let isStill: Bool
    let start: Double
    /// Seconds this clip contributes.
    let duration: Double
    let motion: Motion

    init(job: JobContext, path: String, field: String, clip: Compose.Clip?) throws(SpoolError) {
        name = path
        file = try job.policy.openInput(path, field: field)
        do {
            fmt = try InputFormat(url: file.openedPath, limits: OpenLimits(maxStreams: job.limits.maxStreams), shouldAbort: { [job] in job.shouldAbort })
        } catch { throw SpoolError.media(error, "\(field) \(path)", step: "open-input", job: job) }
        video = fmt.videoStream
        audio = fmt.preferredAudioStream
        isStill = fmt.formatName.hasSuffix("_pipe") || fmt.formatName == "image2"
        start = clip?.start ?? 0
        motion = clip?.motion ?? .none
        if let v = video {
            let s = fmt.stream(v)
            if s.width > job.limits.maxWidth || s.height > job.limits.maxHeight {
                throw SpoolError(.limitExceeded, "\(field) \(path) is \(s.width)x\(s.height); the limit is \(job.limits.maxWidth)x\(job.limits.maxHeight)", step: "open-input")
            }
            try MemoryBudget.check(job, width: s.width, height: s.height, frames: MemoryBudget.framesTranscoding, what: "\(field) \(path)")
        }
        if clip != nil && video == nil {
            throw SpoolError(.inputInvalid, "\(field) \(path) has no video or image to show", step: "open-input")
        }
        let available = max(0, (fmt.durationSeconds ?? 0) - start)
        if isStill {
            guard let d = clip?.duration else {
                throw SpoolError(.manifestInvalid, "$.\(field.replacingOccurrences(of: ".path", with: "")).duration is required for a still image", step: "validate")
            }
            duration = d
        } else {
            duration = min(clip?.duration ?? available, available)
            if clip != nil && duration <= 0.04 {
                throw SpoolError(.inputInvalid, "\(field) \(path) has nothing after start \(FilterText.num(start)) s (it lasts \(FilterText.num(fmt.durationSeconds ?? 0)) s)", step: "open-input")
            }
        }
        if duration > job.limits.maxDurationSeconds {
            throw SpoolError(.limitExceeded, "\(field) \(path) lasts \(Int(duration)) s; the limit is \(Int(job.limits.maxDurationSeconds)) s", step: "open-input")
        }
    }
}

/// The re-encoding path: one filter graph over every clip.
final class Composer {
    let job: JobContext
    let c: Compose
    let clips: [ClipInput]
    let music: ClipInput?
    let target: OutputTarget
    /// Where FFmpeg writes: the target's temporary file.
    private var temporaryURL = ""

    /// A demuxer feeding some buffer sources of the graph.
    final class Feed {
        let input: ClipInput
        var decoders: [Int: (Decoder, Int)] = [:]   // input stream -> (decoder, graph source)
        /// The decoders as stages, once the graph exists.
        var stages: [Int: DecodeStage] = [:]
        var done = false
        let stopAfter: Double?
        init(_ input: ClipInput, stopAfter: Double?) { self.input = input; self.stopAfter = stopAfter }
    }

    init(job: JobContext, compose: Compose, clips: [ClipInput], music: ClipInput?, target: OutputTarget) {
        self.job = job; self.c = compose; self.clips = clips; self.music = music; self.target = target
    }

    var total: Double { clips.map(\.duration).reduce(0, +) - Double(max(0, clips.count - 1)) * c.transitionDuration }

    func run() throws(SpoolError) -> OutputRecord {
        defer { target.discard() } // no partial output under any name after a failure
        temporaryURL = try target.temporaryURL()
        do throws(AVError) {
            try compose()
        } catch {
            throw SpoolError.media(error, "compose", step: "compose", job: job, writing: c.output.path)
        }
        try target.publish(manifestPath: c.output.path)
        return try OutputInspection.record(target, manifestPath: c.output.path, container: c.output.container)
    }

    private func compose() throws(AVError) {
        let first = clips.first { !$0.isStill } ?? clips[0]
        let fs = first.fmt.stream(first.video!)
        // Clips are fitted by what a viewer sees: upright, square pixels.
        let firstSource = SourceVideo(stream: fs, decode: job.manifest.decode)
        let W = even(c.width ?? c.output.video.width ?? firstSource.displayWidth)
        let H = even(c.height ?? c.output.video.height ?? firstSource.displayHeight)
        let F = c.fps ?? c.output.video.fps ?? (first.isStill ? 30 : (fs.fps ?? 30))
        let fps = FilterText.num(F)
        let wantAudio = c.output.audio.codec != AudioCodec.none
        let replace = c.audio?.mode == .replace
        let T = c.transitionDuration

        var sources: [FilterGraph.Source] = []
        var feeds: [Feed] = []
        var clipColours: [ColourTags] = []
        var parts: [String] = []
        let fit = c.fit == .pad
            ? "scale=\(W):\(H):force_original_aspect_ratio=decrease,pad=\(W):\(H):(ow-iw)/2:(oh-ih)/2"
            : "scale=\(W):\(H):force_original_aspect_ratio=increase,crop=\(W):\(H)"
        for (i, clip) in clips.enumerated() {
            // Clip times count from the container's start (a camera's MPEG-TS starts at 1.4 s or 10 h).
            let origin = clip.fmt.startSeconds
            let feed = Feed(clip, stopAfter: clip.isStill ? nil : origin + clip.start + clip.duration + 1)
            if clip.start > 0 { try? clip.fmt.seek(stream: clip.video!, to: origin + clip.start) }
            // Video.
            let vs = clip.fmt.stream(clip.video!)
            let vdec = try Decoder(vs, threads: job.threads)
            job.logger.debug("opened decoder \(vs.codecName) for clip \(i)", metadata: ["STEP": "open-input"])
            feed.decoders[clip.video!] = (vdec, sources.count)
            let vin = "[in\(sources.count)]"
            sources.append(.video(width: vs.width, height: vs.height, pixelFormat: vdec.pixelFormat, timeBase: vs.timeBase,
                                  sampleAspect: vs.sampleAspect, frameRate: clip.isStill ? nil : vs.guessedFrameRate))
            let D = FilterText.num(clip.duration)
            let source = SourceVideo(stream: vs, decode: job.manifest.decode)
            clipColours.append(source.toneMapped ? source.colour : source.colour.converted(from: vdec.pixelFormatName, to: "yuv420p"))
            let upright = (source.filters + FilterText.scale(width: nil, height: nil, squarePixels: true, source: source)).map { $0 + "," }.joined()
            if clip.isStill {
                let n = max(1, Int((clip.duration * F).rounded()))
                parts.append("\(vin)\(upright)\(fit),setsar=1,format=yuv420p,\(zoompan(clip.motion, frames: n, width: W, height: H, fps: fps)),setsar=1,fps=\(fps):eof_action=pass,settb=1/\(fps)[v\(i)]")
            } else {
                parts.append("\(vin)trim=start=\(FilterText.num(clip.start)):duration=\(D),setpts=PTS-STARTPTS,\(upright)\(fit),setsar=1,fps=\(fps):eof_action=pass,format=yuv420p,settb=1/\(fps)[v\(i)]")
            }
            // Audio: the clip's own, or silence of the clip's length.
            if wantAudio && !replace {
                if let a = clip.audio, !clip.isStill {
                    let s = clip.fmt.stream(a)
                    let adec = try Decoder(s, threads: job.threads)
                    job.logger.debug("opened decoder \(s.codecName) for clip \(i)", metadata: ["STEP": "open-input"])
                    feed.decoders[a] = (adec, sources.count)
                    let ain = "[in\(sources.count)]"
                    sources.append(.audio(sampleRate: s.sampleRate, sampleFormat: adec.sampleFormat, layout: s.layoutDescription,
                                          timeBase: s.timeBase))
                    parts.append("\(ain)atrim=start=\(FilterText.num(clip.start)):duration=\(D),asetpts=PTS-STARTPTS,\(stereo48),apad=whole_dur=\(D),atrim=duration=\(D)[a\(i)]")
                } else {
                    parts.append("anullsrc=r=48000:cl=stereo,atrim=duration=\(D),\(stereo48)[a\(i)]")
                }
            }
            feeds.append(feed)
        }
        // Joins.
        if c.transition == .crossfade && clips.count > 1 {
            var offset = 0.0, vlast = "[v0]", alast = "[a0]"
            for i in 1..<clips.count {
                offset += clips[i - 1].duration - T
                parts.append("\(vlast)[v\(i)]xfade=transition=fade:duration=\(FilterText.num(T)):offset=\(FilterText.num(offset))[x\(i)]")
                vlast = "[x\(i)]"
                if wantAudio && !replace {
                    parts.append("\(alast)[a\(i)]acrossfade=d=\(FilterText.num(T)):c1=tri:c2=tri[y\(i)]")
                    alast = "[y\(i)]"
                }
            }
            parts.append("\(vlast)null[vj]")
            if wantAudio && !replace { parts.append("\(alast)anull[aj]") }
        } else {
            let n = clips.count
            let ins = (0..<n).map { wantAudio && !replace ? "[v\($0)][a\($0)]" : "[v\($0)]" }.joined()
            parts.append("\(ins)concat=n=\(n):v=1:a=\(wantAudio && !replace ? 1 : 0)\(wantAudio && !replace ? "[vj][aj]" : "[vj]")")
        }
        // Music.
        let totalText = FilterText.num(total)
        var audioOut = "[aj]"
        if wantAudio, let m = c.audio, let mi = music, let ma = mi.audio {
            let s = mi.fmt.stream(ma)
            let mdec = try Decoder(s, threads: job.threads)
            let feed = Feed(mi, stopAfter: m.loop ? nil : mi.fmt.startSeconds + total + 1)
            feed.decoders[ma] = (mdec, sources.count)
            let min_ = "[in\(sources.count)]"
            sources.append(.audio(sampleRate: s.sampleRate, sampleFormat: mdec.sampleFormat, layout: s.layoutDescription,
                                  timeBase: s.timeBase))
            feeds.append(feed)
            var chain = "\(min_)\(stereo48)"
            if m.loop {
                let samples = Int(((mi.fmt.durationSeconds ?? total) * 48000).rounded(.up))
                guard samples > 0 && samples < Int(Int32.max) / 4 else { throw AVError.errno(E2BIG) }
                chain += ",aloop=loop=-1:size=\(samples)"
            }
            chain += ",atrim=duration=\(totalText),asetpts=PTS-STARTPTS"
            if m.volume != 1 { chain += ",volume=\(FilterText.num(m.volume))" }
            if m.fadeIn > 0 { chain += ",afade=t=in:st=0:d=\(FilterText.num(m.fadeIn))" }
            if m.fadeOut > 0 { chain += ",afade=t=out:st=\(FilterText.num(max(0, total - m.fadeOut))):d=\(FilterText.num(m.fadeOut))" }
            chain += ",apad=whole_dur=\(totalText),atrim=duration=\(totalText)"
            if replace {
                parts.append("\(chain)[mus]")
                audioOut = "[mus]"
            } else {
                parts.append("\(chain)[mus]")
                parts.append("[aj][mus]amix=inputs=2:duration=first:normalize=0[mixed]")
                audioOut = "[mixed]"
            }
        } else if wantAudio && replace {
            throw AVError.invalidData // music without an audio stream: reported below
        }
        // Encoders and sinks.
        let target: (encoder: String?, rate: Int, channels: Int) = wantAudio
            ? Encoding.audioTarget(c.output.audio, container: c.output.container, inputRate: 48000, inputChannels: 2)
            : (nil, 48000, 2)
        var audioEncoder: Encoder?
        if let name = target.encoder { audioEncoder = try Encoder(name: name, threads: job.threads) }
        parts.append("[vj]format=\(Encoding.pixelFormat(c.output.video.pixelFormat))[out0]")
        if let ae = audioEncoder {
            parts.append("\(audioOut)aresample=\(target.rate),aformat=sample_fmts=\(ae.preferredSampleFormatName):channel_layouts=\(FilterText.layout(target.channels))[out1]")
        }
        let graph = try FilterGraph(description: parts.joined(separator: ";"), sources: sources,
                                    sinks: audioEncoder == nil ? [.video] : [.video, .audio], threads: job.threads)
        let out = try OutputFile(format: Encoding.muxer(c.output.container), path: temporaryURL, shouldAbort: { [job] in job.shouldAbort })
        var v = c.output.video
        if v.codec == nil || v.codec == .copy { v.codec = c.output.container.defaultVideoCodec }
        // Clips are not converted to one colour space: the tags only when they all agree.
        let colour = clipColours.allSatisfy { $0 == clipColours.first } ? clipColours.first ?? ColourTags() : ColourTags()
        let venc = try Encoding.videoEncoder(for: graph, sink: 0, settings: v, colour: colour, output: out, threads: job.threads)
        let vo = try out.addStream(from: venc)
        var ao: Int?
        if let ae = audioEncoder {
            try Encoding.openAudio(ae, rate: target.rate, channels: target.channels, settings: c.output.audio, graph: graph, sink: 1, output: out)
            ao = try out.addStream(from: ae)
        }
        try out.writeHeader(fastStart: [.mp4, .m4v, .mov].contains(c.output.container))

        // Drive: feed the demuxer whose sources the graph waits on most.
        for f in feeds {
            f.stages = f.decoders.mapValues { dec, src in
                DecodeStage(decoder: dec, graph: graph, source: src, origin: f.input.fmt.startTimestamp(in: dec.timeBase))
            }
        }
        let sinks = [EncodeStage(graph: graph, sink: 0, encoder: venc, output: out, stream: vo, isVideo: true)]
            + (audioEncoder.map { [EncodeStage(graph: graph, sink: 1, encoder: $0, output: out, stream: ao!, isVideo: false)] } ?? [])
        let total = self.total
        // The stages' failures count as the compose's (one step for the record).
        let stage = MediaFailure.unwrapping
        func pullSinks() throws(AVError) {
            try stage { () throws(MediaFailure) in
                try sinks[0].drain(onFrame: { [job] secs in job.progress(step: "compose", fraction: secs / max(0.001, total)) })
                if sinks.count > 1 { try sinks[1].drain() }
            }
        }
        func finish(_ f: Feed) throws(AVError) {
            for s in f.stages.values { try stage { () throws(MediaFailure) in try s.finish() } }
            f.done = true
        }
        let pkt = Packet()
        while !sinks.allSatisfy(\.finished) {
            if job.shouldAbort { throw AVError.exit }
            try pullSinks()
            if sinks.allSatisfy(\.finished) { break }
            let open = feeds.filter { !$0.done }
            guard !open.isEmpty else {
                // Everything is fed; the graph must finish on its own.
                try pullSinks()
                if !sinks.allSatisfy(\.finished) { throw AVError.invalidData }
                break
            }
            let pick = open.max { a, b in failed(a, graph) < failed(b, graph) } ?? open[0]
            let chosen = failed(pick, graph) > 0 ? pick : open[0]
            // One packet of the chosen demuxer.
            if try !chosen.input.fmt.read(into: pkt) { try finish(chosen); continue }
            guard let decode = chosen.stages[pkt.streamIndex] else { continue }
            if let stop = chosen.stopAfter, let ts = pkt.pts, Double(ts) * chosen.input.fmt.stream(pkt.streamIndex).timeBase.doubleValue > stop {
                try finish(chosen)
                continue
            }
            try stage { () throws(MediaFailure) in try decode.feed(pkt) }
        }
        try out.finish()
    }

    private func failed(_ f: Feed, _ g: FilterGraph) -> UInt32 {
        f.decoders.values.map { g.failedRequests(source: $0.1) }.max() ?? 0
    }

    private var stereo48: String { "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo" }

    private func even(_ x: Int) -> Int { max(2, x - x % 2) }

    /// zoompan expressions for still images; numbers are ours, the
    /// expression text is constant.
    private func zoompan(_ m: Motion, frames n: Int, width: Int, height: Int, fps: String) -> String {
        let N = "\(max(1, n - 1))"
        let (z, x, y): (String, String, String) = switch m {
        case .none: ("1", "0", "0")
        case .zoomIn: ("1+0.2*on/\(N)", "iw/2-(iw/zoom/2)", "ih/2-(ih/zoom/2)")
        case .zoomOut: ("1.2-0.2*on/\(N)", "iw/2-(iw/zoom/2)", "ih/2-(ih/zoom/2)")
        case .panLeft: ("1.2", "(iw-iw/zoom)*(1-on/\(N))", "ih/2-(ih/zoom/2)")
        case .panRight: ("1.2", "(iw-iw/zoom)*on/\(N)", "ih/2-(ih/zoom/2)")
        }
        return "zoompan=z='\(z)':x='\(x)':y='\(y)':d=\(n):s=\(width)x\(height):fps=\(fps)"
    }
}
