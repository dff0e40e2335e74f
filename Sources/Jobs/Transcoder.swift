import JobSchema
import Foundation
import MediaKit
import SpoolKit
import SystemPackage

/// One input to one output file: demux, decode, filter, encode, mux, or
/// copy streams unchanged (no decoder is opened for a copied stream).
/// Used by `transcode` and `audio`. All FFmpeg state lives and dies on the
/// calling (worker) thread.
final class Transcoder {
    struct Plan {
        var trim: Trim?
        var output: OutputSpec
        var target: OutputTarget
        /// Extra audio filters (loudness gain), typed text from FilterText.
        var audioFilters: [String] = []
        var wantVideo: Bool { output.container.hasVideo && output.video.codec != VideoCodec.none }
        var wantAudio: Bool { output.audio.codec != AudioCodec.none }
    }

    /// A stream on its way to the output.
    private enum Lane {
        case copy(input: Int, output: Int, inTB: Rational)
        case encode(input: Int, decode: DecodeStage, encode: EncodeStage)
    }

    let job: JobContext
    let plan: Plan
    let inputName: String
    private let input: InputFormat
    private var lanes: [Lane] = []
    private var out: OutputFile!
    private var firstCopyDTS: [Int: Int64] = [:]
    /// Packets the demuxer called invalid data (skipped, up to DamagePolicy.limit).
    private var demuxDamage = DamagePolicy()

    init(job: JobContext, inputFile: InputFile, inputName: String, plan: Plan) throws(SpoolError) {
        self.job = job
        self.plan = plan
        self.inputName = inputName
        do {
            input = try InputFormat(url: inputFile.openedPath, limits: OpenLimits(maxStreams: job.limits.maxStreams),
                                    shouldAbort: { [job] in job.shouldAbort })
        } catch { throw SpoolError.media(error, "input \(inputName)", step: "open-input", job: job) }
    }

    /// Seconds of media the output will hold (for progress).
    var expectedDuration: Double {
        let total = input.durationSeconds ?? 0
        let start = plan.trim?.start ?? 0
        return max(0.001, min(total - start, plan.trim?.duration ?? .infinity))
    }

    func run() throws(SpoolError) -> OutputRecord {
        defer { plan.target.discard() } // no partial output under any name after a failure
        try checkLimits()
        try setUp()
        try pump()
        do { try out.finish() } catch { throw mediaError(error, step: "write-output") }
        out = nil
        try plan.target.publish(manifestPath: plan.output.path)
        return try OutputInspection.record(plan.target, manifestPath: plan.output.path, container: plan.output.container)
    }

    private func mediaError(_ e: AVError, step: String) -> SpoolError {
        SpoolError.media(e, "input \(inputName)", step: step, job: job, writing: step == "write-output" ? plan.output.path : nil)
    }

    private func checkLimits() throws(SpoolError) {
        if let d = input.durationSeconds, d > job.limits.maxDurationSeconds {
            throw SpoolError(.limitExceeded, "input \(inputName) lasts \(Int(d)) s; the limit is \(Int(job.limits.maxDurationSeconds)) s (limits.maxDurationSeconds)", step: "open-input")
        }
        if let v = input.bestStream(.video) {
            let s = input.stream(v)
            if s.width > job.limits.maxWidth || s.height > job.limits.maxHeight {
                throw SpoolError(.limitExceeded, "input \(inputName) is \(s.width)x\(s.height); the limit is \(job.limits.maxWidth)x\(job.limits.maxHeight) (limits.maxWidth/maxHeight)", step: "open-input")
            }
            if plan.wantVideo, plan.output.video.codec != .copy {
                try MemoryBudget.check(job, width: s.width, height: s.height, frames: MemoryBudget.framesTranscoding, what: "input \(inputName)")
            }
        }
    }

    private func setUp() throws(SpoolError) {
        let vIn = plan.wantVideo ? input.videoStream : nil
        let aIn = plan.wantAudio ? try SourceAudio.stream(of: input, decode: job.manifest.decode, inputName: inputName) : nil
        guard vIn != nil || aIn != nil else {
            throw SpoolError(.inputInvalid, "input \(inputName) has no \(plan.wantVideo ? "video or " : "")audio stream to write to \(plan.output.path)", step: "open-input")
        }
        let url = try plan.target.temporaryURL()
        do {
            out = try OutputFile(format: Encoding.muxer(plan.output.container), path: url, shouldAbort: { [job] in job.shouldAbort })
        } catch { throw mediaError(error, step: "open-output") }
        if let t = plan.trim, t.start > 0 {
            // Keyframe at or before the start; the trim filters cut exactly.
            try? input.seek(stream: vIn ?? aIn!, to: t.start + input.startSeconds)
        }
        if let v = vIn { try addVideo(v) }
        if let a = aIn { try addAudio(a) }
        do { try out.writeHeader(fastStart: [.mp4, .m4v, .mov, .m4a].contains(plan.output.container)) } catch {
            throw mediaError(error, step: "write-output")
        }
    }

    private func addVideo(_ idx: Int) throws(SpoolError) {
        let s = input.stream(idx)
        let v = plan.output.video
        if v.codec == .copy {
            if v.width != nil || v.height != nil || v.fps != nil {
                throw SpoolError(.unsupported, "output.video: \"copy\" cannot be combined with width, height or fps; pick a codec to re-encode", step: "open-output")
            }
            do { lanes.append(.copy(input: idx, output: try out.addStream(copying: s), inTB: s.timeBase)) } catch { throw mediaError(error, step: "open-output") }
            return
        }
        do throws(AVError) {
            let dec = try Decoder(s, threads: job.threads)
            job.logger.debug("opened decoder \(s.codecName) for input stream \(idx)", metadata: ["STEP": "open-video"])
            let source = SourceVideo(stream: s, decode: job.manifest.decode, hdr: v.hdr)
            let chain = FilterText.videoChain(source: source, trim: plan.trim, width: v.width, height: v.height, squarePixels: v.squarePixels,
                                              fps: v.fps, pixelFormat: Encoding.pixelFormat(v.pixelFormat))
            let graph = try FilterGraph(description: "[in0]\(chain)[out0]",
                                        sources: [.video(width: s.width, height: s.height, pixelFormat: dec.pixelFormat,
                                                         timeBase: s.timeBase, sampleAspect: s.sampleAspect, frameRate: s.guessedFrameRate)],
                                        sinks: [.video], threads: job.threads)
            let keepHDR = v.hdr == .keep && source.colour.isHDR
            // The tags of what the chain produced: tone mapping, a full-range
            // (yuvj) or RGB input converted to the output's format.
            let colour = source.toneMapped ? source.colour : source.colour.converted(from: dec.pixelFormatName, to: Encoding.pixelFormat(v.pixelFormat))
            let enc = try Encoding.videoEncoder(for: graph, sink: 0, settings: v, colour: colour,
                                                hdrMetadata: keepHDR ? Encoding.HDRMetadata(s) : nil,
                                                fields: job.manifest.decode.deinterlace == .off ? s.fieldOrder : .progressive,
                                                variableRate: v.fps == nil && s.isVariableFrameRate,
                                                output: out, threads: job.threads)
            let o = try out.addStream(from: enc)
            if keepHDR { try out.addSideData(s.hdrSideData, stream: o) }
            // Not turned upright (decode.autorotate false): the matrix goes
            // along, as with the command's -noautorotate, so players still do.
            if !job.manifest.decode.autorotate { try out.addSideData(s.displayMatrixSideData, stream: o) }
            job.logger.debug("video: \(source.summary)", metadata: ["STEP": "open-video"])
            lanes.append(.encode(input: idx, decode: DecodeStage(decoder: dec, graph: graph, origin: input.startTimestamp(in: dec.timeBase)),
                                 encode: EncodeStage(graph: graph, encoder: enc, output: out, stream: o, isVideo: true)))
        } catch { throw mediaError(error, step: "open-video") }
    }

    private func addAudio(_ idx: Int) throws(SpoolError) {
        let s = input.stream(idx)
        let a = plan.output.audio
        let container = plan.output.container
        if a.codec == .copy && container != .wav && container != .flac && plan.audioFilters.isEmpty && a.sampleRate == nil && a.channels == nil {
            do { lanes.append(.copy(input: idx, output: try out.addStream(copying: s), inTB: s.timeBase)) } catch { throw mediaError(error, step: "open-output") }
            return
        }
        do throws(AVError) {
            let dec = try Decoder(s, threads: job.threads)
            job.logger.debug("opened decoder \(s.codecName) for input stream \(idx)", metadata: ["STEP": "open-audio"])
            let target = Encoding.audioTarget(a, container: container, inputRate: s.sampleRate, inputChannels: s.channels)
            guard let name = target.encoder else { throw AVError.encoderNotFound }
            let enc = try Encoder(name: name, threads: job.threads)
            let rate = target.rate, channels = target.channels
            let fmt = enc.preferredSampleFormat
            let chain = FilterText.audioChain(trim: plan.trim, extra: plan.audioFilters, sampleRate: rate,
                                              sampleFormat: fmt.name, channels: channels)
            let graph = try FilterGraph(description: "[in0]\(chain)[out0]",
                                        sources: [.audio(sampleRate: s.sampleRate, sampleFormat: dec.sampleFormat,
                                                         layout: s.layoutDescription, timeBase: s.timeBase)],
                                        sinks: [.audio], threads: job.threads)
            try Encoding.openAudio(enc, rate: rate, channels: channels, settings: a, graph: graph, sink: 0, output: out)
            let o = try out.addStream(from: enc)
            lanes.append(.encode(input: idx, decode: DecodeStage(decoder: dec, graph: graph, origin: input.startTimestamp(in: dec.timeBase)),
                                 encode: EncodeStage(graph: graph, encoder: enc, output: out, stream: o, isVideo: false)))
        } catch { throw mediaError(error, step: "open-audio") }
    }

    /// Reads every packet and drives each lane; then drains them.
    private func pump() throws(SpoolError) {
        let pkt = Packet()
        let byInput = Dictionary(uniqueKeysWithValues: lanes.enumerated().map { (laneInput($0.element), $0.offset) })
        let origin = input.startSeconds
        let endSeconds = plan.trim.flatMap { t in t.duration.map { origin + t.start + $0 } }
        var finished = Set<Int>()
        var lastProgress = Date.distantPast
        while true {
            try job.checkCancelled(step: "transcode")
            let more: Bool
            do { more = try input.read(into: pkt) } catch {
                if error == .exit { try job.checkCancelled(step: "transcode") }
                do { try demuxDamage.absorb(error) } catch { throw mediaError(error, step: "demux") }
                continue
            }
            if !more { break }
            guard let li = byInput[pkt.streamIndex], !finished.contains(li) else { continue }
            let tb = input.stream(pkt.streamIndex).timeBase
            if let end = endSeconds, let ts = pkt.dts ?? pkt.pts, Double(ts) * tb.doubleValue > end + 1 {
                finished.insert(li)
                if finished.count == lanes.count { break }
                continue
            }
            if Date().timeIntervalSince(lastProgress) > 0.25, let ts = pkt.pts {
                lastProgress = Date()
                job.progress(step: "transcode", fraction: (Double(ts) * tb.doubleValue - origin - (plan.trim?.start ?? 0)) / expectedDuration)
            }
            try feed(lane: li, packet: pkt)
        }
        var decodedAny = false, encodes = false
        for lane in lanes {
            guard case let .encode(_, decode, encode) = lane else { continue }
            do { try decode.finish(afterEach: { () throws(MediaFailure) in try encode.drain() }) } catch { throw mediaError(error.error, step: error.step.rawValue) }
            encodes = true
            decodedAny = decodedAny || decode.framesDecoded > 0
        }
        if !decodedAny && encodes {
            throw SpoolError(.inputInvalid, "input \(inputName): no frame could be decoded; the file is corrupt or truncated", step: "decode")
        }
    }

    private func laneInput(_ l: Lane) -> Int {
        switch l { case .copy(let i, _, _): i; case .encode(let i, _, _): i }
    }

    private func feed(lane li: Int, packet: Packet) throws(SpoolError) {
        switch lanes[li] {
        case let .copy(_, o, inTB):
            // Timestamps start at zero on the output: shifted by the container's
            // start, as the encoded lanes are (so copied video and re-encoded
            // audio stay in sync), or after a seek by the first packet's.
            let first = firstCopyDTS[li] ?? ((plan.trim?.start ?? 0) > 0 ? (packet.dts ?? packet.pts ?? 0) : input.startTimestamp(in: inTB))
            firstCopyDTS[li] = first
            packet.shiftTimestamps(by: first)
            packet.rescaleTimestamps(from: inTB, to: out.timeBase(o))
            packet.streamIndex = o
            do { try out.write(packet) } catch { throw mediaError(error, step: "write-output") }
        case let .encode(_, decode, encode):
            do { try decode.feed(packet, afterEach: { () throws(MediaFailure) in try encode.drain() }) } catch {
                throw mediaError(error.error, step: error.step.rawValue)
            }
        }
    }
}
