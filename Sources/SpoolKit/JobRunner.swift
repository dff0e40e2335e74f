import JobSchema
import Foundation
import Logging
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// One job type's implementation. `run` is called on a worker thread of its
/// own (it may block), and everything it creates stays on that thread: the
/// FFmpeg state of a job never crosses to another task.
public protocol JobRunner: Sendable {
    func run(_ job: JobContext) throws(SpoolError) -> JobOutcome
}

/// What a successful run reports; the Finisher turns it into the record.
public struct JobOutcome: Sendable {
    public var outputs: [OutputRecord]
    public var steps: [StepTiming]
    public var probe: ProbeRecord?
    /// Files kept beside the result (`done/<id>+<name>`), such as the
    /// gallery's poster: written durably before the record, which lists them.
    public var sideFiles: [SideFile]
    public init(outputs: [OutputRecord] = [], steps: [StepTiming] = [], probe: ProbeRecord? = nil, sideFiles: [SideFile] = []) {
        self.outputs = outputs; self.steps = steps; self.probe = probe; self.sideFiles = sideFiles
    }
}

/// A file a job keeps beside its result in done/, named by the job type
/// (`poster.jpg`): the spool stores, lists, purges and sweeps it without
/// knowing what it holds.
public struct SideFile: Sendable, Equatable {
    public let name: String
    public let bytes: [UInt8]
    /// `name`: 1-64 bytes of a-z 0-9 . - (chosen by code, never by a manifest).
    public init(name: String, bytes: [UInt8]) {
        precondition(SpoolName.isSideFileName(name), "side file name \(name) is not 1-64 bytes of a-z 0-9 . -")
        self.name = name; self.bytes = bytes
    }
}

/// Why a job was told to stop. `fenced`: the spool's file system fenced
/// this host off (Fencing.swift); the job is abandoned, nothing published.
public enum CancelReason: Int32, Sendable { case none = 0, timeout = 1, shutdown = 2, cancelled = 3, fenced = 4 }

/// Everything a runner may use. `shouldAbort` is what FFmpeg's interrupt
/// callback polls: true aborts blocking I/O and the job.
public final class JobContext: Sendable {
    public let id: String
    public let manifest: Manifest
    public let attempt: Int
    public let policy: PathPolicy
    public let limits: MediaLimits
    public let logger: Logger
    /// When the job times out, on the monotonic clock: a wall-clock jump
    /// neither times out every running job nor stretches their time.
    public let deadline: ContinuousClock.Instant
    /// Threads for this job's decoders, encoders and filter graphs (0: FFmpeg
    /// picks, as many as cores). Chosen at the start from the load.
    public let threads: Int
    /// File descriptors this job may hold at once: the process's soft
    /// RLIMIT_NOFILE shared by the workers, less a reserve for the spool's
    /// own files. A job that needs more fails LIMIT_EXCEEDED instead of
    /// starving the jobs beside it (a 500-clip compose holds ~1000).
    public let descriptorBudget: Int
    /// Bytes of memory this job may plan to use (limits.maxJobMemoryBytes,
    /// else the daemon's memory limit shared by the workers): a job whose
    /// frames would need more fails LIMIT_EXCEEDED before decoding.
    public let memoryBudget: Int
    private let cancelState = Atomic<Int32>(0)
    let layout: SpoolLayout
    let startedAt: Date
    /// What `progress` changes, from the job's thread, read by the engine's.
    private struct Progress { var step = "start", fraction = 0.0, lastWrite = Date.distantPast, lastEvent = Date.distantPast }
    private let progressState = Mutex(Progress())
    /// Where `progress` events go (at most one a second); nil in tests.
    let events: EventLog?

    init(id: String, manifest: Manifest, attempt: Int, policy: PathPolicy, limits: MediaLimits,
         logger: Logger, deadline: ContinuousClock.Instant, layout: SpoolLayout, startedAt: Date, threads: Int = 0,
         descriptorBudget: Int = 1024, memoryBudget: Int = 1 << 40, events: EventLog? = nil) {
        self.events = events
        self.id = id; self.manifest = manifest; self.attempt = attempt; self.policy = policy
        self.threads = threads
        self.descriptorBudget = descriptorBudget
        self.memoryBudget = memoryBudget
        self.limits = limits; self.logger = logger; self.deadline = deadline; self.layout = layout
        self.startedAt = startedAt
    }

    /// Checks and opens an output (PathPolicy.openOutput) as this job's:
    /// a file that another job still in done/ wrote is not replaced unless
    /// the manifest says `overwrite`; what this job writes is marked as its own.
    public func openOutput(_ raw: String, field: String = "output.path", overwrite: Bool, directory: Bool = false) throws(SpoolError) -> OutputTarget {
        let layout = self.layout
        return try policy.openOutput(raw, field: field, owner: id, overwrite: overwrite, kind: directory ? .directory : .file,
                                     isRetained: { Sys.exists(layout.manifest($0, in: layout.done)) || Sys.exists(layout.manifest($0, in: layout.processing)) })
    }

    /// Why the job is being stopped, if it is.
    public var cancelReason: CancelReason {
        CancelReason(rawValue: cancelState.load(ordering: .relaxed)) ?? .none
    }

    /// For FFmpeg's interrupt callback: cheap, callable from any thread.
    public var shouldAbort: Bool { cancelState.load(ordering: .relaxed) != 0 }

    func cancel(_ reason: CancelReason) {
        _ = cancelState.compareExchange(expected: 0, desired: reason.rawValue, ordering: .relaxed)
    }

    /// Throws TIMEOUT or INTERRUPTED when the job has been told to stop.
    public func checkCancelled(step: String) throws(SpoolError) {
        switch cancelReason {
        case .none: return
        case .timeout: throw timeoutError(step: step)
        case .shutdown: throw SpoolError(.interrupted, "the daemon is stopping; the job will run again after restart", step: step)
        case .cancelled: throw SpoolError(.cancelled, "cancelled by an operator (mediaspool cancel) in step \(step); `mediaspool replay \(id)` runs it again", step: step)
        case .fenced: throw SpoolError(.interrupted, "this host is fenced off from the spool; another host's recovery runs the job again", step: step)
        }
    }

    public func timeoutError(step: String) -> SpoolError {
        let t = manifest.timeoutSeconds.map { "\(Int($0)) s" } ?? "the configured timeout"
        return SpoolError(.timeout, "the job ran past its timeoutSeconds (\(t)) in step \(step); raise timeoutSeconds or make the job smaller", step: step)
    }

    public var step: String { progressState.withLock { $0.step } }
    public var fraction: Double { progressState.withLock { $0.fraction } }

    /// Reports progress; written to processing/<id>.progress at most twice a
    /// second for `mediaspool status` (not fsynced: it is advisory). Jobs
    /// shorter than half a second write none: for a probe the file writes
    /// cost more than the job.
    public func progress(step: String, fraction: Double) {
        let now = Date()
        let (write, tell, s, f) = progressState.withLock { p in
            p.step = step; p.fraction = min(1, max(0, fraction))
            let write = now.timeIntervalSince(startedAt) >= 0.5 && now.timeIntervalSince(p.lastWrite) >= 0.5
            if write { p.lastWrite = now }
            let tell = write && events != nil && now.timeIntervalSince(p.lastEvent) >= 1
            if tell { p.lastEvent = now }
            return (write, tell, p.step, p.fraction)
        }
        if write { writeProgress() }
        if tell, let events {
            var e = JobEvent(.progress, id: id, state: "processing").with(manifest)
            e.attempt = attempt; e.step = s; e.fraction = (f * 1000).rounded() / 1000
            try? events.append(e)
        }
    }

    func writeProgress() {
        let rec = ProgressRecord(id: id, type: manifest.type.rawValue, step: step, fraction: fraction, attempt: attempt,
                                 startedAt: RFC3339.string(startedAt), pid: Sys.processID, updatedAt: RFC3339.string(Date()))
        // Through a fresh name, whatever is planted in processing/; not
        // fsynced: a crash loses only a progress display.
        try? Durable.write(RecordCoding.encode(rec), to: layout.progress(id), step: "progress",
                           permissions: [.ownerReadWrite, .groupRead, .otherRead], sync: false)
    }
}


/// How many threads one job's codecs get.
///
/// FFmpeg's default (thread_count 0) gives every decoder and encoder as many
/// threads as cores, which is right for one job alone. With every worker
/// busy, N jobs x N threads on N cores only adds frame-threading delay,
/// context switches and per-thread start-up (a seek-and-decode thumbnail
/// decodes `threads - 1` frames past its target before the first one comes
/// out). Measured on 2 cores with 2 workers (bench/results.md): one thread
/// per job is 19% faster on a 720p transcode and 40% faster on thumbnails.
public enum JobThreads {
    /// `configured` (> 0) wins. Otherwise all cores (0) when the job runs
    /// alone, else an equal share of the cores among the jobs running or
    /// about to run (`concurrent`, this one included), at least one.
    public static func perJob(configured: Int, cores: Int, concurrent: Int) -> Int {
        if configured > 0 { return configured }
        if concurrent <= 1 { return 0 }
        return max(1, cores / concurrent)
    }
}
