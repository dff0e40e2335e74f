import JobSchema
import Foundation
import Logging
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's engine: recovery at start, the watcher, N worker threads that
/// claim, run and finish jobs, and `tick()` for the supervisor (timeouts,
/// watchdog health, status text). Workers are OS threads, not tasks: job
/// runners block in FFmpeg and fsync, which must not starve the cooperative
/// pool that runs signal handling and sd_notify.
public final class Engine: Sendable {
    public struct Health: Sendable {
        /// False when a worker is stuck past its job's timeout: stop WATCHDOG=1.
        public var progressing: Bool
        public var statusText: String
    }

    struct Running {
        let context: JobContext
        let worker: Int
    }

    /// Everything that changes after init, behind one lock the compiler checks.
    struct State {
        /// Replaced on SIGHUP; read by workers, the watcher and the metrics.
        var config: Config
        var running: [String: Running] = [:]
        var workerTarget = 0
        var workerThreads = 0
        var stopping = false
        var counters = (done: 0, failed: 0, retried: 0)
        var watcher: Watcher?
        var daemonLock: FileDescriptor?
        /// Set once the spool's file system fenced this host off (Fencing.swift).
        var fencedOff: SpoolError?
        /// The heartbeat thread of shared mode has not left yet.
        var heartbeatRunning = false
        /// Set at the end of a shutdown, once the workers are gone: the
        /// heartbeat goes on through the grace period, listing the jobs
        /// still finishing.
        var heartbeatStop = false
    }

    let runners: [JobType: any JobRunner]
    let logger: Logger
    public let queue: JobQueue
    /// Read once: Foundation reads cgroup limits for it, not for every job.
    private let cores = ProcessInfo.processInfo.activeProcessorCount
    /// The daemon's memory limit (MemoryMax=, else RAM), read once.
    private let memoryLimit = Sys.memoryLimit()
    let layout: SpoolLayout
    let claimer: Claimer
    let finisher: Finisher
    let scanner: Scanner
    private let state: Mutex<State>
    /// Signalled when a worker thread leaves (shutdown waits on it).
    private let workersExited = Sys.Condition()
    private let heartbeatExited = Sys.Condition()

    /// The configuration in force (a copy: SIGHUP may replace it at any time).
    public var config: Config { state.withLock { $0.config } }

    public init(config: Config, runners: [JobType: any JobRunner], logger: Logger) {
        self.state = Mutex(State(config: config))
        self.queue = JobQueue(maxDelay: config.backoffMaxSeconds, headWindow: config.hosts == .shared ? JobQueue.sharedHeadWindow : 1)
        self.layout = config.layout
        self.runners = runners
        self.logger = logger
        claimer = Claimer(layout: config.layout, events: config.eventLog)
        finisher = Finisher(layout: config.layout, events: config.eventLog)
        scanner = Scanner(layout: config.layout, queue: queue)
    }

    /// Checks and recovers the spool, then starts the watcher and workers.
    /// When it returns the daemon is ready (send READY=1).
    public func start() throws(SpoolError) {
        let config = self.config
        if let problem = config.localRootsProblem { throw SpoolError(.internal, problem, step: "start") }
        do { try layout.create() } catch { throw SpoolError.io(error, "creating spool directories under \(layout.root)") }
        let mediaRoot = config.pathPolicy.local(config.effectiveMediaRoot.lexicallyNormalized())
        do { try Sys.mkdirs(mediaRoot) } catch {
            throw SpoolError.io(error, "creating media root \(mediaRoot)")
        }
        try checkFileSystem(config)
        // A shared lock that `mediaspool status` tests, and the settings
        // every daemon on this spool must share (DaemonLock.swift).
        let lock = try DaemonLock.acquire(layout, settings: DaemonLock.Settings(config), logger: logger)
        state.withLock { $0.daemonLock = lock }

        let report = Recovery(config: config, logger: logger).run()
        logger.info("spool \(layout.root) checked: \(report.recovered) stale jobs requeued, \(report.finished) finished, \(report.failed) failed, \(report.tempFilesRemoved) temporary files removed",
                    metadata: ["STEP": "recover"])
        applyPause()
        let w = try Watcher(scanner: scanner, logger: logger,
                            rescanInterval: { [weak self] in self?.config.rescanSeconds ?? 10 },
                            onRescan: { [weak self] in self?.periodicRecovery() },
                            onControl: { [weak self] in self?.applyControl() })
        state.withLock { $0.watcher = w }
        Thread.detachNewThread { w.run() }
        Fault.armSeams()
        setWorkers(config.workers)
        if config.hosts == .shared { startHeartbeat() }
        Fault.beforeReady()
    }

    /// Logs the spool's file system; in shared mode refuses one known not
    /// to fence, and warns about one not tested or local (FileSystemCheck.swift).
    func checkFileSystem(_ config: Config) throws(SpoolError) {
        let fs: SpoolFileSystem
        do { fs = try SpoolFileSystem.detect(layout.root) } catch {
            if config.hosts == .shared { throw error }
            return logger.warning("cannot tell the spool's file system: \(error.message)", metadata: ["STEP": "start"])
        }
        logger.info("spool \(layout.root) is on \(fs.name); host \(config.effectiveHostId), \(config.hosts.rawValue) mode",
                    metadata: ["STEP": "start", "FILE_SYSTEM": "\(fs.name)"])
        guard config.hosts == .shared else { return }
        if let warning = try fs.checkShared(allowUnfenced: config.allowUnfencedShared, spool: layout.root) {
            logger.warning("\(warning)", metadata: ["STEP": "start", "FILE_SYSTEM": "\(fs.name)"])
        }
    }

    /// Shared mode: `hosts/<host-id>.json` every `heartbeatSeconds` on a
    /// thread of its own (a write to a hung mount blocks it alone), until
    /// the daemon stops. The thread owns the file: on a clean stop it
    /// removes it itself, after its last write, so a write that was stuck
    /// in a hung mount cannot bring it back after the removal.
    func startHeartbeat() {
        let startedAt = RFC3339.string(Date())
        let cfg = config, id = cfg.effectiveHostId
        if let other = Heartbeats.read(layout, timeout: cfg.hostTimeoutSeconds).first(where: { $0.host == id }), !other.gone, other.pid != Sys.processID {
            logger.warning("hosts/\(id).json was written \(Int(other.ageSeconds)) s ago by pid \(other.pid): if another daemon runs with host id \(id), on this host or another, give each its own (--host-id, config hostId), or their heartbeats overwrite each other and records cannot tell them apart; if it was this host's previous daemon, ignore this",
                           metadata: ["STEP": "start"])
        }
        let t = Thread { [self] in
            var last = ContinuousClock.now.advanced(by: .seconds(-3600))
            while true {
                let (stop, cfg, jobs) = state.withLock { ($0.heartbeatStop || $0.fencedOff != nil, $0.config, $0.running.keys.sorted()) }
                if stop { break }
                if (ContinuousClock.now - last).seconds >= cfg.heartbeatSeconds {
                    last = .now
                    let beat = HostBeat(host: cfg.effectiveHostId, pid: Sys.processID, startedAt: startedAt, beatAt: RFC3339.string(Date()),
                                        workers: cfg.workers, jobs: jobs)
                    do throws(SpoolError) { try Heartbeats.write(beat, layout) } catch {
                        if error.meansFencedOff { fence(error); break }
                        logger.warning("cannot write the heartbeat: \(error.message)", metadata: ["STEP": "heartbeat", "ERROR_CODE": "\(error.code.rawValue)"])
                    }
                }
                Sys.sleep(milliseconds: 100)
            }
            if !isFencedOff { Heartbeats.remove(config.effectiveHostId, layout) }
            heartbeatExited.lock()
            state.withLock { $0.heartbeatRunning = false }
            heartbeatExited.broadcast()
            heartbeatExited.unlock()
        }
        state.withLock { $0.heartbeatRunning = true }
        t.name = "heartbeat"
        t.start()
    }

    /// SIGHUP: a new configuration. The worker count changes at once (extra
    /// workers leave after their current job); the layout does not, nor do
    /// the roots and tenants: every daemon on the spool must resolve paths
    /// alike (DaemonLock.swift), and the others checked this one's at start.
    public func reload(_ new: Config) {
        let (c, keptRoots) = state.withLock { state in
            var c = new
            c.spool = state.config.spool
            // The host's identity and mode stay those it started with (its
            // heartbeat file and queue order were made for them).
            c.hosts = state.config.hosts; c.hostId = state.config.hostId
            let kept = DaemonLock.Settings(c) != DaemonLock.Settings(state.config)
            if kept { c.mediaRoot = state.config.mediaRoot; c.allowRoots = state.config.allowRoots; c.tenants = state.config.tenants }
            state.config = c
            return (c, kept)
        }
        setWorkers(c.workers)
        if keptRoots {
            logger.warning("configuration reloaded without its new media roots, allowed roots or tenants: daemons sharing a spool must resolve paths alike, so those change only with a restart (systemctl restart mediaspool)", metadata: ["STEP": "reload"])
        }
        logger.notice("configuration reloaded: \(c.workers) workers", metadata: ["STEP": "reload"])
    }

    func setWorkers(_ n: Int) {
        let (first, toStart) = state.withLock { state in
            state.workerTarget = n
            let toStart = max(0, n - state.workerThreads)
            let first = state.workerThreads
            state.workerThreads += toStart
            return (first, toStart)
        }
        queue.wakeAll()
        for i in first..<(first + toStart) {
            let t = Thread { [self] in workerLoop(i) }
            t.name = "worker-\(i)"
            t.stackSize = 8 << 20
            t.start()
        }
    }

    private func shouldKeep(_ index: Int) -> Bool {
        state.withLock { !$0.stopping && index < $0.workerTarget }
    }

    private func workerLoop(_ index: Int) {
        while let entry = queue.next(while: { shouldKeep(index) }) {
            process(entry, worker: index)
            queue.finished(entry)
        }
        state.withLock { $0.workerThreads -= 1 }
        workersExited.lock(); workersExited.broadcast(); workersExited.unlock()
    }

    func process(_ entry: QueueEntry, worker: Int) {
        let result: ClaimResult
        guard !isFencedOff else { return }
        do { result = try claimer.claim(entry) } catch {
            if error.meansFencedOff { return fence(error) }
            logger.error("cannot claim \(entry.id): \(error.message)", metadata: ["JOB_ID": "\(entry.id)", "STEP": "claim", "ERROR_CODE": "\(error.code.rawValue)"])
            return
        }
        switch result {
        case .claimed(let job):
            let since = max(Double(entry.arrival) / 1e9, entry.notBefore)
            execute(job, worker: worker, waited: job.startedAt.timeIntervalSince1970 - since)
        case .gone: return
        case .busy:
            // Another claimer or a recovery (the sweep's) holds the lock,
            // and may release it without the entry moving, or move it into
            // our queue's directories: the inotify event for that may have
            // come and gone while we were here. Look again shortly instead of
            // waiting for the next full rescan.
            requeue(entry, after: 0.2)
        case .deferred:
            // The same id runs (here or on another daemon) or waits in
            // retry/: look again later (cheap: a lock try and a stat).
            requeue(entry, after: 2)
        case .duplicate:
            logger.notice("duplicate of done job \(entry.id) removed from inbox/", metadata: ["JOB_ID": "\(entry.id)", "STEP": "claim", "STATUS": "duplicate"])
        case .refused(let error):
            state.withLock { $0.counters.failed += 1 }
            SpoolMetrics.jobEnded(type: "unknown", outcome: "failed", code: error.code)
            logger.warning("\(Escaping.quoted(entry.id)) refused at the door: \(error.code.rawValue)", metadata: ["JOB_ID": "\(entry.id)", "STEP": "claim", "STATUS": "failed", "ERROR_CODE": "\(error.code.rawValue)"])
        }
    }

    /// The soft RLIMIT_NOFILE shared by the workers, less 64 for the
    /// spool's own files (locks, records, inotify, the journal).
    static func descriptorBudget(workers: Int) -> Int {
        guard let limit = Sys.openFileLimit() else { return 1 << 20 }
        return max(16, (limit - 64) / max(1, workers))
    }

    private func requeue(_ entry: QueueEntry, after seconds: Double) {
        var again = entry
        again.notBefore = max(entry.notBefore, Date().timeIntervalSince1970 + seconds)
        queue.upsert(again)
    }

    func execute(_ job: ClaimedJob, worker: Int, waited: Double) {
        var log = logger
        log[metadataKey: "JOB_ID"] = "\(job.id)"
        log[metadataKey: "ATTEMPT"] = "\(job.state.attempts)"
        defer {
            job.lock.release()
            // A newer manifest of the same id may have waited in inbox/.
            scanner.consider(.inbox, name: job.id + ".json")
        }
        let cfg = config
        if let unreadable = job.unreadable {
            finishUnreadable(job, error: unreadable, log: log)
            return
        }
        let manifest: Manifest
        do { manifest = try Manifest.parse(job.manifestBytes, fileID: job.id) } catch {
            finishFailed(job, manifest: nil, error: error, log: log)
            return
        }
        log[metadataKey: "JOB_TYPE"] = "\(manifest.type.rawValue)"
        if job.state.attempts == 1 { SpoolMetrics.queueWait(type: manifest.type.rawValue, seconds: waited) }
        let timeout = manifest.timeoutSeconds ?? cfg.timeoutSeconds
        // Jobs about to share the cores: those handed to workers (this one,
        // the running ones, and those still being claimed), and as many
        // waiting ones as there are idle workers to take them.
        let load = queue.load(now: Date().timeIntervalSince1970, cap: cfg.workers)
        let threads = JobThreads.perJob(configured: cfg.codecThreads, cores: cores,
                                          concurrent: min(cfg.workers, max(1, load.inFlight) + load.ready))
        let ctx = JobContext(id: job.id, manifest: manifest, attempt: job.state.attempts, policy: cfg.pathPolicy(tenant: manifest.tenant),
                             limits: cfg.limits, logger: log, deadline: job.startedClock.advanced(by: .seconds(timeout)),
                             layout: layout, startedAt: job.startedAt, threads: threads,
                             descriptorBudget: Engine.descriptorBudget(workers: cfg.workers),
                             memoryBudget: cfg.limits.maxJobMemoryBytes ?? memoryLimit / max(1, cfg.workers),
                             events: finisher.events)
        let fenced = state.withLock { state in
            state.running[job.id] = Running(context: ctx, worker: worker)
            return state.fencedOff != nil
        }
        if fenced { ctx.cancel(.fenced) }
        // A cancel requested while it was being claimed.
        if Sys.exists(CancelRequests.path(layout, job.id)) { ctx.cancel(.cancelled) }
        defer { state.withLock { _ = $0.running.removeValue(forKey: job.id) } }
        log.info("started \(manifest.type.rawValue) job \(job.id) (attempt \(job.state.attempts))", metadata: ["STEP": "start", "STATUS": "running", "CODEC_THREADS": "\(threads)"])
        ctx.progress(step: "start", fraction: 0)
        var claimed = JobEvent(.claimed, id: job.id, state: "processing").with(manifest)
        claimed.attempt = job.state.attempts
        try? finisher.events.append(claimed)

        let outcome: JobOutcome
        do throws(SpoolError) {
            guard let runner = runners[manifest.type] else {
                throw SpoolError(.unsupported, "this build cannot run \(manifest.type.rawValue) jobs yet", step: "start")
            }
            Fault.beforeRun(ctx)
            try ctx.checkCancelled(step: "start")
            outcome = try runner.run(ctx)
            // A runner that ignored its cancellation still does not publish
            // past its deadline as if nothing happened.
            try ctx.checkCancelled(step: ctx.step)
        } catch {
            if error.meansFencedOff { fence(error) }
            if abandonedWhenFenced(job, log: log) { return }
            finishAfterError(job, manifest: manifest, context: ctx, error: error, log: log)
            return
        }
        if abandonedWhenFenced(job, log: log) { return }
        do {
            let record = try finisher.complete(job, manifest: manifest, outcome: outcome)
            state.withLock { $0.counters.done += 1 }
            SpoolMetrics.jobEnded(type: manifest.type.rawValue, outcome: "done", code: nil)
            SpoolMetrics.jobDuration(type: manifest.type.rawValue, seconds: Double(record.durationMs) / 1000)
            log.info("done \(job.id) in \(record.durationMs) ms", metadata: ["STEP": "done", "STATUS": "done", "DURATION_MS": "\(record.durationMs)"])
        } catch {
            // Never retried: another host may own the job now.
            if error.meansFencedOff { return fence(error) }
            // The result could not be published (disk full?): the job stays in
            // processing/ without its lock and recovery requeues it.
            log.error("cannot publish the result of \(job.id): \(error.message); recovery will retry it", metadata: ["STEP": "publish", "STATUS": "error", "ERROR_CODE": "\(error.code.rawValue)"])
        }
    }

    func finishAfterError(_ job: ClaimedJob, manifest: Manifest, context: JobContext, error: SpoolError, log: Logger) {
        var error = error
        if context.cancelReason == .timeout, error.code != .timeout { error = context.timeoutError(step: error.step ?? context.step) }
        if context.cancelReason == .cancelled, error.code != .cancelled {
            error = SpoolError(.cancelled, "cancelled by an operator (mediaspool cancel) in step \(error.step ?? context.step); `mediaspool replay \(job.id)` runs it again", step: error.step ?? context.step)
        }
        let config = self.config
        let maxAttempts = manifest.maxAttempts ?? config.maxAttempts
        let ms = Int(Date().timeIntervalSince(job.startedAt) * 1000)
        if context.cancelReason == .shutdown || (error.code.retryable && job.state.attempts < maxAttempts) {
            let shutdown = context.cancelReason == .shutdown
            let delay = shutdown ? 0 : config.backoff(afterAttempt: job.state.attempts)
            do {
                let due = try finisher.retry(id: job.id, state: job.state, error: error, delay: delay, countAttempt: !shutdown, manifest: manifest)
                state.withLock { $0.counters.retried += 1 }
                SpoolMetrics.jobEnded(type: manifest.type.rawValue, outcome: "retry", code: error.code)
                log.warning("\(job.id) attempt \(job.state.attempts) failed with \(error.code.rawValue): \(error.message); \(shutdown ? "requeued for the next start" : "retry at \(RFC3339.string(due))")",
                            metadata: ["STEP": "\(error.step ?? "run")", "STATUS": "retry", "ERROR_CODE": "\(error.code.rawValue)", "DURATION_MS": "\(ms)"])
            } catch let e {
                if e.meansFencedOff { return fence(e) }
                log.error("cannot schedule the retry of \(job.id): \(e.message)", metadata: ["STEP": "schedule-retry", "ERROR_CODE": "\(e.code.rawValue)"])
            }
            return
        }
        finishFailed(job, manifest: manifest, error: error, log: log)
    }

    /// A claimed entry that is no readable manifest: a transient read error
    /// is retried like any I/O error (the attempt is counted), the rest fail.
    func finishUnreadable(_ job: ClaimedJob, error: SpoolError, log: Logger) {
        let config = self.config
        guard error.code.retryable, job.state.attempts < config.maxAttempts else {
            return finishFailed(job, manifest: nil, error: error, log: log)
        }
        do {
            _ = try finisher.retry(id: job.id, state: job.state, error: error, delay: config.backoff(afterAttempt: job.state.attempts))
            state.withLock { $0.counters.retried += 1 }
            log.warning("\(job.id): \(error.message); retrying", metadata: ["STEP": "claim", "STATUS": "retry", "ERROR_CODE": "\(error.code.rawValue)"])
        } catch let e {
            if e.meansFencedOff { return fence(e) }
            log.error("cannot schedule the retry of \(job.id): \(e.message)", metadata: ["STEP": "schedule-retry", "ERROR_CODE": "\(e.code.rawValue)"])
        }
    }

    func finishFailed(_ job: ClaimedJob, manifest: Manifest?, error: SpoolError, log: Logger) {
        let ms = Int(Date().timeIntervalSince(job.startedAt) * 1000)
        do {
            _ = try finisher.fail(id: job.id, state: job.state, manifest: manifest, error: error, claimed: job)
            state.withLock { $0.counters.failed += 1 }
            SpoolMetrics.jobEnded(type: manifest?.type.rawValue ?? "unknown", outcome: "failed", code: error.code)
            SpoolMetrics.jobDuration(type: manifest?.type.rawValue ?? "unknown", seconds: Double(ms) / 1000)
            log.error("failed \(job.id) with \(error.code.rawValue): \(error.message)",
                      metadata: ["STEP": "\(error.step ?? "run")", "STATUS": "failed", "ERROR_CODE": "\(error.code.rawValue)", "DURATION_MS": "\(ms)"])
        } catch let e {
            if e.meansFencedOff { return fence(e) }
            log.error("cannot write the error record of \(job.id): \(e.message); recovery will retry it", metadata: ["STEP": "publish", "ERROR_CODE": "\(e.code.rawValue)"])
        }
    }

    /// The spool's file system fenced this host off (Fencing.swift): no
    /// more claims, every running job told to stop, nothing published from
    /// now on. The supervisor sees `fencedOff` and ends the daemon.
    func fence(_ error: SpoolError) {
        let (first, running) = state.withLock { state -> (Bool, [Running]) in
            let first = state.fencedOff == nil
            if first { state.fencedOff = error; state.stopping = true }
            return (first, Array(state.running.values))
        }
        guard first else { return }
        Fence.raise()
        queue.close()
        state.withLock { $0.watcher }?.stop()
        logger.critical("\(fencedOffMessage(error, spool: config.spool))", metadata: ["STEP": "fenced", "STATUS": "fenced", "ERROR_CODE": "\(error.code.rawValue)"])
        for r in running { r.context.cancel(.fenced) }
    }

    /// The error that fenced this host off, once it has happened.
    public var fencedOff: SpoolError? { state.withLock { $0.fencedOff } }
    var isFencedOff: Bool { fencedOff != nil }

    /// After a fence: the job is left where it is, unpublished, for the host
    /// that owns the spool now (its recovery finds it in processing/).
    private func abandonedWhenFenced(_ job: ClaimedJob, log: Logger) -> Bool {
        guard isFencedOff else { return false }
        log.warning("\(job.id) abandoned unpublished: this host is fenced off from the spool", metadata: ["STEP": "fenced", "STATUS": "abandoned"])
        return true
    }

    /// Waits up to `seconds` for the workers of a fenced daemon to leave
    /// (a call into a dead mount may never return: the process exits anyway).
    public func waitForWorkers(seconds: Double) {
        let deadline = ContinuousClock.now.advanced(by: .seconds(seconds))
        workersExited.lock()
        while workerCount > 0 && ContinuousClock.now < deadline { workersExited.wait(seconds: 0.2) }
        workersExited.unlock()
    }

    /// control/ changed: a pause, or a cancel request (Cancel.swift).
    func applyControl() {
        applyPause()
        for id in CancelRequests.pending(layout) {
            guard let r = state.withLock({ $0.running[id] }), r.context.cancelReason == .none else { continue }
            logger.notice("\(id): cancel requested: stopping it", metadata: ["JOB_ID": "\(id)", "STEP": "\(r.context.step)", "STATUS": "cancelling"])
            r.context.cancel(.cancelled)
        }
    }

    /// control/pause.json as it is now (Pause.swift), logged when it changes.
    func applyPause() {
        let new = PauseState.read(layout)
        let old = queue.pauseState
        guard new != old else { return }
        queue.setPause(new)
        logger.notice(new.isEmpty ? "resumed: jobs start again" : "\(new.summary): no new job of those starts; running jobs go on",
                      metadata: ["STEP": "pause", "STATUS": "\(new.isEmpty ? "resumed" : "paused")"])
    }

    /// Stale jobs of dead daemons and of our own failed publishes, at each
    /// full rescan (the sweep does the same from the timer).
    func periodicRecovery() {
        var r = Recovery.Report()
        Recovery(config: config, logger: logger).recoverStaleJobs(&r)
        if r.recovered + r.finished + r.failed > 0 { scanner.fullScan() }
    }

    /// Sets the gauges (queue depth, oldest wait, workers) before an export.
    public func updateGauges() {
        let (busy, workers) = state.withLock { ($0.running.count, $0.config.workers) }
        let c = queue.countsBySource
        SpoolMetrics.gauges(inbox: c[.inbox] ?? 0, retry: c[.retry] ?? 0, processing: busy,
                            oldestWaiting: queue.oldestInboxWait(now: Date().timeIntervalSince1970), busy: busy, workers: workers,
                            paused: queue.pauseState.all)
    }

    /// Called about once a second by the supervisor.
    public func tick() -> Health {
        let now = ContinuousClock.now
        var progressing = true
        let (jobs, cfg, c) = state.withLock { ($0.running, $0.config, $0.counters) }
        for (id, r) in jobs where now > r.context.deadline {
            if r.context.cancelReason == .none {
                logger.warning("\(id) passed its timeout: cancelling", metadata: ["JOB_ID": "\(id)", "STEP": "\(r.context.step)", "STATUS": "timeout"])
                r.context.cancel(.timeout)
            }
            if (now - r.context.deadline).seconds > cfg.stuckGraceSeconds {
                progressing = false
                logger.critical("\(id) is stuck \(Int((now - r.context.deadline).seconds)) s past its timeout: withholding the watchdog", metadata: ["JOB_ID": "\(id)", "STATUS": "stuck"])
            }
        }
        let counts = queue.countsBySource
        let pause = queue.pauseState
        let text = (pause.isEmpty ? "" : "\(pause.summary); ") + "waiting \(counts[.inbox] ?? 0), retry \(counts[.retry] ?? 0), running \(jobs.count)/\(cfg.workers), done \(c.done), failed \(c.failed) since start"
        return Health(progressing: progressing, statusText: text)
    }

    /// SIGTERM: stop claiming, let running jobs finish within `grace`
    /// seconds, then cancel the rest (they are requeued as INTERRUPTED).
    /// Blocks until every worker has left.
    public func shutdown(grace: Double) {
        state.withLock { $0.stopping = true }
        state.withLock { $0.watcher }?.stop()
        queue.close()
        // The grace on the monotonic clock: a wall clock set during a stop
        // neither cuts it short nor stretches it past TimeoutStopSec=.
        let deadline = ContinuousClock.now.advanced(by: .seconds(grace))
        workersExited.lock()
        while workerCount > 0 && ContinuousClock.now < deadline { workersExited.wait(seconds: 0.2) }
        workersExited.unlock()
        let left = state.withLock { $0.running }
        for (id, r) in left {
            logger.warning("\(id) still running at shutdown: interrupting", metadata: ["JOB_ID": "\(id)", "STATUS": "interrupted"])
            r.context.cancel(.shutdown)
        }
        workersExited.lock()
        while workerCount > 0 { workersExited.wait(seconds: 0.2) }
        workersExited.unlock()
        removeHeartbeat()
        if let fd = state.withLock({ state in defer { state.daemonLock = nil }; return state.daemonLock }) { try? fd.close() }
    }

    /// A clean stop waits for the heartbeat thread to remove its file (it
    /// sees `stopping` within 0.1 s): 5 s at most, as a write stuck in a
    /// hung mount keeps it; the file then stays, and the host shows as gone.
    private func removeHeartbeat() {
        state.withLock { $0.heartbeatStop = true }
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        heartbeatExited.lock()
        while state.withLock({ $0.heartbeatRunning }) && ContinuousClock.now < deadline { heartbeatExited.wait(seconds: 0.2) }
        heartbeatExited.unlock()
    }

    private var workerCount: Int { state.withLock { $0.workerThreads } }

    public var runningJobs: [(id: String, step: String, fraction: Double)] {
        state.withLock { $0.running }.map { ($0.key, $0.value.context.step, $0.value.context.fraction) }
    }
}
