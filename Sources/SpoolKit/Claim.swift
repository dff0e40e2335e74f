// The queue protocol, as this file and its neighbours implement it
// (the contract is ../shared/spec/spool-v1.md; mediaspool's additions are
// in docs/spool-layout.md).
//
//   producer: tmp/X ──rename──▶ inbox/<id>.json
//
//   claim   (Claim.swift)    flock locks/<id>.lock (LOCK_EX|LOCK_NB, O_CLOEXEC,
//                            O_NOFOLLOW, mode 0600),
//                            check fstat(fd) == stat(path) (else start over),
//                            dedup against processing/, retry/ and done/,
//                            remove records of an earlier run of the id
//                            (durably: a record beside a job in processing/
//                            is always that run's own),
//                            rename inbox|retry/<id>.json ──▶ processing/<id>.json,
//                            write state/<id>.json with attempts+1 (durable,
//                            before the job runs: a job that kills the daemon
//                            still uses up its attempts); not for a first
//                            attempt without history, which recovery reads
//                            from the missing file; then read the manifest
//                            (bounded, non-blocking, regular files only).
//   run     (Engine.swift, the runner in Jobs/)
//                            each output under .NAME.tmp-PID-RAND in its
//                            directory, opened without following symlinks;
//                            fsync, renameat, fsync the directory
//                            (OutputTarget.swift).
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
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A held flock(2) on locks/<id>.lock. Released (and the lock file removed)
/// by `release()`; released by the kernel if the process dies.
public final class JobLock: Sendable {
    public let id: String
    let path: FilePath
    /// The held descriptor until `release()` (which any thread may call once).
    private let fd: Mutex<FileDescriptor?>

    private init(id: String, path: FilePath, fd: FileDescriptor) { self.id = id; self.path = path; self.fd = Mutex(fd) }

    /// Tries to take the lock of `id` without blocking: nil when another
    /// process (or another claim in this one) holds it.
    public static func tryAcquire(_ id: String, layout: SpoolLayout) throws(SpoolError) -> JobLock? {
        let path = layout.lock(id)
        for _ in 0..<8 {
            let fd: FileDescriptor
            do {
                fd = try LockFile.open(path)
                // Root (an operator's `mediaspool sweep`) creates it for the
                // owner of locks/, or the daemon could not open it later.
                if Sys.isRoot, let dir = try? Sys.stat(layout.locks), dir.st_uid != 0 {
                    Sys.chown(fd, uid: dir.st_uid, gid: dir.st_gid)
                }
            } catch { throw SpoolError.io(error, "opening lock \(path)", step: "claim") }
            do {
                // Only flock's own failure is step "lock" (an EIO from it
                // means the file system fenced this host off: Fencing.swift).
                guard try Sys.tryLockExclusive(fd) else { try? fd.close(); return nil }
            } catch {
                try? fd.close()
                throw SpoolError.io(error, "locking \(path)", step: "lock")
            }
            do {
                // The holder before us may have unlinked the file after we
                // opened it: then we lock a dead inode. Compare and start over.
                let a = try Sys.fstat(fd)
                if let b = try? Sys.stat(path), a.st_ino == b.st_ino, a.st_dev == b.st_dev {
                    return JobLock(id: id, path: path, fd: fd)
                }
                try? fd.close()
            } catch {
                try? fd.close()
                throw SpoolError.io(error, "checking lock \(path)", step: "claim")
            }
        }
        return nil
    }

    /// Removes the lock file while still holding it, then unlocks.
    public func release() {
        fd.withLock { held in
            guard let descriptor = held else { return }
            // Fenced off: the lock file is another host's business now.
            if !Fence.isRaised { try? Sys.unlink(path) }
            try? descriptor.close()
            held = nil
        }
    }

    deinit { release() }
}

/// A job that this process has claimed: its manifest is in processing/ and
/// its lock is held.
public struct ClaimedJob: Sendable {
    public let id: String
    public let lock: JobLock
    /// The manifest's bytes; empty when `unreadable` says why they could not be read.
    public let manifestBytes: [UInt8]
    /// Set when the claimed entry is not a readable manifest (a FIFO, a
    /// directory, a symlink, too large, not readable by the daemon): the
    /// job ends with this error, its attempt already counted.
    public let unreadable: SpoolError?
    public var state: JobState
    public let source: Source
    public let startedAt: Date
    /// `startedAt` on the monotonic clock, for the deadline.
    public let startedClock: ContinuousClock.Instant
    /// The claimed manifest file (in processing/), to recognise it if it is moved by hand.
    public let identity: FileIdentity?
}

/// A file's device and inode: the same file, wherever it is renamed to.
public struct FileIdentity: Equatable, Sendable {
    public let device: UInt64, inode: UInt64
    public init(_ st: stat) { device = UInt64(st.st_dev); inode = UInt64(st.st_ino) }
}

public enum ClaimResult: Sendable {
    case claimed(ClaimedJob)
    /// Another process holds the lock.
    case busy
    /// The manifest is gone (claimed by someone else, or withdrawn).
    case gone
    /// Must wait: the same id is running or waiting in retry/.
    case deferred
    /// A byte-identical manifest of a done job, removed from inbox/.
    case duplicate
    /// Refused at the door (ID_CONFLICT, ID_INVALID): kept in failed/ with this error.
    case refused(SpoolError)
}

public struct Claimer: Sendable {
    public let layout: SpoolLayout
    /// Where a job failed at the door (or kept aside) logs its event: the
    /// daemon's configured log (segment size, retention).
    let events: EventLog?
    public init(layout: SpoolLayout, events: EventLog? = nil) { self.layout = layout; self.events = events }

    public func claim(_ entry: QueueEntry) throws(SpoolError) -> ClaimResult {
        let id = entry.id
        let sourceDir = layout.directory(entry.source.queue)
        guard JobID.isValid(id) else { return try refuseInvalidName(entry, in: sourceDir) }
        let src = layout.manifest(id, in: sourceDir)
        guard let lock = try JobLock.tryAcquire(id, layout: layout) else { return .busy }
        var keep = false
        defer { if !keep { lock.release() } }

        if Sys.exists(layout.manifest(id, in: layout.processing)) { return .deferred } // stale: left to recovery
        if entry.source == .inbox {
            if Sys.exists(layout.manifest(id, in: layout.retry)) { return .deferred }
            if let r = try dedupAgainstDone(id, src: src) { return r }
        }
        guard Sys.exists(src) else { return .gone }
        // What the new run starts from, read before the stale records go.
        var state = try loadState(id, fresh: entry.source == .inbox)
        // A new manifest for an id that failed before (not a replay: the old
        // one is still in failed/): the old pair is kept aside under `<id>~N`,
        // so failed/ never lists a job that then succeeds, and its record
        // cannot speak for the new run.
        if entry.source == .inbox, Sys.exists(layout.manifest(id, in: layout.failed)) {
            try Finisher(layout: layout, events: events).keepAside(id)
        }
        // Records of an earlier run of this id (a replay's error record, the
        // result of a done job that was purged and resubmitted) are removed
        // under the lock and durably, before the claim: a record found beside
        // a job in processing/ is then always this run's own (Recovery
        // publishes on it). A crash right here loses at most the history of
        // the earlier failure, never the job.
        try removeStaleRecords(id)
        if entry.source == .inbox {
            // A state file of an earlier run must not speak for this one,
            // not even for a crash right after the rename.
            try Durable.remove(layout.stateFile(id), step: "claim")
        }
        let dst = layout.manifest(id, in: layout.processing)
        try Fence.check("claim")
        do {
            try Sys.rename(src, dst)
        } catch {
            if error == .noSuchFileOrDirectory { return .gone }
            throw SpoolError.io(error, "claiming \(src)", step: "claim")
        }
        try checkMoved(from: src, to: dst)
        do {
            try Sys.fsyncDirectory(layout.processing)
            try Sys.fsyncDirectory(sourceDir)
        } catch { throw SpoolError.io(error, "syncing the claim of \(id)", step: "claim") }
        Fault.point("after-claim-rename")

        // From here on the job is ours: every error must end it in a record.
        // The attempt is counted before anything of the job is read.
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
            // the id was removed before the rename, above.
        }
        Fault.point("after-claim")
        let (bytes, unreadable) = readClaimed(dst)
        let identity = (try? Sys.stat(dst, followSymlinks: false)).map(FileIdentity.init)
        keep = true
        return .claimed(ClaimedJob(id: id, lock: lock, manifestBytes: bytes, unreadable: unreadable,
                                   state: state, source: entry.source, startedAt: now, startedClock: .now, identity: identity))
    }

    /// After the claim's rename: a file is at the destination, and it is not
    /// also at the source. A shared file system that lets two racing renames
    /// of one file both succeed (GlusterFS, JuiceFS, measured:
    /// docs/scale-out.md) shows it otherwise; the claim is then not trusted:
    /// the job is not run here, and recovery sorts out processing/ once the
    /// lock is free. (A producer may drop a new file under the source's name
    /// meanwhile: another inode there is fine.) Two stats per claim; the
    /// flock makes the failure unreachable on a file system that keeps its
    /// promises. An error of the stats themselves (ESHUTDOWN when fenced
    /// off) is thrown as such.
    func checkMoved(from src: FilePath, to dst: FilePath) throws(SpoolError) {
        func identity(_ p: FilePath) throws(SpoolError) -> FileIdentity? {
            do { return FileIdentity(try Sys.stat(p, followSymlinks: false)) } catch {
                if error == .noSuchFileOrDirectory { return nil }
                throw SpoolError.io(error, "checking the claim of \(p)", step: "claim")
            }
        }
        let there = try identity(dst)
        let left = try identity(src)
        if let there, left != there { return }
        throw SpoolError(.ioError, "the claim's rename of \(src) to \(dst) answered success, but "
            + (there == nil ? "\(dst) is not there" : "the file is still in \(src.removingLastComponent())")
            + ": the spool's file system does not keep rename's promise (another host's claim may have raced this one); the job is left to recovery. "
            + "Use a file system that does (docs/scale-out.md)", step: "claim")
    }

    /// The claimed entry's bytes, or why it is no manifest. Bounded and
    /// non-blocking whatever the entry is (Sys.readRegularFile).
    func readClaimed(_ path: FilePath) -> ([UInt8], SpoolError?) {
        switch Sys.readRegularFile(path, limit: Manifest.maxBytes) {
        case .success(let bytes): return (bytes, nil)
        case .failure(.notRegular(let kind)):
            return ([], SpoolError(.manifestInvalid, "the inbox entry is a \(kind), not a regular file: a manifest must be a regular JSON file renamed into inbox/", step: "claim"))
        case .failure(.tooLarge(let size)):
            return ([], SpoolError(.manifestTooLarge, "the manifest is \(size) bytes; at most \(Manifest.maxBytes) are accepted", step: "claim"))
        case .failure(.error(let e)) where e == .permissionDenied || e == .notPermitted:
            return ([], SpoolError(.manifestInvalid, "the daemon may not read the manifest (\(e)): write it readable by the mediaspool group (mode 0640 or wider) and replay it", step: "claim", cause: e))
        case .failure(.error(let e)):
            return ([], SpoolError.io(e, "reading the claimed manifest", step: "claim"))
        }
    }

    /// A result in done/ whose manifest is not there (purged, or removed by
    /// an operator to force a re-run), and an error record in failed/ whose
    /// manifest is not there (replayed). A record beside its manifest belongs
    /// to a finished job and is never touched (a stale queue entry of a job
    /// that has since finished reaches this point too, before its rename
    /// finds the source gone).
    func removeStaleRecords(_ id: String) throws(SpoolError) {
        for (record, dir) in [(layout.result(id), layout.done), (layout.errorRecord(id), layout.failed)] {
            guard !Sys.exists(layout.manifest(id, in: dir)) else { continue }
            try Durable.remove(record, step: "claim")
        }
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
    /// removed; different bytes: ID_CONFLICT, kept in failed/. A done entry
    /// that is not a readable regular file compares as different.
    func dedupAgainstDone(_ id: String, src: FilePath) throws(SpoolError) -> ClaimResult? {
        let donePath = layout.manifest(id, in: layout.done)
        guard Sys.exists(donePath) else { return nil }
        let mine: [UInt8]?
        do { mine = try Sys.readFile(src, limit: Manifest.maxBytes) } catch {
            if error == .noSuchFileOrDirectory { return .gone }
            mine = nil
        }
        let theirs = try? Sys.readFile(donePath, limit: Manifest.maxBytes)
        if let mine, mine == theirs {
            do {
                try Sys.unlink(src)
                try Sys.fsyncDirectory(src.removingLastComponent())
            } catch {
                if error == .noSuchFileOrDirectory { return .gone }
                throw SpoolError.io(error, "removing duplicate \(src)", step: "claim")
            }
            return .duplicate
        }
        let err = SpoolError(.idConflict, "a different job with id \(id) is already done (done/\(id).json); submit this one under a new id", step: "claim")
        do throws(SpoolError) {
            try Finisher(layout: layout, events: events).failAtTheDoor(id: id, name: src.lastComponent!, from: src.removingLastComponent(), error: err)
        } catch {
            if error.isVanished { return .gone }
            throw error
        }
        return .refused(err)
    }

    /// An entry whose name is not a valid id (any bytes: too long, control
    /// characters, not UTF-8) cannot be locked by name: it is moved straight
    /// to failed/ under a safe name of its own (the rename itself is the claim).
    func refuseInvalidName(_ entry: QueueEntry, in dir: FilePath) throws(SpoolError) -> ClaimResult {
        let shown = Escaping.quoted(entry.rawName.map { String(decoding: $0, as: UTF8.self) } ?? entry.id + ".json")
        let err = SpoolError(.idInvalid, "\(shown) is not a valid manifest name: it must be a job id of 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit (and not ending in .result or .error), followed by .json; submit it again under such a name", step: "claim")
        do {
            try Finisher(layout: layout, events: events).failAtTheDoor(id: entry.id, name: entry.name, from: dir, error: err)
        } catch {
            if error.isVanished { return .gone }
            throw error
        }
        return .refused(err)
    }
}
