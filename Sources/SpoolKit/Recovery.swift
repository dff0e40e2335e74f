import Foundation
import Logging
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Recovery of jobs whose owner died, and clean-up of what crashes leave:
/// run by the daemon at start (before READY=1) and by `mediaspool sweep`
/// (the timer) while daemons run. It only touches a job whose lock it holds,
/// so it never steals a live one.
public struct Recovery: Sendable {
    public let config: Config
    public let logger: Logger
    let layout: SpoolLayout

    public init(config: Config, logger: Logger) { self.config = config; self.logger = logger; layout = config.layout }

    public struct Report: Sendable, Codable, Equatable {
        public var recovered = 0, finished = 0, failed = 0, tempFilesRemoved = 0
        public var producerFilesRemoved = 0, strayFilesRemoved = 0
        /// Retention: jobs purged, and their outputs removed.
        public var purged = 0, outputsPurged = 0
        public init() {}
    }

    /// Everything: stale jobs, temporary files, strays; with `retention`,
    /// the purge of old done/failed jobs too (the sweep; not the daemon's start).
    public func run(retention: Bool = false) -> Report {
        var report = Report()
        recoverStaleJobs(&report)
        removeTemporaries(&report)
        removeStrays(&report)
        removeOldProducerFiles(&report)
        if retention { Retention(config: config, logger: logger).run(&report) }
        return report
    }

    public func recoverStaleJobs(_ report: inout Report) {
        // A fenced-off daemon recovers nothing: the jobs it abandoned are
        // the recovery of the host that owns the spool now.
        guard !Fence.isRaised else { return }
        try? Sys.forEachRawEntry(in: layout.processing) { name, raw in
            guard let id = JobID.fromManifestName(name) else { return }
            guard raw == nil, JobID.isValid(id) else {
                // Only a hand (or a hostile producer) puts such a name here:
                // no daemon ever claims it. Kept in failed/ as any invalid name is.
                refuseInvalidName(name: name, raw: raw, report: &report)
                return
            }
            do throws(SpoolError) {
                guard let lock = try JobLock.tryAcquire(id, layout: layout) else { return } // alive elsewhere
                defer { lock.release() }
                // Re-check under the lock: it may have finished meanwhile.
                guard Sys.exists(layout.manifest(id, in: layout.processing)) else { return }
                try recover(id, report: &report)
            } catch {
                logger.error("recovery of \(id) failed: \(error)", metadata: ["JOB_ID": "\(id)", "ERROR_CODE": "\(error.code.rawValue)"])
            }
        }
    }

    func refuseInvalidName(name: String, raw: [UInt8]?, report: inout Report) {
        guard let component = raw.flatMap(SpoolName.component) ?? FilePath.Component(name) else { return }
        let err = SpoolError(.idInvalid, "\(Escaping.quoted(name)) in processing/ is not a valid manifest name (no daemon claims such a name; it was put there by hand): submit it again under a valid id", step: "recover")
        do {
            try Finisher(layout: layout, events: config.eventLog).failAtTheDoor(id: String(name.dropLast(5)), name: component, from: layout.processing, error: err)
            report.failed += 1
        } catch {
            logger.error("cannot move \(Escaping.quoted(name)) out of processing/: \(error.message)", metadata: ["STEP": "recover"])
        }
    }

    /// One stale job, whose lock the caller holds.
    ///
    /// A record beside it finishes it without a re-run, but only a record of
    /// this run: one naming this manifest (its SHA-256) and this attempt. The
    /// claim removes earlier runs' records before its rename, so another one
    /// here was put by a hand or left by a crash in between; it is removed
    /// and the job runs again. So is a record without the digest (older
    /// versions wrote none) or one that does not decode: running a job twice
    /// costs time, finishing it on a record of another run loses it.
    func recover(_ id: String, report: inout Report) throws(SpoolError) {
        let fin = Finisher(layout: layout, events: config.eventLog)
        let bytes = (try? Sys.readFile(layout.manifest(id, in: layout.processing))) ?? nil
        let digest = bytes.map { Digest.sha256Hex($0) }
        let saved = (try? Sys.readFile(layout.stateFile(id))).flatMap { $0 }.flatMap { RecordCoding.decode(JobState.self, $0) }
        // The attempt that was running: a first attempt has no state file.
        let attempt = saved?.attempts ?? 1
        // A record without a digest is of a run that could not read its
        // manifest (which a root sweep may read now): that run's only ends.
        let unreadableCodes: Set<String> = [ErrorCode.manifestInvalid.rawValue, ErrorCode.manifestTooLarge.rawValue]
        func ofThisRun(_ sha: String?, _ attempts: Int, _ code: String?) -> Bool {
            (sha == digest || (sha == nil && code.map(unreadableCodes.contains) == true)) && attempts == attempt
        }

        // A record counts only as a regular file (not a directory or FIFO
        // planted at its name). Outputs and record were complete: finish the
        // move, do not re-run. Its event may be in the log already (a crash
        // after it).
        for isDone in [true, false] {
            let path = isDone ? layout.result(id) : layout.errorRecord(id)
            guard case .success(let recordBytes) = Sys.readRegularFile(path) else { continue }
            let record: (event: JobEvent, sha: String?, attempts: Int, code: String?)? = isDone
                ? RecordCoding.decode(ResultRecord.self, recordBytes).map { (.done($0), $0.manifestSHA256, $0.attempts, nil) }
                : RecordCoding.decode(ErrorRecord.self, recordBytes).map { (.failed($0), $0.manifestSHA256, $0.attempts, $0.code) }
            guard let record, ofThisRun(record.sha, record.attempts, record.code) else {
                try removeRecordOfAnotherRun(path, of: id)
                continue
            }
            let status = isDone ? "done" : "failed"
            let event = record.event
            try fin.publish(id, to: isDone ? layout.done : layout.failed, event: event, eventUnlessPresent: true)
            report.finished += 1
            logger.notice("finished \(id): its \(isDone ? "result" : "error record") was complete when its owner died", metadata: meta(id, status))
            return
        }
        let manifest = bytes.flatMap { try? Manifest.parse($0, fileID: id) }
        if let manifest { removePartialOutputs(of: manifest, job: id, report: &report) }
        removeTemporariesOfDeadRuns(id, report: &report)
        var state = saved ?? JobState(id: id, attempts: 1, history: [HistoryEntry(attempt: 1, startedAt: RFC3339.string(Date()))])
        if state.history.isEmpty { state.history.append(HistoryEntry(attempt: max(1, state.attempts), startedAt: RFC3339.string(Date()))) }
        let maxAttempts = manifest?.maxAttempts ?? config.maxAttempts
        let err = SpoolError(.interrupted, "the daemon stopped or died during attempt \(state.attempts) (it may have crashed on this job; see journalctl -u mediaspool JOB_ID=\(id))", step: "recover")
        if state.attempts >= maxAttempts {
            _ = try fin.fail(id: id, state: state, manifest: manifest, error: SpoolError(.interrupted, "interrupted on each of its \(state.attempts) attempts (the daemon died or was killed while running it; it may crash the daemon); inspect it, then `mediaspool replay \(id)`", step: "recover"), manifestBytes: bytes)
            report.failed += 1
            logger.warning("stale job \(id) is out of attempts: failed", metadata: meta(id, "failed"))
        } else {
            _ = try fin.retry(id: id, state: state, error: err, delay: 0, manifest: manifest)
            report.recovered += 1
            logger.notice("recovered stale job \(id) (attempt \(state.attempts) interrupted): requeued", metadata: meta(id, "requeued"))
        }
    }

    /// A result or error record beside a job in processing/ that another
    /// manifest or another attempt wrote: removed durably, so the job runs.
    func removeRecordOfAnotherRun(_ record: FilePath, of id: String) throws(SpoolError) {
        try Durable.remove(record, step: "recover")
        logger.warning("\(id): \(record.lastComponent?.string ?? "") is not of the run that died (another manifest or attempt): removed, the job runs again", metadata: ["JOB_ID": "\(id)", "STEP": "recover"])
    }

    func meta(_ id: String, _ status: String) -> Logger.Metadata {
        ["JOB_ID": "\(id)", "STEP": "recover", "STATUS": "\(status)", "ERROR_CODE": "INTERRUPTED"]
    }

    /// Partial outputs of a dead run: `.NAME.tmp-PID-RAND` beside each
    /// output, reached like outputs are (no symlink below the root, no
    /// directory made).
    func removePartialOutputs(of manifest: Manifest, job id: String, report: inout Report) {
        let policy = config.pathPolicy(tenant: manifest.tenant)
        for out in manifest.outputPaths {
            guard let target = try? policy.openOutput(out, field: "output", create: false, kind: .either) else { continue }
            // A thumbnail's %d names many files; a package's % is literal.
            let numbered: Bool
            if case .package = manifest.job { numbered = false } else { numbered = target.name.contains("%") }
            report.tempFilesRemoved += target.removeDeadTemporaries(prefix: "." + (numbered ? "" : target.name + ".tmp-"), of: id, shared: isShared)
        }
    }

    /// The progress and state files' temporaries of the job's dead runs:
    /// whatever the pid in their names (on a shared spool another host's,
    /// maybe still alive but fenced off), as the lock is held here.
    func removeTemporariesOfDeadRuns(_ id: String, report: inout Report) {
        for final in [layout.progress(id), layout.stateFile(id)] {
            let dir = final.removingLastComponent()
            guard let name = final.lastComponent?.string else { continue }
            try? Sys.forEachEntry(in: dir) { entry in
                guard SpoolName.isTemporary(entry, of: name) else { return }
                if (try? Sys.unlink(dir.appending(entry))) != nil { report.tempFilesRemoved += 1 }
            }
        }
    }

    /// In shared mode the pid in a temporary's name may be a process of
    /// another host, which this one cannot see: such a temporary is taken
    /// for abandoned only once it is also this old. (A record's, state's or
    /// progress file's temporary lives for milliseconds; an output's is
    /// judged per stale job, whose free lock says its owner is gone.)
    public static let sharedTemporaryAgeSeconds: Double = 600

    /// A spool with hosts/ has had a daemon in shared mode: a process in
    /// single mode on it (a `mediaspool sweep` run by hand, a host without
    /// the drop-in) must not take another host's live temporary for a dead
    /// one either.
    var isShared: Bool { config.hosts == .shared || Sys.exists(layout.hosts) }

    /// `.NAME.tmp-PID-RAND` files in the spool's own directories whose
    /// writer is dead (in shared mode: and older than `sharedTemporaryAgeSeconds`).
    public func removeTemporaries(_ report: inout Report) {
        let cutoff = Date().timeIntervalSince1970 - Self.sharedTemporaryAgeSeconds
        let shared = isShared
        func abandoned(_ path: FilePath) -> Bool {
            !shared || ((try? Sys.stat(path, followSymlinks: false))?.mtimeSeconds ?? .infinity) < cutoff
        }
        for dir in [layout.done, layout.failed, layout.state, layout.retry, layout.processing, layout.inbox] {
            try? Sys.forEachEntry(in: dir) { name in
                guard SpoolName.isTemporary(name), !SpoolName.isWriterAlive(ofTemporary: name), abandoned(dir.appending(name)) else { return }
                if (try? Sys.unlink(dir.appending(name))) != nil { report.tempFilesRemoved += 1 }
            }
        }
        // hosts/: only this host's own heartbeat's (another host's writer
        // pid means nothing here).
        let own = SpoolName.heartbeat(config.effectiveHostId)
        try? Sys.forEachEntry(in: layout.hosts) { name in
            guard SpoolName.isTemporary(name, of: own), !SpoolName.isWriterAlive(ofTemporary: name) else { return }
            if (try? Sys.unlink(layout.hosts.appending(name))) != nil { report.tempFilesRemoved += 1 }
        }
    }

    /// State, progress and lock files whose job is in none of processing/ and retry/.
    func removeStrays(_ report: inout Report) {
        func jobIsLive(_ id: String) -> Bool {
            Sys.exists(layout.manifest(id, in: layout.processing)) || Sys.exists(layout.manifest(id, in: layout.retry))
                || Sys.exists(layout.manifest(id, in: layout.hold))  // a held retry keeps its state
        }
        try? Sys.forEachEntry(in: layout.state) { name in
            guard let id = JobID.fromManifestName(name), !jobIsLive(id) else { return }
            // Take the lock, so a claim that is writing this state right now wins.
            guard let lock = try? JobLock.tryAcquire(id, layout: layout) else { return }
            defer { lock.release() }
            if !jobIsLive(id), (try? Durable.remove(layout.stateFile(id), step: "sweep")) != nil { report.strayFilesRemoved += 1 }
        }
        try? Sys.forEachEntry(in: layout.processing) { name in
            guard name.hasSuffix(".progress"), !name.hasPrefix(".") else { return }
            let id = String(name.dropLast(9))
            if !Sys.exists(layout.manifest(id, in: layout.processing)), (try? Sys.unlink(layout.progress(id))) != nil { report.strayFilesRemoved += 1 }
        }
        // Side files whose job did not reach done/ (a crash between the side
        // file and the publish; the next attempt writes it again).
        // The queues a job moves through on its way to done/, in that order,
        // so a publish between two checks is never missed.
        func jobIsAnywhere(_ id: String) -> Bool {
            [layout.inbox, layout.retry, layout.hold, layout.processing, layout.done].contains { Sys.exists(layout.manifest(id, in: $0)) }
        }
        try? Sys.forEachEntry(in: layout.done) { entry in
            guard let (id, name) = SpoolName.parseSideFile(entry), !jobIsAnywhere(id) else { return }
            // Under the lock, checked again: a job being published now keeps it.
            guard let lock = try? JobLock.tryAcquire(id, layout: layout) else { return }
            defer { lock.release() }
            if !jobIsAnywhere(id), (try? Sys.unlink(layout.sideFile(id, name))) != nil { report.strayFilesRemoved += 1 }
        }
        try? Sys.forEachEntry(in: layout.locks) { name in
            guard name.hasSuffix(".lock") else { return }
            let id = String(name.dropLast(5))
            guard !Sys.exists(layout.manifest(id, in: layout.processing)),
                  let lock = try? JobLock.tryAcquire(id, layout: layout) else { return }
            lock.release() // unlinks the file while holding it
            report.strayFilesRemoved += 1
        }
    }

    /// Producers' files in tmp/ older than tmpMaxAgeHours.
    func removeOldProducerFiles(_ report: inout Report) {
        let cutoff = Date().timeIntervalSince1970 - config.tmpMaxAgeHours * 3600
        try? Sys.forEachEntry(in: layout.tmp) { name in
            let p = layout.tmp.appending(name)
            guard let st = try? Sys.stat(p, followSymlinks: false), !st.isDirectory, st.mtimeSeconds < cutoff else { return }
            if (try? Sys.unlink(p)) != nil { report.producerFilesRemoved += 1 }
        }
    }
}
