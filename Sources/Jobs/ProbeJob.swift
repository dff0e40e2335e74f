import JobSchema
import Foundation
import MediaKit
import SpoolKit

/// `probe`: libavformat opens the input in-process and reads its streams.
public struct ProbeJob: JobRunner {
    public init() {}

    public func run(_ job: JobContext) throws(SpoolError) -> JobOutcome {
        guard case .probe(let inputPath) = job.manifest.job else { preconditionFailure("ProbeJob given a \(job.manifest.type) job") }
        let t0 = Date()
        job.progress(step: "check-paths", fraction: 0)
        let input = try job.policy.openInput(inputPath)
        job.progress(step: "open-input", fraction: 0.2)
        let info: ProbeRecord
        do {
            let fmt = try InputFormat(url: input.openedPath, limits: OpenLimits(maxStreams: job.limits.maxStreams, quickStreamInfo: true, h264FromParameterSets: true, h264InMatroska: true),
                                      shouldAbort: { [job] in job.shouldAbort })
            info = fmt.info()
        } catch {
            throw SpoolError.media(error, "input \(inputPath)", step: "open-input", job: job)
        }
        job.progress(step: "probe", fraction: 1)
        let ms = Int(Date().timeIntervalSince(t0) * 1000)
        return JobOutcome(steps: [StepTiming(name: "probe", durationMs: ms)], probe: info)
    }
}
