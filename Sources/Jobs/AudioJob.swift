import JobSchema
import Foundation
import MediaKit
import SpoolKit

/// `audio`: the audio of any input, converted; with `loudness`, normalised
/// to the target integrated loudness in two passes: libavfilter's ebur128
/// measures, then a gain and a true-peak limiter apply it.
public struct AudioJob: JobRunner {
    public init() {}

    public func run(_ job: JobContext) throws(SpoolError) -> JobOutcome {
        guard case .audio(let a) = job.manifest.job else { preconditionFailure("AudioJob given a \(job.manifest.type) job") }
        var steps: [StepTiming] = []
        var t0 = Date()
        job.progress(step: "check-paths", fraction: 0)
        let input = try job.policy.openInput(a.input)
        let target = try job.openOutput(a.output.path, overwrite: a.output.overwrite)
        var filters: [String] = []
        if let target = a.targetLufs {
            job.progress(step: "measure-loudness", fraction: 0)
            let measured = try LoudnessMeter.integrated(job: job, input: input, inputName: a.input, output: a.output)
            steps.append(StepTiming(name: "measure-loudness", durationMs: Int(Date().timeIntervalSince(t0) * 1000)))
            t0 = Date()
            let gain = measured > -69 ? min(40, max(-40, target - measured)) : 0
            let peak = pow(10, (a.truePeak ?? -1.5) / 20)
            job.logger.info("measured \(FilterText.num((measured * 10).rounded() / 10)) LUFS, applying \(FilterText.num((gain * 100).rounded() / 100)) dB for \(FilterText.num(target)) LUFS",
                            metadata: ["STEP": "measure-loudness"])
            filters = ["volume=\(FilterText.num(gain))dB", "alimiter=limit=\(FilterText.num(max(0.0625, min(1, peak)))):level=0:attack=5:release=50"]
        }
        var out = a.output
        out.video.codec = VideoCodec.none
        let tc = try Transcoder(job: job, inputFile: input, inputName: a.input,
                                plan: Transcoder.Plan(trim: nil, output: out, target: target, audioFilters: filters))
        let rec = try tc.run()
        steps.append(StepTiming(name: "decode+encode", durationMs: Int(Date().timeIntervalSince(t0) * 1000)))
        return JobOutcome(outputs: [rec], steps: steps)
    }
}

/// Integrated loudness (EBU R128, LUFS) of the best audio stream.
enum LoudnessMeter {
    /// Measured on the signal as the output will carry it: resampled and
    /// downmixed the same way (a 5.1 input is louder or quieter as stereo).
    static func integrated(job: JobContext, input: InputFile, inputName: String, output: OutputSpec) throws(SpoolError) -> Double {
        var missingTrack: SpoolError?
        do throws(AVError) {
            let fmt = try InputFormat(url: input.openedPath, limits: OpenLimits(maxStreams: job.limits.maxStreams),
                                      shouldAbort: { [job] in job.shouldAbort })
            // The track the output will carry (decode.audioTrack; a missing
            // one is reported below with the count).
            let idx: Int
            switch SourceAudio.choose(fmt, decode: job.manifest.decode, inputName: inputName) {
            case .stream(let i): idx = i
            case .noAudio: throw AVError.invalidData
            case .missing(let error): missingTrack = error; throw AVError.invalidData
            }
            let s = fmt.stream(idx)
            let dec = try Decoder(s, threads: job.threads)
            let target = Encoding.audioTarget(output.audio, container: output.container, inputRate: s.sampleRate, inputChannels: s.channels)
            let chain = FilterText.resampleAndDownmix(sampleRate: target.rate, channels: target.channels)
            let graph = try FilterGraph(description: "[in0]\(chain),ebur128=metadata=1[out0]",
                                        sources: [.audio(sampleRate: s.sampleRate, sampleFormat: dec.sampleFormat,
                                                         layout: s.layoutDescription, timeBase: s.timeBase)],
                                        sinks: [.audio])
            let pkt = Packet(), measured = Frame()
            var last: Double?
            let total = fmt.durationSeconds ?? 0
            // The meter is the graph's sink: what it measured so far rides on
            // each frame's metadata; no encoder.
            func pullAll() throws(MediaFailure) {
                do {
                    while try graph.pull(into: measured) == .frame {
                        if let v = measured.metadata("lavfi.r128.I"), let d = Double(v) { last = d }
                    }
                } catch { throw MediaFailure(.filter, error) }
            }
            let decode = DecodeStage(decoder: dec, graph: graph)
            while try fmt.read(into: pkt) {
                if job.shouldAbort { throw AVError.exit }
                guard pkt.streamIndex == idx else { continue }
                if total > 0, let p = pkt.pts { job.progress(step: "measure-loudness", fraction: Double(p) * s.timeBase.doubleValue / total) }
                try MediaFailure.unwrapping { () throws(MediaFailure) in try decode.feed(pkt, afterEach: pullAll) }
            }
            try MediaFailure.unwrapping { () throws(MediaFailure) in try decode.finish(afterEach: pullAll) }
            guard let last else { throw AVError.invalidData }
            return last
        } catch {
            if let missingTrack { throw missingTrack }
            if error == .invalidData {
                throw SpoolError(.inputInvalid, "input \(inputName): no audio could be measured; it needs a decodable audio stream", step: "measure-loudness", cause: error)
            }
            throw SpoolError.media(error, "input \(inputName)", step: "measure-loudness", job: job)
        }
    }
}
