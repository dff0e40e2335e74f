import Foundation
import Logging
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Regression tests for issue 13's rows, driven on the protocol directly
/// (the daemon-level suite is IntegrationTests/HostileSpoolTests). Each
/// names the row of the issue it covers; each failed on a79a8f0 (a trap, a
/// hang, an overwrite or a skipped backoff).
final class HostileSpoolUnitTests: XCTestCase {
    var layout: SpoolLayout!
    var config: Config!

    override func setUp() {
        let root = makeTempDir(self, "hostile")
        config = Config()
        config.spool = root
        layout = config.layout
        try! layout.create()
    }

    func entry(_ id: String, _ source: Source = .inbox, raw: [UInt8]? = nil) -> QueueEntry {
        QueueEntry(id: id, source: source, priority: 0, tenant: "", arrival: 0, notBefore: 0, rawName: raw)
    }

    func claim(_ id: String, _ source: Source = .inbox) throws -> ClaimResult {
        try Claimer(layout: layout).claim(entry(id, source))
    }

    func submit(_ id: String, _ body: String = #"{"version":1,"type":"probe","input":"a.mp4"}"#) {
        try! Producer(layout: layout).submit(Array(body.utf8), id: id)
    }

    func errorCode(_ base: String) -> String? {
        read(layout.failed.appending(base + ".error.json")).flatMap { RecordCoding.decode(ErrorRecord.self, $0) }?.code
    }

    func recover() -> Recovery.Report {
        var r = Recovery.Report()
        Recovery(config: config, logger: Logger(label: "t")).recoverStaleJobs(&r)
        return r
    }

    /// Row 1: an invalid id of 248 bytes with a two-byte character across
    /// byte 200 trapped in a force-unwrap (and again at every restart).
    func testRow1LongInvalidNameWithMultibyteCharacterIsRefusedNotTrapped() throws {
        let id = String(repeating: "a", count: 199) + "é" + String(repeating: "b", count: 47)
        XCTAssertEqual(id.utf8.count, 248)
        write("{}", to: layout.inbox.appending(id + ".json"))
        guard case .refused(let e) = try claim(id), e.code == .idInvalid else { return XCTFail() }
        let kept = SpoolName.forInvalid(Array((id + ".json").utf8))
        XCTAssertEqual(errorCode(kept), "ID_INVALID")
        XCTAssertNotNil(read(layout.failed.appending(kept + ".json")))
    }

    /// Row 2: a FIFO in inbox/ hung the claim (blocking open) with the lock held.
    func testRow2FIFOInInboxFailsAtOnceAsManifestInvalid() throws {
        XCTAssertEqual(mkfifo(layout.manifest("fifo", in: layout.inbox).string, 0o644), 0)
        guard case .claimed(let job) = try claim("fifo") else { return XCTFail() }
        defer { job.lock.release() }
        XCTAssertEqual(job.unreadable?.code, .manifestInvalid)
        XCTAssertTrue(job.unreadable?.message.contains("FIFO") ?? false, job.unreadable?.message ?? "")
        XCTAssertEqual(job.state.attempts, 1)
    }

    /// Row 2: a FIFO at done/<id>.json hung the dedup read.
    func testRow2FIFOInDoneDoesNotHangTheDedup() throws {
        XCTAssertEqual(mkfifo(layout.manifest("d", in: layout.done).string, 0o644), 0)
        submit("d")
        guard case .refused(let e) = try claim("d") else { return XCTFail() }
        XCTAssertEqual(e.code, .idConflict)
    }

    /// Row 2: a FIFO at failed/<id>.error.json hung `list` and `status`.
    func testRow2FIFOInFailedDoesNotHangListOrStatus() throws {
        write("{}", to: layout.manifest("f", in: layout.failed))
        XCTAssertEqual(mkfifo(layout.errorRecord("f").string, 0o644), 0)
        XCTAssertEqual(mkfifo(layout.result("g").string, 0o644), 0)
        write("{}", to: layout.manifest("g", in: layout.done))
        let inspector = Inspector(layout: layout)
        let page = inspector.list(states: [.failed, .done], label: nil, tenant: nil, limit: 10, cursor: nil)
        XCTAssertEqual(Set(page.items.map(\.id)), ["f", "g"])
        let status = inspector.status(health: Inspector.HealthPolicy(config))
        XCTAssertEqual(status.counts["failed"], 1)
        XCTAssertNil(inspector.show("f")?.error)
    }

    /// Row 3: a sparse 100 GB file and a symlink to /dev/zero were read
    /// without bound (allocating until the daemon was killed).
    func testRow3HugeSparseFileAndSymlinkToDevZeroAreRefusedWithBoundedReads() throws {
        let huge = layout.manifest("huge", in: layout.inbox)
        let fd = open(huge.string, O_CREAT | O_WRONLY, 0o644)
        XCTAssertEqual(ftruncate(fd, 100 << 30), 0)
        close(fd)
        guard case .claimed(let job) = try claim("huge") else { return XCTFail() }
        XCTAssertEqual(job.unreadable?.code, .manifestTooLarge)
        job.lock.release()

        XCTAssertEqual(symlink("/dev/zero", layout.manifest("zero", in: layout.inbox).string), 0)
        guard case .claimed(let z) = try claim("zero") else { return XCTFail() }
        XCTAssertEqual(z.unreadable?.code, .manifestInvalid)
        XCTAssertTrue(z.unreadable?.message.contains("symbolic link") ?? false)
        z.lock.release()

        // The reader itself: bounded whatever st_size says.
        if case .failure(.tooLarge) = Sys.readRegularFile(layout.manifest("huge", in: layout.processing), limit: 1 << 20) {} else { XCTFail() }
        if case .failure(.notRegular) = Sys.readRegularFile(FilePath("/dev/zero"), limit: 1 << 20, followSymlinks: true) {} else { XCTFail() }
    }

    /// Row 4: list/status rewrote index/.finished.tsv.tmp-<pid> through a
    /// planted symlink (O_CREAT|O_TRUNC), so a root `status` overwrote any file.
    func testRow4IndexIsNeverWrittenThroughAPlantedSymlink() throws {
        let victim = makeTempDir(self, "victim").appending("victim")
        write("precious", to: victim)
        let index = layout.root.appending("index")
        try Sys.mkdirs(index)
        // Links at every name the old code used, for a range of pids.
        for pid in [getpid()] + Array(1...64).map({ Int32($0) }) {
            _ = symlink(victim.string, index.appending(".finished.tsv.tmp-\(pid)").string)
        }
        submit("a"); write("{}", to: layout.manifest("x", in: layout.done))
        _ = Inspector(layout: layout).list(states: [.done], label: nil, tenant: nil, limit: 5, cursor: nil)
        _ = Inspector(layout: layout).status(health: Inspector.HealthPolicy(config))
        XCTAssertEqual(read(victim), Array("precious".utf8))
    }

    /// Row 7: JobQueue.finished put a waiting entry straight back into the
    /// ready queue without honouring its notBefore.
    func testRow7BackoffIsHonouredWhenAnEntryComesBackAfterARun() throws {
        let q = JobQueue()
        q.upsert(entry("a"))
        let first = try XCTUnwrap(q.next())
        // While it runs, its retry is scheduled 60 s out.
        var later = entry("a", .retry)
        later.notBefore = Date().timeIntervalSince1970 + 60
        q.upsert(later)
        q.finished(first)
        // Nothing is ready: next() must not return it now.
        q.upsert(entry("b"))
        XCTAssertEqual(q.load(now: Date().timeIntervalSince1970, cap: 10).ready, 1)
        XCTAssertEqual(q.next()?.id, "b")
        XCTAssertEqual(q.load(now: Date().timeIntervalSince1970, cap: 10).ready, 0, "a waits for its backoff")
    }

    /// A wall clock that jumped back cannot stall a retry for longer than the maximum backoff.
    func testClockJumpCannotStallARetryForever() {
        let q = JobQueue(maxDelay: 600)
        var e = entry("a", .retry)
        e.notBefore = Date().timeIntervalSince1970 + 365 * 86400
        q.upsert(e)
        XCTAssertLessThanOrEqual(q.entry("a")!.notBefore, Date().timeIntervalSince1970 + 600)
    }

    /// Row 8: a done job purged from done/ but its result left, resubmitted
    /// with another manifest, crash at the start: recovery published the new
    /// manifest with the OLD result.
    func testRow8AStaleResultRecordIsNotTrustedByRecovery() throws {
        submit("a")
        guard case .claimed(let job) = try claim("a") else { return XCTFail() }
        _ = try Finisher(layout: layout).complete(job, manifest: try Manifest.parse(job.manifestBytes, fileID: "a"), outcome: JobOutcome())
        job.lock.release()
        try Sys.unlink(layout.manifest("a", in: layout.done)) // retention or an operator; the result stays
        submit("a", #"{"version":1,"type":"probe","input":"other.mp4"}"#)
        guard case .claimed(let again) = try claim("a") else { return XCTFail() }
        XCTAssertNil(read(layout.result("a")), "the stale result went at the claim")
        again.lock.release() // crash at the start
        let r = recover()
        XCTAssertEqual(r.recovered, 1); XCTAssertEqual(r.finished, 0)
        XCTAssertNotNil(read(layout.manifest("a", in: layout.retry)))
        XCTAssertNil(read(layout.manifest("a", in: layout.done)))
    }

    /// Row 8, the record's side: a result or error record that reaches a job
    /// in processing/ after its claim (written by a hand, or by a run of
    /// another manifest of the id) is not the dying run's: recovery checks
    /// the manifest digest and the attempt in it, removes it and runs the
    /// job again. The run's own record still finishes it without a re-run.
    func testRow8RecoveryTrustsOnlyARecordOfThisManifestAndAttempt() throws {
        submit("a")
        guard case .claimed(let job) = try claim("a") else { return XCTFail() }
        let manifest = try Manifest.parse(job.manifestBytes, fileID: "a")
        // What a run of another manifest of "a" wrote: same id, other digest
        // (this run's record with the digest replaced, put back as a crash
        // between the record and the publishing rename leaves it).
        let other = Array(#"{"version":1,"type":"probe","input":"other.mp4"}"#.utf8)
        var record = try Finisher(layout: layout).complete(job, manifest: manifest, outcome: JobOutcome())
        try Sys.rename(layout.manifest("a", in: layout.done), layout.manifest("a", in: layout.processing))
        record.manifestSHA256 = Digest.sha256Hex(other)
        try Durable.write(RecordCoding.encode(record), to: layout.result("a"))
        job.lock.release() // the owner dies
        var r = recover()
        XCTAssertEqual(r.recovered, 1); XCTAssertEqual(r.finished, 0)
        XCTAssertNil(read(layout.result("a")), "the other manifest's result is removed")
        XCTAssertNotNil(read(layout.manifest("a", in: layout.retry)))

        // An error record of this manifest but of an earlier attempt.
        guard case .claimed(let second) = try claim("a", .retry) else { return XCTFail() }
        XCTAssertEqual(second.state.attempts, 2)
        let stale = try Finisher(layout: layout).fail(id: "a", state: JobState(id: "a", attempts: 1), manifest: manifest,
                                                      error: SpoolError(.inputInvalid, "bad"), claimed: second)
        XCTAssertEqual(stale.manifestSHA256, Digest.sha256Hex(second.manifestBytes))
        // (fail published it: put the manifest and the state file back as a
        // crash between the record and the rename leaves them)
        try Sys.rename(layout.manifest("a", in: layout.failed), layout.manifest("a", in: layout.processing))
        try Durable.write(RecordCoding.encode(second.state), to: layout.stateFile("a"))
        XCTAssertEqual(stale.attempts, 1)
        second.lock.release()
        r = recover()
        XCTAssertEqual(r.recovered, 1); XCTAssertEqual(r.finished, 0, "attempt 1's error record does not end attempt 2")
        XCTAssertNil(read(layout.errorRecord("a")))

        // The run's own result: finished, not run again.
        guard case .claimed(let third) = try claim("a", .retry) else { return XCTFail() }
        _ = try Finisher(layout: layout).complete(third, manifest: manifest, outcome: JobOutcome())
        try Sys.rename(layout.manifest("a", in: layout.done), layout.manifest("a", in: layout.processing))
        try Durable.write(RecordCoding.encode(third.state), to: layout.stateFile("a"))
        third.lock.release()
        r = recover()
        XCTAssertEqual(r.finished, 1); XCTAssertEqual(r.recovered, 0)
        let done = try XCTUnwrap(RecordCoding.decode(ResultRecord.self, read(layout.result("a")) ?? []))
        XCTAssertEqual(done.attempts, 3)
        XCTAssertEqual(done.manifestSHA256, Digest.sha256Hex(third.manifestBytes))
        XCTAssertNotNil(read(layout.manifest("a", in: layout.done)))
    }

    /// A record without the digest (an older version's) or one that does
    /// not decode cannot tell which run wrote it: removed, the job runs again.
    func testRow8ARecordThatCannotNameItsRunIsNotTrusted() throws {
        for body in [#"{"id":"a"}"#, #"not json"#] {
            submit("a")
            guard case .claimed(let job) = try claim("a") else { return XCTFail() }
            try Durable.write(Array(body.utf8), to: layout.result("a"))
            job.lock.release()
            let r = recover()
            XCTAssertEqual(r.recovered, 1, body); XCTAssertEqual(r.finished, 0, body)
            XCTAssertNil(read(layout.result("a")), body)
            try Sys.unlink(layout.manifest("a", in: layout.retry))
            try? Sys.unlink(layout.stateFile("a"))
        }
    }

    /// An empty manifest fails MANIFEST_INVALID; a crash before its publish
    /// leaves an error record that recovery still takes for this run's.
    func testAnEmptyManifestsErrorRecordIsTrustedByRecovery() throws {
        write("", to: layout.manifest("e", in: layout.inbox))
        guard case .claimed(let job) = try claim("e") else { return XCTFail() }
        XCTAssertEqual(job.manifestBytes, [])
        _ = try Finisher(layout: layout).fail(id: "e", state: job.state, manifest: nil, error: SpoolError(.manifestInvalid, "empty"), claimed: job)
        try Sys.rename(layout.manifest("e", in: layout.failed), layout.manifest("e", in: layout.processing))
        job.lock.release()
        let r = recover()
        XCTAssertEqual(r.finished, 1); XCTAssertEqual(r.recovered, 0)
        XCTAssertEqual(errorCode("e"), "MANIFEST_INVALID")
    }

    /// Row 9: replay of a failed job, crash after the claim: recovery found
    /// the old error record and put the job back in failed/ with its old error.
    func testRow9ACrashAfterAReplayDoesNotUndoTheReplay() throws {
        submit("a")
        guard case .claimed(let job) = try claim("a") else { return XCTFail() }
        _ = try Finisher(layout: layout).fail(id: "a", state: job.state, manifest: nil, error: SpoolError(.inputInvalid, "bad"))
        job.lock.release()
        try Producer(layout: layout).replay("a")
        guard case .claimed(let again) = try claim("a") else { return XCTFail() }
        again.lock.release() // crash right after the claim
        let r = recover()
        XCTAssertEqual(r.recovered, 1); XCTAssertEqual(r.finished, 0)
        XCTAssertNotNil(read(layout.manifest("a", in: layout.retry)))
        XCTAssertNil(read(layout.manifest("a", in: layout.failed)))
        let state = try XCTUnwrap(RecordCoding.decode(JobState.self, read(layout.stateFile("a")) ?? []))
        XCTAssertEqual(state.history.first?.code, "INPUT_INVALID", "the earlier failure is kept in the history")
        XCTAssertEqual(state.history.last?.code, "INTERRUPTED")
    }

    /// Row 10: a directory inbox/d.json, or a manifest the daemon may not
    /// read, was requeued as stale every 10 s forever, attempts stuck at 1.
    func testRow10DirectoryAndUnreadableEntriesEndInFailed() throws {
        try Sys.mkdir(layout.manifest("d", in: layout.inbox))
        guard case .claimed(let job) = try claim("d") else { return XCTFail() }
        XCTAssertEqual(job.unreadable?.code, .manifestInvalid)
        XCTAssertTrue(job.unreadable?.message.contains("directory") ?? false)
        _ = try Finisher(layout: layout).fail(id: "d", state: job.state, manifest: nil, error: job.unreadable!)
        job.lock.release()
        XCTAssertEqual(errorCode("d"), "MANIFEST_INVALID")
        var st = stat()
        XCTAssertEqual(lstat(layout.manifest("d", in: layout.failed).string, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFDIR, "kept, moved aside as it is")
    }

    /// Row 13: a second conflicting manifest replaced the first one in
    /// failed/; `inbox/r1.error.json` (an invalid id) replaced r1's error record.
    func testRow13KeptManifestsAndRecordsAreNeverOverwritten() throws {
        let body = #"{"version":1,"type":"probe","input":"a.mp4"}"#
        submit("a", body)
        guard case .claimed(let job) = try claim("a") else { return XCTFail() }
        _ = try Finisher(layout: layout).complete(job, manifest: try Manifest.parse(job.manifestBytes, fileID: "a"), outcome: JobOutcome())
        job.lock.release()
        let first = #"{"version":1,"type":"probe","input":"first.mp4"}"#, second = #"{"version":1,"type":"probe","input":"second.mp4"}"#
        submit("a", first)
        guard case .refused = try claim("a") else { return XCTFail() }
        submit("a", second)
        guard case .refused = try claim("a") else { return XCTFail() }
        XCTAssertEqual(read(layout.manifest("a", in: layout.failed)), Array(first.utf8))
        XCTAssertEqual(read(layout.failed.appending("a~2.json")), Array(second.utf8))
        XCTAssertEqual(errorCode("a"), "ID_CONFLICT"); XCTAssertEqual(errorCode("a~2"), "ID_CONFLICT")

        // r1 fails for real; then an entry named r1.error.json arrives.
        submit("r1")
        guard case .claimed(let r1) = try claim("r1") else { return XCTFail() }
        _ = try Finisher(layout: layout).fail(id: "r1", state: r1.state, manifest: nil, error: SpoolError(.inputInvalid, "real"))
        r1.lock.release()
        write("{}", to: layout.inbox.appending("r1.error.json"))
        guard case .refused(let e) = try claim("r1.error"), e.code == .idInvalid else { return XCTFail() }
        XCTAssertEqual(errorCode("r1"), "INPUT_INVALID", "r1's own record is untouched")
    }

    /// Row 16: a newline in a file name forged a job in the TSV index.
    func testRow16ANewlineInANameCannotForgeAnIndexEntry() throws {
        write("{}", to: layout.done.appending("x\n1\td\tforged\tprobe\t\t1\tnull\t{}.json"))
        write("{}", to: layout.manifest("real", in: layout.done))
        let page = Inspector(layout: layout).list(states: [.done], label: nil, tenant: nil, limit: 10, cursor: nil)
        XCTAssertEqual(page.items.map(\.id), ["real"])
    }

    /// Row 17: a name that is not UTF-8 was never claimed nor counted.
    func testRow17ANonUTF8NameIsRefusedUnderASafeName() throws {
        let raw: [UInt8] = Array("bad".utf8) + [0xFF, 0xFE] + Array(".json".utf8)
        let path = layout.inbox.appending(SpoolName.component(raw)!)
        let fd = path.withPlatformString { open($0, O_CREAT | O_WRONLY, 0o644) }
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
        XCTAssertEqual(Inspector(layout: layout).status(health: Inspector.HealthPolicy(config)).counts["inbox"], 1, "counted while it waits")
        let q = JobQueue()
        Scanner(layout: layout, queue: q).fullScan()
        XCTAssertEqual(q.count, 1, "queued (to be refused)")
        guard q.count == 1 else { return }
        let e = try XCTUnwrap(q.next())
        XCTAssertEqual(e.rawName, raw)
        guard case .refused(let err) = try Claimer(layout: layout).claim(e), err.code == .idInvalid else { return XCTFail() }
        XCTAssertFalse(Sys.exists(path))
        XCTAssertEqual(errorCode(SpoolName.forInvalid(raw)), "ID_INVALID")
    }

    /// Terminal output: control characters from the spool are escaped.
    func testControlCharactersAreEscapedForTheTerminal() {
        XCTAssertEqual(Escaping.terminalSafe("a\u{1B}[2Jb\n"), "a\\u{1b}[2Jb\\u{a}")
        XCTAssertEqual(Escaping.terminalSafe("plain é"), "plain é")
        XCTAssertEqual(Escaping.terminalSafe("\\u{1b}"), "\\\\u{1b}", "an escape cannot be forged")
    }

    /// Found by FuzzSpool: an invalid name planted in processing/ was
    /// skipped by recovery forever (no daemon could ever claim it).
    func testAnInvalidNameInProcessingIsRefusedByRecovery() throws {
        write("{}", to: layout.processing.appending("\u{2}.json"))
        let r = recover()
        XCTAssertEqual(r.failed, 1)
        XCTAssertEqual(try Sys.entries(in: layout.processing), [])
        XCTAssertEqual(errorCode(SpoolName.forInvalid(Array("\u{2}.json".utf8))), "ID_INVALID")
    }

    /// Row 20: `mv` of a running job's manifest out of processing/ made it
    /// run twice. The run finishes from where its own file (same inode) went.
    func testRow20ARunningJobMovedBackToTheInboxFinishesOnce() throws {
        submit("a")
        guard case .claimed(let job) = try claim("a") else { return XCTFail() }
        try Sys.rename(layout.manifest("a", in: layout.processing), layout.manifest("a", in: layout.inbox)) // an operator's mv
        _ = try Finisher(layout: layout).complete(job, manifest: try Manifest.parse(job.manifestBytes, fileID: "a"), outcome: JobOutcome())
        job.lock.release()
        XCTAssertNotNil(read(layout.manifest("a", in: layout.done)))
        XCTAssertNil(read(layout.manifest("a", in: layout.inbox)), "not left to run again")
        guard case .gone = try claim("a") else { return XCTFail("the moved manifest must not be claimed again") }
    }

    /// Not the same file: a new manifest for the id in inbox/ is not taken
    /// for the moved one (even when the file system hands it the same inode).
    func testRow20ANewManifestOfTheSameIDIsNotMistakenForTheMovedOne() throws {
        submit("b")
        guard case .claimed(let job) = try claim("b") else { return XCTFail() }
        try Sys.unlink(layout.manifest("b", in: layout.processing))
        submit("b", #"{"version":1,"type":"probe","input":"new.mp4"}"#)
        XCTAssertThrowsError(try Finisher(layout: layout).complete(job, manifest: try Manifest.parse(job.manifestBytes, fileID: "b"), outcome: JobOutcome()))
        job.lock.release()
        XCTAssertEqual(read(layout.manifest("b", in: layout.inbox)), Array(#"{"version":1,"type":"probe","input":"new.mp4"}"#.utf8))
    }

    /// Row 15: a failed id resubmitted (not replayed) that then succeeded
    /// stayed listed as failed too. The earlier pair is kept aside first.
    func testRow15AResubmittedFailedIDIsListedOnceByItsLatestRun() throws {
        submit("a")
        guard case .claimed(let job) = try claim("a") else { return XCTFail() }
        _ = try Finisher(layout: layout).fail(id: "a", state: job.state, manifest: nil, error: SpoolError(.inputNotFound, "missing"))
        job.lock.release()
        submit("a", #"{"version":1,"type":"probe","input":"fixed.mp4"}"#)
        guard case .claimed(let again) = try claim("a") else { return XCTFail() }
        _ = try Finisher(layout: layout).complete(again, manifest: try Manifest.parse(again.manifestBytes, fileID: "a"), outcome: JobOutcome())
        again.lock.release()
        let page = Inspector(layout: layout).list(states: [.done, .failed], label: nil, tenant: nil, limit: 10, cursor: nil)
        XCTAssertEqual(page.items.filter { $0.id == "a" }.map(\.state), [.done])
        XCTAssertEqual(errorCode("a~2"), "INPUT_NOT_FOUND", "the earlier failure is kept, aside")
        XCTAssertEqual(again.state.history.first?.code, "INPUT_NOT_FOUND", "and its history carried")
    }

    /// A directory planted where a record goes: the claim moves it aside
    /// instead of failing forever, and recovery never takes it for a record.
    func testADirectoryWhereARecordGoesIsNeitherFatalNorTrusted() throws {
        try Sys.mkdir(layout.result("a"))
        try Sys.mkdir(layout.errorRecord("a"))
        submit("a")
        guard case .claimed(let job) = try claim("a") else { return XCTFail() }
        XCTAssertFalse(Sys.exists(layout.result("a")), "moved aside")
        job.lock.release() // crash
        try Sys.mkdir(layout.result("a"))   // planted again while it was dead
        let r = recover()
        XCTAssertEqual(r.recovered, 1); XCTAssertEqual(r.finished, 0)
        XCTAssertNotNil(read(layout.manifest("a", in: layout.retry)))
    }

    /// Replay moves a failed manifest back without replacing a newer one of
    /// the id that waits in inbox/ (review finding).
    func testReplayNeverReplacesANewerManifestWaitingInTheInbox() throws {
        submit("a")
        guard case .claimed(let job) = try claim("a") else { return XCTFail() }
        _ = try Finisher(layout: layout).fail(id: "a", state: job.state, manifest: nil, error: SpoolError(.inputInvalid, "bad"), claimed: job)
        job.lock.release()
        let newer = #"{"version":1,"type":"probe","input":"newer.mp4"}"#
        submit("a", newer)
        XCTAssertThrowsError(try Producer(layout: layout).replay("a")) { XCTAssertEqual(($0 as? SpoolError)?.code, .idConflict) }
        XCTAssertEqual(read(layout.manifest("a", in: layout.inbox)), Array(newer.utf8))
        XCTAssertNotNil(read(layout.manifest("a", in: layout.failed)))
        XCTAssertThrowsError(try Producer(layout: layout).replay("../a")) { XCTAssertEqual(($0 as? SpoolError)?.code, .idInvalid) }
    }

    /// A progress file's fraction is the spool's word, not the daemon's: a
    /// planted 1e300 or NaN must not trap `status` or `watch` (review finding).
    func testAProgressFractionOutOfRangeIsClampedForStatus() throws {
        write(#"{"version":1,"type":"probe","input":"a.mp4"}"#, to: layout.manifest("p", in: layout.processing))
        write(#"{"id":"p","type":"probe","step":"x","fraction":1e300,"attempt":1,"startedAt":"2026-01-01T00:00:00Z","pid":1,"updatedAt":"2026-01-01T00:00:00Z"}"#, to: layout.progress("p"))
        let running = Inspector(layout: layout).status(health: Inspector.HealthPolicy(config)).running
        XCTAssertEqual(running.first?.fraction, 1)
    }

    /// JSON output for a terminal: DEL, C1 controls and the line separators
    /// escaped, and the JSON still decodes to the same text.
    func testJSONOutputEscapesWhatJSONEncoderLeavesRaw() throws {
        let nasty = "a\u{7F}b\u{9B}31mc\u{85}d\u{2028}e\u{2029}fé\u{1B}g"
        let encoded = RecordCoding.encode(["k": nasty])
        let safe = Escaping.jsonTerminalSafe(encoded)
        let text = String(decoding: safe, as: UTF8.self)
        XCTAssertFalse(text.unicodeScalars.contains { $0.value == 0x7F || (0x80...0x9F).contains($0.value) || $0.value == 0x2028 || $0.value == 0x2029 || $0.value == 0x1B }, text)
        XCTAssertEqual(try JSONDecoder().decode([String: String].self, from: Data(safe)), ["k": nasty])
        XCTAssertEqual(Escaping.jsonTerminalSafe(Array("plain é".utf8)), Array("plain é".utf8))
    }
}
