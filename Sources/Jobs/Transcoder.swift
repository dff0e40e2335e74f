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
        case encode(input: Int, output: Int, decoder: Decoder, graph: FilterGraph, encoder: Encoder, isVideo: Bool)
    }

    let job: JobContext
    let plan: Plan
    let inputName: String
    private let input: InputFormat
    private var lanes: [Lane] = []
    private var out: OutputFile!
    private var firstCopyDTS: [Int: Int64] = [:]
    /// The last video timestamp sent to each encoder: a frame that would not
    /// come after it is dropped (what the ffmpeg command's constant-rate
    /// output does), so a clip that is almost constant rate never reaches
    /// the muxer with two frames on one tick.
    private var lastVideoPTS: [Int: Int64] = [:]
    private var decodedAny = false
    private var decodeErrors = 0

    init(job: JobContext, inputFile: InputFile, inputName: String, plan: Plan) throws(SpoolError) {
        self.job = job
        self.plan = plan
        self.inputName = inputName
        do {
            input = try InputFormat(url: inputFile.ffmpegURL, limits: OpenLimits(maxStreams: job.limits.maxStreams),
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
        if e == .encoderNotFound { return SpoolError(.unsupported, "this build has no encoder for the requested codec", step: step, cause: e) }
        if step == "write-output", let n = e.posixErrno {
            return SpoolError.io(Errno(rawValue: n), "writing \(plan.output.path)", step: step)
        }
        return SpoolError.media(e, "input \(inputName)", step: step, job: job)
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
            let dec = try Decoder(s, threads: job.codecThreads)
            job.logger.debug("opened decoder \(s.codecName) for input stream \(idx)", metadata: ["STEP": "open-video"])
            let source = SourceVideo(stream: s, decode: job.manifest.decode, hdr: v.hdr)
            let chain = FilterText.videoChain(source: source, trim: plan.trim, width: v.width, height: v.height, squarePixels: v.squarePixels,
                                              fps: v.fps, pixelFormat: Encoding.pixelFormat(v.pixelFormat))
            let graph = try FilterGraph(description: "[in0]\(chain)[out0]",
                                        sources: [.video(width: s.width, height: s.height, pixelFormat: dec.pixelFormat,
                                                         timeBase: s.timeBase, sampleAspect: s.sampleAspect, frameRate: s.guessedFrameRate)],
                                        sinks: [.video], threads: job.codecThreads)
            let keepHDR = v.hdr == .keep && source.colour.isHDR
            // The tags of what the chain produced: tone mapping, a full-range
            // (yuvj) or RGB input converted to the output's format.
            let colour = source.toneMapped ? source.colour : source.colour.converted(from: dec.pixelFormatName, to: Encoding.pixelFormat(v.pixelFormat))
            let enc = try Encoding.videoEncoder(for: graph, sink: 0, settings: v, colour: colour,
                                                hdrMetadata: keepHDR ? Encoding.HDRMetadata(s) : nil,
                                                fields: job.manifest.decode.deinterlace == .off ? s.fieldOrder : .progressive,
                                                variableRate: v.fps == nil && s.isVariableFrameRate,
                                                output: out, threads: job.codecThreads)
            let o = try out.addStream(from: enc)
            if keepHDR { try out.addSideData(s.hdrSideData, stream: o) }
            // Not turned upright (decode.autorotate false): the matrix goes
            // along, as with the command's -noautorotate, so players still do.
            if !job.manifest.decode.autorotate { try out.addSideData(s.displayMatrixSideData, stream: o) }
            job.logger.debug("video: \(source.summary)", metadata: ["STEP": "open-video"])
            lanes.append(.encode(input: idx, output: o, decoder: dec, graph: graph, encoder: enc, isVideo: true))
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
            let dec = try Decoder(s, threads: job.codecThreads)
            job.logger.debug("opened decoder \(s.codecName) for input stream \(idx)", metadata: ["STEP": "open-audio"])
            let target = Encoding.audioTarget(a, container: container, inputRate: s.sampleRate, inputChannels: s.channels)
            guard let name = target.encoder else { throw AVError.encoderNotFound }
            let enc = try Encoder(name: name, threads: job.codecThreads)
            let rate = target.rate, channels = target.channels
            let fmt = enc.preferredSampleFormat
            let chain = FilterText.audioChain(trim: plan.trim, extra: plan.audioFilters, sampleRate: rate,
                                              sampleFormat: fmt.name, channels: channels)
            let graph = try FilterGraph(description: "[in0]\(chain)[out0]",
                                        sources: [.audio(sampleRate: s.sampleRate, sampleFormat: dec.sampleFormat,
                                                         layout: s.layoutDescription, timeBase: s.timeBase)],
                                        sinks: [.audio], threads: job.codecThreads)
            try Encoding.openAudio(enc, rate: rate, channels: channels, settings: a, graph: graph, sink: 0, output: out)
            let o = try out.addStream(from: enc)
            lanes.append(.encode(input: idx, output: o, decoder: dec, graph: graph, encoder: enc, isVideo: false))
        } catch { throw mediaError(error, step: "open-audio") }
    }

    /// Reads every packet and drives each lane; then drains them.
    private func pump() throws(SpoolError) {
        let pkt = Packet(), frame = Frame(), filtered = Frame(), encoded = Packet()
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
                if error == .invalidData { decodeErrors += 1; if decodeErrors > 100 { throw mediaError(error, step: "demux") }; continue }
                throw mediaError(error, step: "demux")
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
            try feed(lane: li, packet: pkt, frame: frame, filtered: filtered, encoded: encoded)
        }
        for li in lanes.indices { try drain(lane: li, frame: frame, filtered: filtered, encoded: encoded) }
        if !decodedAny && lanes.contains(where: { if case .encode = $0 { true } else { false } }) {
            throw SpoolError(.inputInvalid, "input \(inputName): no frame could be decoded; the file is corrupt or truncated", step: "decode")
        }
    }

    private func laneInput(_ l: Lane) -> Int {
        switch l { case .copy(let i, _, _): i; case .encode(let i, _, _, _, _, _): i }
    }

    private func feed(lane li: Int, packet: Packet, frame: Frame, filtered: Frame, encoded: Packet) throws(SpoolError) {
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
        case let .encode(_, _, dec, _, _, _):
            do { try dec.send(packet) } catch {
                if error == .invalidData { decodeErrors += 1; if decodeErrors > 100 { throw mediaError(error, step: "decode") }; return }
                throw mediaError(error, step: "decode")
            }
            try decodeLoop(li, frame: frame, filtered: filtered, encoded: encoded)
        }
    }

    private func decodeLoop(_ li: Int, frame: Frame, filtered: Frame, encoded: Packet) throws(SpoolError) {
        guard case let .encode(_, _, dec, graph, _, _) = lanes[li] else { return }
        while true {
            let r: CodecResult
            do { r = try dec.receive(into: frame) } catch {
                if error == .invalidData { decodeErrors += 1; if decodeErrors > 100 { throw mediaError(error, step: "decode") }; continue }
                throw mediaError(error, step: "decode")
            }
            guard r == .frame else { return }
            decodedAny = true
            // Outputs start at zero, as the ffmpeg command's do.
            frame.pts = frame.bestEffortTimestamp.map { $0 - input.startTimestamp(in: dec.timeBase) }
            do { try graph.push(frame) } catch { throw mediaError(error, step: "filter") }
            frame.unref()
            try filterLoop(li, filtered: filtered, encoded: encoded)
        }
    }

    private func filterLoop(_ li: Int, filtered: Frame, encoded: Packet) throws(SpoolError) {
        guard case let .encode(_, _, _, graph, enc, isVideo) = lanes[li] else { return }
        while true {
            let r: CodecResult
            do { r = try graph.pull(into: filtered) } catch { throw mediaError(error, step: "filter") }
            guard r == .frame else { return }
            if let p = filtered.pts { filtered.pts = rescale(p, from: graph.timeBase(), to: enc.timeBase) }
            if isVideo, let p = filtered.pts {
                if let last = lastVideoPTS[li], p <= last { filtered.unref(); continue }
                lastVideoPTS[li] = p
            }
            if isVideo { filtered.clearPictureType() }
            do { try enc.send(filtered) } catch { throw mediaError(error, step: "encode") }
            filtered.unref()
            try encodeLoop(li, encoded: encoded)
        }
    }

    private func encodeLoop(_ li: Int, encoded: Packet) throws(SpoolError) {
        guard case let .encode(_, o, _, _, enc, isVideo) = lanes[li] else { return }
        do { try out.writePackets(from: enc, stream: o, using: encoded, isVideo: isVideo) } catch {
            throw mediaError(error, step: error.posixErrno != nil ? "write-output" : "encode")
        }
    }

    private func drain(lane li: Int, frame: Frame, filtered: Frame, encoded: Packet) throws(SpoolError) {
        guard case let .encode(_, _, dec, graph, enc, _) = lanes[li] else { return }
        do { try dec.send(nil) } catch { throw mediaError(error, step: "decode") }
        try decodeLoop(li, frame: frame, filtered: filtered, encoded: encoded)
        do { try graph.push(nil) } catch { throw mediaError(error, step: "filter") }
        try filterLoop(li, filtered: filtered, encoded: encoded)
        do { try enc.send(nil) } catch { throw mediaError(error, step: "encode") }
        try encodeLoop(li, encoded: encoded)
    }
}
