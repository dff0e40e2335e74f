import JobSchema
import MediaKit
import SpoolKit

/// Process-wide FFmpeg settings from the config: the largest single
/// allocation FFmpeg may make (av_max_alloc), so a file declaring huge
/// dimensions fails with ENOMEM (LIMIT_EXCEEDED) instead of exhausting memory.
public func applyProcessLimits(_ limits: MediaLimits) {
    MediaKit.setMaxAllocation(limits.maxAllocBytes)
}

/// The runners this build has, by job type, each tagging FFmpeg's log lines
/// with its job's id.
public enum JobTypes {
    public static var all: [JobType: any JobRunner] {
        let runners: [JobType: any JobRunner] = [.probe: ProbeJob(), .transcode: TranscodeJob(), .audio: AudioJob(), .thumbnail: ThumbnailJob(), .compose: ComposeJob(), .package: PackageJob()]
        return runners.mapValues { FFmpegLogAttributed(inner: $0) }
    }
}

/// Runs a runner with its thread's FFmpeg log lines tagged with the job id
/// (`FFmpegLog.setJob`), cleared after.
struct FFmpegLogAttributed: JobRunner {
    let inner: any JobRunner
    func run(_ job: JobContext) throws(SpoolError) -> JobOutcome {
        FFmpegLog.setJob(job.id)
        defer { FFmpegLog.setJob(nil) }
        return try inner.run(job)
    }
}
