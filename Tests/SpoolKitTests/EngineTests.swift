import Foundation
import Logging
import SpoolKit
import SystemPackage
import XCTest

/// The engine in-process with fake runners (no FFmpeg): timeouts, the
/// shutdown requeue, attempt accounting and backoff, read from the records.
final class EngineTests: XCTestCase {
    struct FakeRunner: JobRunner {
        let body: @Sendable (JobContext) throws(SpoolError) -> JobOutcome
        func run(_ job: JobContext) throws(SpoolError) -> JobOutcome { try body(job) }
    }

    var config: Config!
    var layout: SpoolLayout { config.layout }

    override func setUp() {
        config = Config()
        config.spool = makeTempDir(self, "engine")
        config.workers = 1
        config.backoffInitialSeconds = 0.3
        config.rescanSeconds = 3600
    }

    func engine(_ body: @escaping @Sendable (JobContext) throws(SpoolError) -> JobOutcome) throws -> Engine {
        let e = Engine(config: config, runners: [.probe: FakeRunner(body: body)], logger: Logger(label: "engine-test"))
        try e.start()
        addTeardownBlock { e.shutdown(grace: 0) }
        return e
    }

    func submit(_ id: String, extra: String = "") {
        try! Producer(layout: layout).submit(Array(#"{"version":1,"type":"probe","input":"a.mp4"\#(extra)}"#.utf8), id: id)
    }

    /// Polls a condition (the spool's files are the events here), ticking
    /// the engine as the supervisor does.
    @discardableResult
    func waitFor(_ engine: Engine, _ what: String, timeout: Double = 30, _ cond: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if cond() { return true }
            _ = engine.tick()
            usleep(10_000)
        }
        XCTFail("timed out waiting for \(what)")
        return false
    }

    func errorRecord(_ id: String) -> ErrorRecord? { read(layout.errorRecord(id)).flatMap { RecordCoding.decode(ErrorRecord.self, $0) } }
    func result(_ id: String) -> ResultRecord? { read(layout.result(id)).flatMap { RecordCoding.decode(ResultRecord.self, $0) } }

    func testATimedOutJobIsCancelledAndFailsWithTimeout() throws {
        let e = try engine { job throws(SpoolError) in
            while !job.shouldAbort { usleep(5_000) }
            try job.checkCancelled(step: "run")
            return JobOutcome()
        }
        submit("slow", extra: #","timeoutSeconds":1,"maxAttempts":1"#)
        let t0 = Date()
        waitFor(e, "slow failed") { errorRecord("slow") != nil }
        XCTAssertEqual(errorRecord("slow")?.code, "TIMEOUT")
        XCTAssertEqual(errorRecord("slow")?.attempts, 1)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(t0), 1, "not before its timeout")
    }

    func testShutdownRequeuesARunningJobWithoutUsingAnAttempt() throws {
        let started = ManagedAtomicFlag()
        let e = try engine { job throws(SpoolError) in
            started.set()
            while !job.shouldAbort { usleep(5_000) }
            try job.checkCancelled(step: "run")
            return JobOutcome()
        }
        submit("long")
        waitFor(e, "long running") { started.isSet }
        e.shutdown(grace: 0.1)
        XCTAssertNotNil(read(layout.manifest("long", in: layout.retry)), "requeued")
        let state = try XCTUnwrap(read(layout.stateFile("long")).flatMap { RecordCoding.decode(JobState.self, $0) })
        XCTAssertEqual(state.attempts, 0, "a graceful stop does not use up an attempt")
        XCTAssertEqual(state.history.last?.code, "INTERRUPTED")
    }

    func testRetryableFailuresBackOffAndEndAfterMaxAttempts() throws {
        let e = try engine { _ throws(SpoolError) in throw SpoolError(.ioError, "disk hiccup", step: "run") }
        submit("flaky")
        waitFor(e, "flaky failed") { errorRecord("flaky") != nil }
        let rec = try XCTUnwrap(errorRecord("flaky"))
        XCTAssertEqual(rec.code, "IO_ERROR"); XCTAssertEqual(rec.attempts, 3); XCTAssertEqual(rec.history.count, 3)
        // Each retry waited at least its backoff (0.3 s, then 0.6 s).
        let starts = rec.history.compactMap { RFC3339.date($0.startedAt) }
        XCTAssertEqual(starts.count, 3)
        XCTAssertGreaterThanOrEqual(starts[1].timeIntervalSince(starts[0]), 0.3 - 0.01)
        XCTAssertGreaterThanOrEqual(starts[2].timeIntervalSince(starts[1]), 0.6 - 0.01)
    }

    func testAPermanentFailureEndsAtOnceAndASuccessIsDone() throws {
        let e = try engine { job throws(SpoolError) in
            if job.id == "bad" { throw SpoolError(.inputInvalid, "garbage", step: "open-input") }
            return JobOutcome()
        }
        submit("bad"); submit("good")
        // The record comes first, then the manifest's rename: wait for both.
        waitFor(e, "both ended") {
            errorRecord("bad") != nil && result("good") != nil
                && Sys.exists(layout.manifest("bad", in: layout.failed)) && Sys.exists(layout.manifest("good", in: layout.done))
        }
        XCTAssertEqual(errorRecord("bad")?.attempts, 1)
        XCTAssertEqual(errorRecord("bad")?.retryable, false)
        XCTAssertEqual(result("good")?.attempts, 1)
        XCTAssertTrue(try Sys.entries(in: layout.processing).isEmpty)
    }

    /// SIGHUP changes the workers, not the roots: the other daemons on the
    /// spool checked this one's roots at its start (issue 13: two daemons
    /// must never disagree on where a path leads).
    func testAReloadKeepsTheRootsAndChangesTheWorkers() throws {
        let e = try engine { _ throws(SpoolError) in JobOutcome() }
        var new = config!
        new.workers = 3
        new.mediaRoot = FilePath("/elsewhere")
        new.allowRoots = [FilePath("/other")]
        e.reload(new)
        XCTAssertEqual(e.config.workers, 3)
        XCTAssertEqual(e.config.mediaRoot, config.mediaRoot)
        XCTAssertEqual(e.config.allowRoots, config.allowRoots)
        XCTAssertEqual(DaemonLock.Settings(e.config), DaemonLock.Settings(config))
    }
}
