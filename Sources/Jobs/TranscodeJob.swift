import JobSchema
import Foundation
import MediaKit
import SpoolKit

/// `transcode`: one input to one output, with optional trim, scaling, fps,
/// codec and quality settings; `copy` streams are remuxed without decoding.
public struct TranscodeJob: JobRunner {
    public init() {}

    public func run(_ job: JobContext) throws(SpoolError) -> JobOutcome {
        guard case .transcode(let t) = job.manifest.job else { preconditionFailure("TranscodeJob given a \(job.manifest.type) job") }
        let t0 = Date()
        job.progress(step: "check-paths", fraction: 0)
        let input = try job.policy.openInput(t.input)
        let target = try job.openOutput(t.output.path, overwrite: t.output.overwrite)
        let tc = try Transcoder(job: job, inputFile: input, inputName: t.input,
                                plan: Transcoder.Plan(trim: t.trim, output: t.output, target: target))
        let rec = try tc.run()
        let copy = t.output.video.codec == .copy && (t.output.audio.codec == .copy || t.output.audio.codec == AudioCodec.none)
        return JobOutcome(outputs: [rec], steps: [StepTiming(name: copy ? "remux" : "decode+encode", durationMs: Int(Date().timeIntervalSince(t0) * 1000))],
                          sideFiles: Poster.make(job, output: t.output.path, record: rec))
    }
}
