import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Fencing (Fencing.swift, docs/spool-layout.md "Fencing"): when the spool's
/// file system says this host lost its session (ESHUTDOWN, ENOTCONN, EIO
/// from flock), the daemon publishes nothing more, abandons its running
/// jobs, and exits 75; another daemon's recovery runs every job once. The
/// errors are injected with the debug build's `errno:` faults (Sys.Seam): a
/// real fenced CephFS client gives the same errno from the same calls.
final class FencingTests: XCTestCase {
    /// A publish refused with ESHUTDOWN, while another job runs: nothing of
    /// either is published, the daemon exits 75, and a second daemon ends
    /// both exactly once.
    func testAFencedPublishAbandonsEverythingAndExits75() throws {
        let h = SpoolHarness(self)
        // ESHUTDOWN (108) on every rename into done/: the first publish.
        let a = h.start(workers: 2, env: ["MEDIASPOOL_FAULTS": "errno:rename:/done/:108,delay:slow:30000"])
        h.submit("slow", probeManifest("clips/v1.mp4"))
        eventually(30, "slow running") { h.ids(in: h.layout.processing).contains("slow") }
        h.submit("quick", probeManifest("clips/v1.mp4"))
        waitForExit(a)
        XCTAssertEqual(exitCode(a), 75, "EX_TEMPFAIL after the fence")
        let log = h.log(0)
        XCTAssertTrue(log.contains("fenced this host off"), log)
        XCTAssertTrue(log.contains("remount"), "the message says what to do")
        XCTAssertTrue(log.contains("slow abandoned unpublished"), log)
        // Nothing published: no record, both manifests still in processing/.
        XCTAssertEqual(h.ids(in: h.layout.processing), ["quick", "slow"])
        XCTAssertTrue(h.names(h.layout.done).isEmpty, "\(h.names(h.layout.done))")
        XCTAssertTrue(h.names(h.layout.failed).isEmpty)
        XCTAssertFalse(h.allLogs.contains("retry at"), "nothing was retried after the fence")
        let terminal = runCLI(["events", "--spool", h.root.string, "--only", "done,failed,retrying,cancelled"])
        XCTAssertEqual(terminal, "", "no terminal event from the fenced daemon")

        // The host that owns the spool now: its recovery runs both, once.
        h.start(workers: 2)
        eventually(stall: 60, "both done", progress: { h.finishedCount }) { h.result("slow") != nil && h.result("quick") != nil }
        for id in ["slow", "quick"] {
            let r = try XCTUnwrap(h.result(id))
            XCTAssertEqual(r.attempts, 2, "\(id): the fenced attempt and the recovered one")
            XCTAssertEqual(r.history.first?.code, "INTERRUPTED", id)
        }
        XCTAssertEqual(h.error("slow")?.code, nil)
        h.stopAll()
        XCTAssertEqual(h.temporaryFiles, [])
    }

    /// EIO from flock at a claim: the daemon exits 75 at once instead of
    /// logging IO_ERROR on every claim forever; the job stays in inbox/.
    func testALockTheFileSystemRefusesEndsTheDaemon() throws {
        let h = SpoolHarness(self)
        let a = h.start(workers: 1, env: ["MEDIASPOOL_FAULTS": "errno:lock::5"])
        h.waitUntilChecked()
        h.submit("j", probeManifest("clips/v1.mp4"))
        waitForExit(a)
        XCTAssertEqual(exitCode(a), 75)
        XCTAssertEqual(h.ids(in: h.layout.inbox), ["j"], "never claimed")
        XCTAssertTrue(h.names(h.layout.failed).isEmpty)
        XCTAssertEqual(h.log(0).components(separatedBy: "cannot claim").count - 1, 0, "no claim retried after the fence")
        h.start(workers: 1)
        eventually(30, "j done by the next daemon") { h.result("j") != nil }
        XCTAssertEqual(h.result("j")?.attempts, 1)
        h.stopAll()
    }
}
