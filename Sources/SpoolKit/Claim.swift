// The queue protocol, as this file and its neighbours implement it
// (the contract is ../shared/spec/spool-v1.md; mediaspool's additions are
// in docs/spool-layout.md).
//
//   producer: tmp/X ──rename──▶ inbox/<id>.json
//
//   claim   (Claim.swift)    flock locks/<id>.lock (LOCK_EX|LOCK_NB, O_CLOEXEC),
//                            check fstat(fd) == stat(path) (else start over),
//                            dedup against processing/, retry/ and done/,
//                            rename inbox|retry/<id>.json ──▶ processing/<id>.json,
//                            write state/<id>.json with attempts+1 (durable,
//                            before the job runs: a job that kills the daemon
//                            still uses up its attempts); not for a first
//                            attempt without history, which recovery reads
//                            from the missing file.
//   run     (Engine.swift)   outputs under .NAME.tmp-PID-RAND, fsync, rename.
//   finish  (Finish.swift)   success: done/<id>.result.json, then
//                                     processing/<id>.json ──▶ done/<id>.json
//                            retryable, attempts left: state (notBefore), then
//                                     processing/<id>.json ──▶ retry/<id>.json
//                            otherwise: failed/<id>.error.json, then
//                                     processing/<id>.json ──▶ failed/<id>.json
//                            then state/ and the lock file are removed, and
//                            the lock released.
//   recover (Recovery.swift) processing/<id>.json whose lock nobody holds:
//                            a record already in done/ or failed/ finishes the
//                            move; otherwise the attempt ends as INTERRUPTED
//                            and the job goes to retry/ (or failed/ when out
//                            of attempts).
//
// Every state change is one rename; every file is fsynced before the rename
// that publishes it and the directory after (Durable.swift). The lock is
// held from before the first rename until after the last, so two daemons on
// one spool never run one job twice.
import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A held flock(2) on locks/<id>.lock. Released (and the lock file removed)
/// by `release()`; released by the kernel if the process dies.
public final class JobLock: @unchecked Sendable {
    public let id: String
    let path: FilePath
    private var fd: FileDescriptor?

    private init(id: String, path: FilePath, fd: FileDescriptor) { self.id = id; self.path = path; self.fd = fd }

    /// Tries to take the lock of `id` without blocking: nil when another
    /// process (or another claim in this one) holds it.
    public static func tryAcquire(_ id: String, layout: SpoolLayout) throws(SpoolError) -> JobLock? {
        let path = layout.lock(id)
        for _ in 0..<8 {
            let fd: FileDescriptor
            do {
                fd = try Sys.open(path, .readWrite, options: [.create], permissions: [.ownerReadWrite, .groupReadWrite])
            } catch { throw SpoolError.io(error, "opening lock \(path)", step: "claim") }
            do {
                guard try Sys.tryLockExclusive(fd) else { try? fd.close(); return nil }
                // The holder before us may have unlinked the file after we
                // opened it: then we lock a dead inode. Compare and start over.
                let a = try Sys.fstat(fd)
                if let b = try? Sys.stat(path), a.st_ino == b.st_ino, a.st_dev == b.st_dev {
                    return JobLock(id: id, path: path, fd: fd)
                }
                try? fd.close()
            } catch {
                try? fd.close()
                throw SpoolError.io(error, "locking \(path)", step: "claim")
            }
        }
        return nil
    }

    /// Removes the lock file while still holding it, then unlocks.
    public func release() {
        guard let fd else { return }
        try? Sys.unlink(path)
        try? fd.close()
        self.fd = nil
    }

    deinit { release() }
}

/// A job that this process has claimed: its manifest is in processing/ and
/// its lock is held.
public struct ClaimedJob: Sendable {
    public let id: String
    public let lock: JobLock
    public let manifestBytes: [UInt8]
    public var state: JobState
    public let source: Source
    public let startedAt: Date
}

public enum ClaimResult: Sendable {
    case claimed(ClaimedJob)
    /// Another process holds the lock.
    case busy
    /// The manifest is gone (claimed by someone else, or withdrawn).
    case gone
    /// Must wait: the same id is running or waiting in retry/.
    case deferred
    /// Dealt with at the door: a duplicate removed, an ID_CONFLICT or
    /// ID_INVALID sent to failed/.
    case handled(String)
}

public struct Claimer: Sendable {
    public let layout: SpoolLayout
    public init(layout: SpoolLayout) { self.layout = layout }

    public func claim(_ entry: QueueEntry) throws(SpoolError) -> ClaimResult {
        let id = entry.id
        let sourceDir = entry.source == .inbox ? layout.inbox : layout.retry
        let src = layout.manifest(id, in: sourceDir)
        guard JobID.isValid(id) else { return try refuseInvalidID(id, at: src) }
        guard let lock = try JobLock.tryAcquire(id, layout: layout) else { return .busy }
        var keep = false
        defer { if !keep { lock.release() } }

        if Sys.exists(layout.manifest(id, in: layout.processing)) { return .deferred } // stale: left to recovery
        if entry.source == .inbox {
            if Sys.exists(layout.manifest(id, in: layout.retry)) { return .deferred }
            if let r = try dedupAgainstDone(id, src: src) { return r }
        }
        let dst = layout.manifest(id, in: layout.processing)
        do {
            try Sys.rename(src, dst)
        } catch {
            if error == .noSuchFileOrDirectory { return .gone }
            throw SpoolError.io(error, "claiming \(src)", step: "claim")
        }
        do {
            try Sys.fsyncDirectory(layout.processing)
            try Sys.fsyncDirectory(sourceDir)
        } catch { throw SpoolError.io(error, "syncing the claim of \(id)", step: "claim") }
        Fault.point("after-claim-rename")

        // From here on the job is ours: every error must end it in a record.
        let bytes: [UInt8]
        do {
            bytes = try Sys.readFile(dst, limit: Int.max) ?? []
        } catch { throw SpoolError.io(error, "reading \(dst)", step: "claim") }
        var state = try loadState(id, fresh: entry.source == .inbox)
        let now = Date()
        state.attempts += 1
        state.history.append(HistoryEntry(attempt: state.attempts, startedAt: RFC3339.string(now)))
        state.notBefore = nil
        if state.attempts > 1 || state.history.count > 1 {
            try Durable.write(RecordCoding.encode(state), to: layout.stateFile(id), step: "claim")
        } else {
            // A first attempt with no history needs no state file: recovery
            // reads a job in processing/ without one as on its first attempt,
            // which is all the file would say. That is one file created,
            // fsynced, renamed and removed less per job, the most common job.
            // (On ext4 without a journal each removed inode also slows the
            // next creations for a while: the allocator skips recently
            // deleted inodes one by one.) A stray file of an earlier run of
            // the id must not speak for this one: it goes.
            do {
                try Sys.unlink(layout.stateFile(id))
                try Sys.fsyncDirectory(layout.state)
            } catch where error != .noSuchFileOrDirectory {
                throw SpoolError.io(error, "removing the stale state of \(id)", step: "claim")
            } catch {}
        }
        Fault.point("after-claim")
        if entry.source == .inbox {
            // A replayed job: its old error record's history now lives in the
            // state file; the record goes, so one in failed/ always belongs
            // to the current run (Recovery relies on that).
            try? Sys.unlink(layout.errorRecord(id))
        }
        keep = true
        return .claimed(ClaimedJob(id: id, lock: lock, manifestBytes: bytes, state: state, source: entry.source, startedAt: now))
    }

    /// The state of a job about to run. From retry/ the attempts go on; from
    /// inbox/ a new run starts, keeping the history of an earlier failure.
    func loadState(_ id: String, fresh: Bool) throws(SpoolError) -> JobState {
        if !fresh, let b = try? Sys.readFile(layout.stateFile(id)), let s = RecordCoding.decode(JobState.self, b) {
            return s
        }
        var state = JobState(id: id)
        if let b = try? Sys.readFile(layout.errorRecord(id)), let old = RecordCoding.decode(ErrorRecord.self, b) {
            state.history = old.history
        }
        return state
    }

    /// Dedup of spool-v1.md: same bytes as the done manifest: a duplicate,
    /// removed; different bytes: ID_CONFLICT, kept in failed/.
    func dedupAgainstDone(_ id: String, src: FilePath) throws(SpoolError) -> ClaimResult? {
        let donePath = layout.manifest(id, in: layout.done)
        guard Sys.exists(donePath) else { return nil }
        let mine: [UInt8]?, theirs: [UInt8]?
        do {
            mine = try Sys.readFile(src, limit: Manifest.maxBytes * 2)
            theirs = try Sys.readFile(donePath, limit: Manifest.maxBytes * 2)
        } catch {
            if error == .noSuchFileOrDirectory { return .gone }
            throw SpoolError.io(error, "comparing \(src) with \(donePath)", step: "claim")
        }
        if let mine, mine == theirs {
            do {
                try Sys.unlink(src)
                try Sys.fsyncDirectory(src.removingLastComponent())
            } catch {
                if error == .noSuchFileOrDirectory { return .gone }
                throw SpoolError.io(error, "removing duplicate \(src)", step: "claim")
            }
            return .handled("duplicate")
        }
        let err = SpoolError(.idConflict, "a different job with id \(id) is already done (done/\(id).json); submit this one under a new id", step: "claim")
        try Finisher(layout: layout).failAtTheDoor(id: id, manifestPath: src, error: err)
        return .handled(err.code.rawValue)
    }

    /// A manifest whose file name is not a valid id cannot be locked by name:
    /// it is moved straight to failed/ (the rename itself is the claim).
    func refuseInvalidID(_ id: String, at src: FilePath) throws(SpoolError) -> ClaimResult {
        let err = SpoolError(.idInvalid, "\"\(id)\" is not a valid job id: the file name must be 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit (and not ending in .result or .error), followed by .json; rename the file", step: "claim")
        do {
            try Finisher(layout: layout).failAtTheDoor(id: id, manifestPath: src, error: err)
        } catch {
            if case .ioError = error.code, (error.cause as? Errno) == .noSuchFileOrDirectory { return .gone }
            throw error
        }
        return .handled(err.code.rawValue)
    }
}
