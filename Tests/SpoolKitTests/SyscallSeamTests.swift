import Foundation
import Logging
@testable import SpoolKit
import SystemPackage
import XCTest

/// The disk's failures, through the syscall seam (Sys+Seam.swift): ENOSPC
/// and EIO at the writes, syncs and renames of the protocol, without root
/// or a small tmpfs. Each: the right code, nothing half-written, nothing lost.
final class SyscallSeamTests: XCTestCase {
    var config: Config!
    var layout: SpoolLayout { config.layout }

    override func setUp() {
        config = Config()
        config.spool = makeTempDir(self, "seam")
        config.workers = 1
        config.rescanSeconds = 3600
        try! layout.create()
        addTeardownBlock { Sys.Seam.reset() }
    }

    func visible(_ dir: FilePath) -> [String] { ((try? Sys.entries(in: dir)) ?? []).sorted() }

    func testARecordWriteOnAFullDiskIsNoSpaceAndLeavesNoTemporaryFile() throws {
        Sys.Seam.fail(.fsync, with: .noSpace, times: 1)
        XCTAssertThrowsError(try Durable.write(Array("{}".utf8), to: layout.result("x"))) {
            XCTAssertEqual(($0 as? SpoolError)?.code, .noSpace)
        }
        XCTAssertEqual(visible(layout.done), [], "neither the record nor its temporary file")
        try Durable.write(Array("{}".utf8), to: layout.result("x"))  // the rule was for one call
        XCTAssertEqual(visible(layout.done), ["x.result.json"])
    }

    func testASubmitThatCannotWriteLeavesNothingInTheInboxOrTmp() throws {
        Sys.Seam.fail(.write, with: .ioError)
        XCTAssertThrowsError(try Producer(layout: layout).submit(Array(#"{"version":1,"type":"probe","input":"a.mp4"}"#.utf8), id: "s")) {
            XCTAssertEqual(($0 as? SpoolError)?.code, .ioError)
        }
        XCTAssertEqual(visible(layout.inbox), [])
        XCTAssertEqual(visible(layout.tmp), [])
    }

    func testAClaimWhoseRenameFailsLeavesTheJobWaiting() throws {
        try Producer(layout: layout).submit(Array(#"{"version":1,"type":"probe","input":"a.mp4"}"#.utf8), id: "c")
        Sys.Seam.fail(.rename, with: .ioError, pathContains: "processing/c.json", times: 1)
        let entry = QueueEntry(id: "c", source: .inbox, priority: 0, tenant: "", arrival: 0, notBefore: 0)
        XCTAssertThrowsError(try Claimer(layout: layout).claim(entry)) { XCTAssertEqual(($0 as? SpoolError)?.code, .ioError) }
        XCTAssertEqual(visible(layout.inbox), ["c.json"], "still waiting")
        XCTAssertEqual(visible(layout.processing), [])
        guard case .claimed(let job) = try Claimer(layout: layout).claim(entry) else { return XCTFail("claimed the second time") }
        job.lock.release()
    }

    /// A shared file system may answer EEXIST to O_CREAT when another host
    /// creates the same lock file at once (issue 15): the open is tried
    /// again and the claim goes on.
    func testALockFileOpenThatMeetsEEXISTIsTriedAgain() throws {
        try Producer(layout: layout).submit(Array(#"{"version":1,"type":"probe","input":"a.mp4"}"#.utf8), id: "e")
        Sys.Seam.fail(.open, with: .fileExists, pathContains: "locks/e.lock", times: 2)
        let entry = QueueEntry(id: "e", source: .inbox, priority: 0, tenant: "", arrival: 0, notBefore: 0)
        guard case .claimed(let job) = try Claimer(layout: layout).claim(entry) else { return XCTFail("claimed after two EEXIST") }
        XCTAssertEqual(visible(layout.processing), ["e.json"])
        job.lock.release()
    }

    /// A claim whose rename answers success without moving the file (a
    /// shared file system losing a race, as GlusterFS does: issue 15) is not
    /// trusted: no job to run, an IO_ERROR saying why; the next claim works.
    func testAClaimWhoseRenameDidNotMoveTheFileIsNotTrusted() throws {
        try Producer(layout: layout).submit(Array(#"{"version":1,"type":"probe","input":"a.mp4"}"#.utf8), id: "g")
        Sys.Seam.fail(.rename, with: Errno(rawValue: 0), pathContains: "processing/g.json", times: 1)
        let entry = QueueEntry(id: "g", source: .inbox, priority: 0, tenant: "", arrival: 0, notBefore: 0)
        XCTAssertThrowsError(try Claimer(layout: layout).claim(entry)) { e in
            XCTAssertEqual((e as? SpoolError)?.code, .ioError)
            XCTAssertTrue("\(e)".contains("does not keep rename's promise"), "\(e)")
        }
        XCTAssertEqual(visible(layout.inbox), ["g.json"])
        let free = try JobLock.tryAcquire("g", layout: layout)
        XCTAssertNotNil(free, "the lock is free")
        free?.release()
        guard case .claimed(let job) = try Claimer(layout: layout).claim(entry) else { return XCTFail("claimed the second time") }
        XCTAssertEqual(visible(layout.processing), ["g.json"])
        job.lock.release()
    }

    /// The engine: a job whose result record meets a full disk stays in
    /// processing/ (nothing published half), recovery runs it again, and it
    /// is done on its second attempt.
    func testAJobWhoseResultMeetsAFullDiskRunsAgainAndIsDone() throws {
        let e = Engine(config: config, runners: [.probe: Runner()], logger: Logger(label: "seam"))
        try e.start()
        defer { e.shutdown(grace: 0) }
        Sys.Seam.fail(.rename, with: .noSpace, pathContains: "done/r.result.json", times: 1)
        try Producer(layout: layout).submit(Array(#"{"version":1,"type":"probe","input":"a.mp4"}"#.utf8), id: "r")
        XCTAssertTrue(wait { self.visible(self.layout.processing) == ["r.json"] && !Sys.exists(self.layout.lock("r")) }, "left in processing/, unlocked")
        XCTAssertFalse(Sys.exists(layout.result("r")))
        e.periodicRecovery()
        XCTAssertTrue(wait { Sys.exists(self.layout.manifest("r", in: self.layout.done)) }, "done after the recovery")
        let record = try XCTUnwrap(read(layout.result("r")).flatMap { RecordCoding.decode(ResultRecord.self, $0) })
        XCTAssertEqual(record.attempts, 2)
        XCTAssertEqual(record.history.map(\.code), ["INTERRUPTED"])
    }

    /// Two jobs with one output path: the second may not replace the first's
    /// output while the first is still running (published, reading it back,
    /// writing its record), not only once it is in done/ (review finding).
    func testARunningJobsPublishedOutputIsNotReplacedByAnother() throws {
        try Producer(layout: layout).submit(Array(#"{"version":1,"type":"probe","input":"a.mp4"}"#.utf8), id: "A")
        let entry = QueueEntry(id: "A", source: .inbox, priority: 0, tenant: "", arrival: 0, notBefore: 0)
        guard case .claimed(let a) = try Claimer(layout: layout).claim(entry) else { return XCTFail("claimed") }
        defer { a.lock.release() }
        func context(_ id: String) throws -> JobContext {
            JobContext(id: id, manifest: try Manifest.parse(Array(#"{"version":1,"type":"probe","input":"a.mp4"}"#.utf8), fileID: id),
                       attempt: 1, policy: config.pathPolicy(tenant: nil), limits: config.limits, logger: Logger(label: "t"),
                       deadline: .now.advanced(by: .seconds(60)), layout: layout, startedAt: Date())
        }
        let first = try context("A").openOutput("out/same.bin", overwrite: false)
        let second = try context("B").openOutput("out/same.bin", overwrite: false)
        try first.write(Array("A".utf8), manifestPath: "out/same.bin")
        XCTAssertThrowsError(try second.write(Array("B".utf8), manifestPath: "out/same.bin")) {
            XCTAssertEqual(($0 as? SpoolError)?.code, .outputNotAllowed)
        }
        XCTAssertEqual(read(config.effectiveMediaRoot.appending("out/same.bin")), Array("A".utf8))
    }

    struct Runner: JobRunner {
        func run(_ job: JobContext) throws(SpoolError) -> JobOutcome { JobOutcome() }
    }

    func wait(_ timeout: Double = 30, _ cond: @escaping () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end { if cond() { return true }; usleep(10_000) }
        return cond()
    }
}
