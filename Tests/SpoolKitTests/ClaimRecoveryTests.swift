import Foundation
import Logging
import SpoolKit
import SystemPackage
import XCTest

/// The claim / finish / recover protocol, driven directly (no daemon).
final class ClaimRecoveryTests: XCTestCase {
    var layout: SpoolLayout!
    var config: Config!

    override func setUp() {
        let root = makeTempDir(self, "spool")
        config = Config()
        config.spool = root
        layout = config.layout
        try! layout.create()
    }

    func submit(_ id: String, _ body: String = #"{"version":1,"type":"probe","input":"a.mp4"}"#) {
        try! Producer(layout: layout).submit(Array(body.utf8), id: id)
    }

    func claim(_ id: String, source: Source = .inbox) throws -> ClaimResult {
        try Claimer(layout: layout).claim(QueueEntry(id: id, source: source, priority: 0, tenant: "", arrival: 0, notBefore: 0))
    }

    func claimed(_ r: ClaimResult, file: StaticString = #filePath, line: UInt = #line) -> ClaimedJob? {
        if case .claimed(let j) = r { return j }
        XCTFail("not claimed: \(r)", file: file, line: line)
        return nil
    }

    func testClaimMovesAndCountsTheAttemptDurably() throws {
        submit("a")
        let job = try XCTUnwrap(claimed(try claim("a")))
        XCTAssertNil(read(layout.manifest("a", in: layout.inbox)))
        XCTAssertEqual(read(layout.manifest("a", in: layout.processing)), job.manifestBytes)
        // A first attempt with no history writes no state file: recovery
        // reads the missing file as attempt 1 (testRecoveryRequeues…).
        XCTAssertEqual(job.state.attempts, 1)
        XCTAssertEqual(job.state.history.count, 1)
        XCTAssertNil(read(layout.stateFile("a")))
        // Locked: a second claimer (another open file description) is refused.
        XCTAssertNil(try JobLock.tryAcquire("a", layout: layout))
        job.lock.release()
        XCTAssertNil(read(layout.lock("a")), "lock file removed on release")
    }

    func testCompleteWritesRecordThenMoves() throws {
        submit("a", #"{"version":1,"type":"probe","input":"a.mp4","tenant":"t","labels":{"k":"v"}}"#)
        let job = try XCTUnwrap(claimed(try claim("a")))
        let m = try Manifest.parse(job.manifestBytes, fileID: "a")
        let rec = try Finisher(layout: layout).complete(job, manifest: m, outcome: JobOutcome(steps: [StepTiming(name: "probe", durationMs: 1)]))
        job.lock.release()
        XCTAssertEqual(read(layout.manifest("a", in: layout.done)), job.manifestBytes)
        let onDisk = try XCTUnwrap(RecordCoding.decode(ResultRecord.self, read(layout.result("a"))!))
        XCTAssertEqual(onDisk.id, "a"); XCTAssertEqual(onDisk.status, "done"); XCTAssertEqual(onDisk.attempts, 1)
        XCTAssertEqual(onDisk.tenant, "t"); XCTAssertEqual(onDisk.labels, ["k": "v"]); XCTAssertEqual(onDisk.type, "probe")
        XCTAssertEqual(rec.steps.first?.name, "probe")
        XCTAssertNotNil(RFC3339.date(onDisk.startedAt)); XCTAssertNotNil(RFC3339.date(onDisk.completedAt))
        XCTAssertTrue(onDisk.completedAt.hasSuffix("Z")); XCTAssertEqual(onDisk.completedAt.count, 24)
        XCTAssertEqual(onDisk.host, HostID.current, "the record names the host that wrote it (an extension of spool v1)")
        XCTAssertNil(read(layout.stateFile("a")))
    }

    func testDuplicateOfDoneIsRemovedAndConflictIsKept() throws {
        let body = #"{"version":1,"type":"probe","input":"a.mp4"}"#
        submit("a", body)
        let job = try XCTUnwrap(claimed(try claim("a")))
        _ = try Finisher(layout: layout).complete(job, manifest: try Manifest.parse(job.manifestBytes, fileID: "a"), outcome: JobOutcome())
        job.lock.release()
        submit("a", body)
        guard case .duplicate = try claim("a") else { return XCTFail() }
        XCTAssertNil(read(layout.manifest("a", in: layout.inbox)))
        let other = #"{"version":1,"type":"probe","input":"b.mp4"}"#
        submit("a", other)
        guard case .refused(let e) = try claim("a"), e.code == .idConflict else { return XCTFail() }
        XCTAssertEqual(read(layout.manifest("a", in: layout.failed)), Array(other.utf8))
        XCTAssertEqual(RecordCoding.decode(ErrorRecord.self, read(layout.errorRecord("a"))!)?.code, "ID_CONFLICT")
        XCTAssertEqual(RecordCoding.decode(ErrorRecord.self, read(layout.errorRecord("a"))!)?.host, HostID.current, "error records name the host too")
        XCTAssertEqual(read(layout.manifest("a", in: layout.done)), Array(body.utf8), "the done job is untouched")
    }

    func testInvalidFileNameGoesToFailed() throws {
        write("{}", to: layout.inbox.appending("bad id!.json"))
        guard case .refused(let e) = try claim("bad id!"), e.code == .idInvalid else { return XCTFail() }
        // Kept under a safe name of its own (not a valid id: it can never
        // be another job's), the original name in the record.
        let kept = SpoolName.forInvalid(Array("bad id!.json".utf8))
        XCTAssertTrue(kept.hasPrefix("invalid~"))
        XCTAssertEqual(read(layout.failed.appending(kept + ".json")), Array("{}".utf8))
        let record = try XCTUnwrap(RecordCoding.decode(ErrorRecord.self, read(layout.failed.appending(kept + ".error.json"))!))
        XCTAssertEqual(record.code, "ID_INVALID")
        XCTAssertEqual(record.id, "bad id!")
        XCTAssertNil(read(layout.manifest("bad id!", in: layout.inbox)))
    }

    func testWaitsWhileSameIDIsProcessing() throws {
        submit("a")
        let job = try XCTUnwrap(claimed(try claim("a")))
        submit("a")
        guard case .busy = try claim("a") else { return XCTFail("a live job's id must not be claimed again") }
        XCTAssertNotNil(read(layout.manifest("a", in: layout.inbox)))
        job.lock.release()
    }

    func testRetryThenFailAfterMaxAttemptsKeepsHistory() throws {
        submit("a")
        var job = try XCTUnwrap(claimed(try claim("a")))
        let err = SpoolError(.ioError, "disk hiccup", step: "x")
        _ = try Finisher(layout: layout).retry(id: "a", state: job.state, error: err, delay: 0)
        job.lock.release()
        XCTAssertNotNil(read(layout.manifest("a", in: layout.retry)))
        job = try XCTUnwrap(claimed(try claim("a", source: .retry)))
        XCTAssertEqual(job.state.attempts, 2)
        XCTAssertEqual(job.state.history.first?.code, "IO_ERROR")
        // Later attempts are counted on disk before they run.
        XCTAssertEqual(RecordCoding.decode(JobState.self, read(layout.stateFile("a")) ?? [])?.attempts, 2)
        let rec = try Finisher(layout: layout).fail(id: "a", state: job.state, manifest: nil, error: err)
        job.lock.release()
        XCTAssertEqual(rec.attempts, 2); XCTAssertEqual(rec.history.count, 2); XCTAssertTrue(rec.retryable)
        // Replay: fresh attempt count, old history kept.
        try Producer(layout: layout).replay("a")
        job = try XCTUnwrap(claimed(try claim("a")))
        XCTAssertEqual(job.state.attempts, 1)
        XCTAssertEqual(job.state.history.count, 3)
        XCTAssertNil(read(layout.errorRecord("a")), "the old error record is folded into the state")
        XCTAssertEqual(RecordCoding.decode(JobState.self, read(layout.stateFile("a")) ?? [])?.history.count, 3, "a replay's history is on disk")
        job.lock.release()
    }

    func testAStrayStateFileDoesNotSpeakForAFreshRun() throws {
        write(#"{"id":"b","attempts":7,"history":[]}"#, to: layout.stateFile("b"))
        submit("b")
        let job = try XCTUnwrap(claimed(try claim("b")))
        XCTAssertEqual(job.state.attempts, 1)
        XCTAssertNil(read(layout.stateFile("b")), "removed at the claim")
        job.lock.release()
        var r = Recovery.Report()
        Recovery(config: config, logger: Logger(label: "t")).recoverStaleJobs(&r)
        XCTAssertEqual(RecordCoding.decode(JobState.self, read(layout.stateFile("b")) ?? [])?.attempts, 1)
    }

    func testRecoveryRequeuesStaleJobAndCountsTheAttempt() throws {
        submit("a")
        let job = try XCTUnwrap(claimed(try claim("a")))
        job.lock.release() // as if the owner died: manifest in processing/, lock free
        var r = Recovery.Report()
        Recovery(config: config, logger: Logger(label: "t")).recoverStaleJobs(&r)
        XCTAssertEqual(r.recovered, 1)
        XCTAssertNotNil(read(layout.manifest("a", in: layout.retry)))
        let s = RecordCoding.decode(JobState.self, read(layout.stateFile("a"))!)!
        XCTAssertEqual(s.attempts, 1)
        XCTAssertEqual(s.history.last?.code, "INTERRUPTED")
    }

    /// A partial output of the dead run is removed by its owner attribute,
    /// though the pid in its name is alive: on a shared spool it is another
    /// host's pid (a host fenced off, its writer still running). Another
    /// job's live temporary of the same path stays.
    func testRecoveryRemovesThePartialOutputItsJobOwnsWhateverThePid() throws {
        submit("a", #"{"version":1,"type":"transcode","input":"a.mp4","output":{"path":"out/a.mp4"}}"#)
        let job = try XCTUnwrap(claimed(try claim("a")))
        let out = config.effectiveMediaRoot.appending("out")
        try FileManager.default.createDirectory(atPath: out.string, withIntermediateDirectories: true)
        func temporary(_ name: String, owner: String?) throws {
            let fd = try FileDescriptor.open(out.appending(name), .writeOnly, options: [.create], permissions: .ownerReadWrite)
            defer { try? fd.close() }
            if let owner, !Sys.setXattr(fd, OutputTarget.ownerAttribute, owner) { throw XCTSkip("no user xattrs on \(out)") }
        }
        try temporary(".a.mp4.tmp-\(getpid())-1", owner: "a")
        try temporary(".a.mp4.tmp-\(getpid())-2", owner: "b")
        try temporary(".a.mp4.tmp-999999-3", owner: nil)
        // Another job's, its pid not alive here (another host's): it stays.
        try temporary(".a.mp4.tmp-999998-6", owner: "b")
        // The progress file's temporary of the dead run, a live pid in its name.
        write("{}", to: layout.processing.appending(".a.progress.tmp-\(getpid())-4"))
        write("{}", to: layout.processing.appending(".ab.progress.tmp-\(getpid())-5"))
        job.lock.release()
        var r = Recovery.Report()
        Recovery(config: config, logger: Logger(label: "t")).recoverStaleJobs(&r)
        XCTAssertEqual(r.recovered, 1)
        XCTAssertEqual(r.tempFilesRemoved, 3)
        XCTAssertEqual(Set(try Sys.entries(in: out)), [".a.mp4.tmp-999998-6", ".a.mp4.tmp-\(getpid())-2"], "another job's writer keeps its file, whatever its pid")
        XCTAssertEqual(try Sys.entries(in: layout.processing).filter { $0.hasPrefix(".") }, [".ab.progress.tmp-\(getpid())-5"], "another job's progress stays")
    }

    func testRecoveryNeverTouchesALiveJob() throws {
        submit("a")
        let job = try XCTUnwrap(claimed(try claim("a")))
        var r = Recovery.Report()
        Recovery(config: config, logger: Logger(label: "t")).recoverStaleJobs(&r)
        XCTAssertEqual(r.recovered, 0)
        XCTAssertNotNil(read(layout.manifest("a", in: layout.processing)))
        job.lock.release()
    }

    func testRecoveryFinishesAJobWhoseResultWasComplete() throws {
        submit("a")
        let job = try XCTUnwrap(claimed(try claim("a")))
        // The run's record, then a crash before the publishing rename.
        _ = try Finisher(layout: layout).complete(job, manifest: try Manifest.parse(job.manifestBytes, fileID: "a"), outcome: JobOutcome())
        try Sys.rename(layout.manifest("a", in: layout.done), layout.manifest("a", in: layout.processing))
        job.lock.release()
        var r = Recovery.Report()
        Recovery(config: config, logger: Logger(label: "t")).recoverStaleJobs(&r)
        XCTAssertEqual(r.finished, 1)
        XCTAssertNotNil(read(layout.manifest("a", in: layout.done)))
        XCTAssertNil(read(layout.manifest("a", in: layout.processing)))
    }

    func testCrashLoopEndsInFailedAfterMaxAttempts() throws {
        submit("a", #"{"version":1,"type":"probe","input":"a.mp4","maxAttempts":2}"#)
        var source = Source.inbox
        for attempt in 1...2 {
            let job = try XCTUnwrap(claimed(try claim("a", source: source)))
            XCTAssertEqual(job.state.attempts, attempt)
            job.lock.release() // the daemon "dies" during the job
            var r = Recovery.Report()
            Recovery(config: config, logger: Logger(label: "t")).recoverStaleJobs(&r)
            source = .retry
        }
        XCTAssertNotNil(read(layout.manifest("a", in: layout.failed)))
        let rec = try XCTUnwrap(RecordCoding.decode(ErrorRecord.self, read(layout.errorRecord("a"))!))
        XCTAssertEqual(rec.code, "INTERRUPTED"); XCTAssertEqual(rec.attempts, 2); XCTAssertEqual(rec.history.count, 2)
    }

    func testSweepRemovesDeadTemporariesAndOldProducerFiles() throws {
        write("half", to: layout.done.appending(".x.result.json.tmp-999999-1"))
        write("mine", to: layout.done.appending(".y.result.json.tmp-\(getpid())-1"))
        write("old", to: layout.tmp.appending("old"))
        write("new", to: layout.tmp.appending("new"))
        try Sys.setModificationTime(layout.tmp.appending("old"), seconds: Date().timeIntervalSince1970 - 25 * 3600)
        let r = Recovery(config: config, logger: Logger(label: "t")).run()
        XCTAssertEqual(r.tempFilesRemoved, 1)
        XCTAssertEqual(r.producerFilesRemoved, 1)
        XCTAssertNil(read(layout.done.appending(".x.result.json.tmp-999999-1")))
        XCTAssertNotNil(read(layout.done.appending(".y.result.json.tmp-\(getpid())-1")), "a live writer's file stays")
        XCTAssertNotNil(read(layout.tmp.appending("new")))
    }

    /// A job's side files: written before the record, which lists them; a
    /// stray one (its job nowhere) is swept, others' files are left; retention
    /// removes the listed ones with the job.
    func testSideFilesAreListedSweptAsStraysAndPurgedWithTheJob() throws {
        submit("a")
        let job = try XCTUnwrap(claimed(try claim("a")))
        let outcome = JobOutcome(sideFiles: [SideFile(name: "poster.jpg", bytes: [1, 2, 3])])
        _ = try Finisher(layout: layout).complete(job, manifest: try Manifest.parse(job.manifestBytes, fileID: "a"), outcome: outcome)
        job.lock.release()
        XCTAssertEqual(read(layout.sideFile("a", "poster.jpg")), [1, 2, 3])
        XCTAssertEqual(layout.sideFile("a", "poster.jpg").lastComponent?.string, "a+poster.jpg")
        XCTAssertEqual(RecordCoding.decode(ResultRecord.self, read(layout.result("a"))!)?.sideFiles, ["poster.jpg"])
        // Strays: a side file of a job in no queue goes; one of a job waiting
        // (inbox/, retry/, hold/) or running stays; files that are not side
        // files stay, and so does a done job whose id looks like one.
        write("x", to: layout.sideFile("gone", "poster.jpg"))
        write("x", to: layout.sideFile("b.c-d", "strip.png"))
        for (id, dir) in [("w", layout.inbox), ("r", layout.retry), ("h", layout.hold), ("p", layout.processing)] {
            write(#"{"version":1,"type":"probe","input":"a"}"#, to: layout.manifest(id, in: dir))
            write("x", to: layout.sideFile(id, "poster.jpg"))
        }
        submit("abbey-road.side-b")
        let other = try XCTUnwrap(claimed(try claim("abbey-road.side-b")))
        _ = try Finisher(layout: layout).complete(other, manifest: try Manifest.parse(other.manifestBytes, fileID: nil), outcome: JobOutcome())
        other.lock.release()
        let foreign = ["notes.txt", "d+UPPER.jpg", "e+", ".f+poster.jpg", "+poster.jpg", "g+../x"]
        for name in foreign where !name.contains("/") { write("x", to: layout.done.appending(name)) }
        let swept = Recovery(config: config, logger: Logger(label: "t")).run()
        XCTAssertEqual(swept.strayFilesRemoved, 2)
        XCTAssertNil(read(layout.sideFile("gone", "poster.jpg")))
        XCTAssertNil(read(layout.sideFile("b.c-d", "strip.png")))
        XCTAssertNotNil(read(layout.sideFile("a", "poster.jpg")), "a done job keeps its side file")
        for id in ["w", "r", "h", "p"] { XCTAssertNotNil(read(layout.sideFile(id, "poster.jpg")), "\(id): its job is in a queue") }
        XCTAssertNotNil(read(layout.manifest("abbey-road.side-b", in: layout.done)))
        XCTAssertNotNil(read(layout.result("abbey-road.side-b")))
        for name in foreign where !name.contains("/") { XCTAssertNotNil(read(layout.done.appending(name)), name) }
        // Retention purges the job with its side files, listed or not (one a
        // crashed attempt left).
        write("y", to: layout.sideFile("a", "strip.png"))
        var old = config!
        old.retainDoneDays = 1
        let past = Date().timeIntervalSince1970 - 3 * 86400
        for p in [layout.result("a"), layout.manifest("a", in: layout.done)] { try Sys.setModificationTime(p, seconds: past) }
        let purged = Recovery(config: old, logger: Logger(label: "t")).run(retention: true)
        XCTAssertEqual(purged.purged, 1)
        XCTAssertNil(read(layout.sideFile("a", "poster.jpg")))
        XCTAssertNil(read(layout.sideFile("a", "strip.png")))
        XCTAssertNil(read(layout.result("a")))
    }
}
