import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The last step of a run: the record, then the one rename that moves the
/// manifest out of processing/ (see the protocol at the top of Claim.swift).
public struct Finisher: Sendable {
    public let layout: SpoolLayout
    /// Where transitions are told (Events.swift).
    public let events: EventLog
    public init(layout: SpoolLayout, events: EventLog? = nil) { self.layout = layout; self.events = events ?? EventLog(layout: layout) }

    /// Success: `done/<id>.result.json`, then the manifest to done/.
    public func complete(_ job: ClaimedJob, manifest: Manifest, outcome: JobOutcome) throws(SpoolError) -> ResultRecord {
        let now = Date()
        var history = job.state.history
        if !history.isEmpty { history[history.count - 1].endedAt = RFC3339.string(now) }
        let record = ResultRecord(
            id: job.id, type: manifest.type.rawValue, attempts: job.state.attempts,
            startedAt: RFC3339.string(job.startedAt), completedAt: RFC3339.string(now),
            durationMs: Int(now.timeIntervalSince(job.startedAt) * 1000),
            tenant: manifest.tenant, labels: manifest.labels, steps: outcome.steps,
            outputs: outcome.outputs, probe: outcome.probe,
            history: Array(history.dropLast()).filter { $0.code != nil },
            manifestSHA256: Digest.sha256Hex(job.manifestBytes),
            sideFiles: outcome.sideFiles.isEmpty ? nil : outcome.sideFiles.map(\.name))
        // The side files before the record: a done job has the ones its
        // record lists. (One left by a crash before the publish is a stray
        // the sweep removes.)
        precondition(Set(outcome.sideFiles.map(\.name)).count == outcome.sideFiles.count, "two side files of one name")
        for file in outcome.sideFiles { try Durable.write(file.bytes, to: layout.sideFile(job.id, file.name), step: "write-side-file") }
        try Durable.write(RecordCoding.encode(record), to: layout.result(job.id), step: "write-result")
        Fault.point("after-result")
        try publish(job.id, to: layout.done, claimed: job, event: .done(record))
        return record
    }

    /// Retryable failure with attempts left: the state remembers when, then
    /// the manifest moves to retry/.
    public func retry(id: String, state: JobState, error: SpoolError, delay: Double, countAttempt: Bool = true, manifest: Manifest? = nil) throws(SpoolError) -> Date {
        var state = state
        let now = Date()
        state.history[state.history.count - 1].endedAt = RFC3339.string(now)
        state.history[state.history.count - 1].code = error.code.rawValue
        state.history[state.history.count - 1].message = error.message
        if !countAttempt { state.attempts -= 1 }
        let due = now.addingTimeInterval(delay)
        state.notBefore = RFC3339.string(due)
        try Durable.write(RecordCoding.encode(state), to: layout.stateFile(id), step: "schedule-retry")
        Fault.point("before-retry-move")
        try Durable.move(layout.manifest(id, in: layout.processing), layout.manifest(id, in: layout.retry), step: "schedule-retry")
        try? Sys.unlink(layout.progress(id))
        var event = JobEvent(.retrying, id: id, state: "retry").with(manifest)
        event.attempt = state.attempts; event.code = error.code.rawValue; event.message = error.message; event.step = error.step
        try? events.append(event)
        return due
    }

    /// Permanent failure (or out of attempts): `failed/<id>.error.json`, then
    /// the manifest to failed/.
    /// `manifestBytes`: what ran, when there is no `claimed` job (recovery).
    public func fail(id: String, state: JobState, manifest: Manifest?, error: SpoolError, claimed: ClaimedJob? = nil, manifestBytes: [UInt8]? = nil) throws(SpoolError) -> ErrorRecord {
        let now = RFC3339.string(Date())
        var history = state.history
        if !history.isEmpty, history[history.count - 1].endedAt == nil {
            history[history.count - 1].endedAt = now
            history[history.count - 1].code = error.code.rawValue
            history[history.count - 1].message = error.message
        }
        let record = ErrorRecord(id: id, type: manifest?.type.rawValue, code: error.code.rawValue, message: error.message,
                                 step: error.step, retryable: error.code.retryable, attempts: state.attempts,
                                 failedAt: now, tenant: manifest?.tenant, labels: manifest?.labels, history: history,
                                 manifestSHA256: claimed.map { $0.unreadable == nil ? Digest.sha256Hex($0.manifestBytes) : nil } ?? manifestBytes.map { Digest.sha256Hex($0) })
        try Durable.write(RecordCoding.encode(record), to: layout.errorRecord(id), step: "write-error")
        Fault.point("after-error-record")
        try publish(id, to: layout.failed, claimed: claimed, event: .failed(record))
        return record
    }

    /// The manifest's one rename out of processing/, then the clean-up of
    /// the job's side files (their loss is harmless: Recovery removes strays).
    /// The terminal event goes to the log first (Events.swift); recovery,
    /// which may be finishing a publish that crashed after it, passes
    /// `eventUnlessPresent`.
    func publish(_ id: String, to dir: FilePath, claimed: ClaimedJob? = nil, event: JobEvent? = nil, eventUnlessPresent: Bool = false) throws(SpoolError) {
        if let event { try events.append(event, unlessPresent: eventUnlessPresent) }
        Fault.point("after-event")
        do {
            try Durable.move(layout.manifest(id, in: layout.processing), layout.manifest(id, in: dir), step: "publish")
        } catch where error.isVanished && claimed?.identity != nil {
            // Someone moved the running job's manifest out of processing/ by
            // hand (back to inbox/, say). Its record is written: finish from
            // where that very file is now (same inode, same bytes: an inode
            // number can be reused by a new file), so it does not run twice.
            guard let claimed, let moved = [layout.inbox, layout.retry].map({ layout.manifest(id, in: $0) }).first(where: {
                (try? Sys.stat($0, followSymlinks: false)).map(FileIdentity.init) == claimed.identity
                    && (try? Sys.readFile($0, limit: Manifest.maxBytes)) == claimed.manifestBytes
            }) else { throw error }
            let published = layout.manifest(id, in: dir)
            try Durable.move(moved, published, step: "publish")
            // The check and the move are by path: if a producer renamed another
            // file there in between, put that one back (it was never run).
            if (try? Sys.stat(published, followSymlinks: false)).map(FileIdentity.init) != claimed.identity {
                try? Sys.renameNoReplace(published, moved)
                throw SpoolError(.ioError, "the manifest of \(id) changed while being published; it is left to run again", step: "publish")
            }
        }
        Fault.point("after-publish")
        try? Sys.unlink(layout.stateFile(id))
        try? Sys.unlink(layout.progress(id))
    }

    /// The parsed manifest of a job in `dir` (its type, tenant and labels
    /// for a record or an event); nil when it is not there or not valid.
    func manifest(_ id: String, in dir: FilePath) -> Manifest? {
        (try? Sys.readFile(layout.manifest(id, in: dir), limit: Manifest.maxBytes)).flatMap { $0 }.flatMap { try? Manifest.parse($0, fileID: id) }
    }

    /// Moves failed/<id>.json and its record to the first free `<id>~N`
    /// (kept, never deleted): the id is free for a new run.
    func keepAside(_ id: String) throws(SpoolError) {
        for n in 2...10_000 {
            let kept = SpoolName.alternative(id, n)
            let manifestPath = layout.failed.appending(kept + ".json"), recordPath = layout.failed.appending(kept + ".error.json")
            if Sys.exists(manifestPath) || Sys.exists(recordPath) { continue }
            do {
                if Sys.exists(layout.errorRecord(id)) { try Sys.renameNoReplace(layout.errorRecord(id), recordPath) }
                try Sys.renameNoReplace(layout.manifest(id, in: layout.failed), manifestPath)
                try Sys.fsyncDirectory(layout.failed)
                return
            } catch where error == .fileExists {
                continue
            } catch {
                throw SpoolError.io(error, "keeping the earlier failed/\(id).json aside", step: "claim")
            }
        }
        throw SpoolError(.internal, "no free name in failed/ to keep \(id) aside", step: "claim")
    }

    /// Failing an entry that never entered processing/ (a name that is no
    /// valid id, ID_CONFLICT). It is kept in failed/ under its own name when
    /// that is a valid id, else under `SpoolName.forInvalid`; and never over
    /// an earlier kept manifest or record: a taken name moves on to `~2`, `~3`…
    func failAtTheDoor(id: String, name: FilePath.Component, from dir: FilePath, error: SpoolError) throws(SpoolError) {
        let src = dir.appending(name)
        guard Sys.exists(src) else {
            throw SpoolError(.ioError, "\(src) vanished", cause: Errno.noSuchFileOrDirectory)
        }
        let raw = name.withPlatformString { p in Array(UnsafeBufferPointer(start: p, count: strlen(p))).map { UInt8(bitPattern: $0) } }
        let base = JobID.isValid(id) && name.string == id + ".json" ? id : SpoolName.forInvalid(raw)
        let now = RFC3339.string(Date())
        let record = ErrorRecord(id: String(decoding: raw.dropLast(raw.count >= 5 && name.string.hasSuffix(".json") ? 5 : 0), as: UTF8.self),
                                 type: nil, code: error.code.rawValue, message: error.message, step: error.step,
                                 retryable: false, attempts: 0, failedAt: now, tenant: nil, labels: nil,
                                 history: [HistoryEntry(attempt: 0, startedAt: now, endedAt: now, code: error.code.rawValue, message: error.message)])
        for n in 1...10_000 {
            let kept = SpoolName.alternative(base, n)
            let manifestPath = layout.failed.appending(kept + ".json"), recordPath = layout.failed.appending(kept + ".error.json")
            if Sys.exists(manifestPath) || Sys.exists(recordPath) { continue }
            // No-replace: another daemon refusing the same entry at the same
            // moment takes the next name instead of sharing (and then
            // removing) this record.
            do { try Durable.write(RecordCoding.encode(record), to: recordPath, step: error.step, replace: false) }
            catch where error.cause as? Errno == .fileExists { continue }
            do {
                try Sys.renameNoReplace(src, manifestPath)
            } catch where error == .fileExists {
                try? Sys.unlink(recordPath)
                continue
            } catch {
                try? Sys.unlink(recordPath)
                throw SpoolError(.ioError, "moving \(src) to failed/: \(error)", cause: error)
            }
            do {
                try Sys.fsyncDirectory(layout.failed)
                try Sys.fsyncDirectory(dir)
            } catch { throw SpoolError.io(error, "syncing failed/ after refusing \(src)", step: "claim") }
            // After the rename (a taken name moves on to the next one): a
            // crash just before this line loses the event, not the job.
            try? events.append(.failed(record))
            return
        }
        throw SpoolError(.internal, "no free name in failed/ for \(src) after 10,000 tries", step: "claim")
    }
}
