import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 17: `pause`, `resume` (also per tenant and per type) and `drain`,
/// end to end with the real daemon.
final class PauseTests: XCTestCase {
    func testPauseHoldsWaitingJobsAcrossARestartAndResumeRunsThem() throws {
        let h = SpoolHarness(self)
        var d = h.start(workers: 2)
        eventually(30, "daemon up") { h.cli(["status"]).code == 0 }
        XCTAssertEqual(h.cli(["pause"]).out, "paused\n")
        eventually(10, "the daemon saw the pause") { h.log(0).contains("paused: no new job of those starts") }
        for i in 0..<4 { h.submit("p\(i)", probeManifest("clips/v1.mp4")) }
        // None starts while paused (the issue's 5 s), and status says why.
        sleep(5)
        XCTAssertEqual(h.finishedCount, 0)
        XCTAssertFalse(h.log(0).contains("started probe job"))
        let s = h.cli(["status", "--json"])
        let status = try JSONDecoder().decode(Inspector.Status.self, from: Data(s.out.utf8))
        XCTAssertEqual(status.paused?.all, true); XCTAssertEqual(status.counts["inbox"], 4)
        XCTAssertTrue(h.cli(["status"]).out.contains("paused (mediaspool resume)"))
        XCTAssertTrue(h.cli(["watch", "--once"]).out.contains("PAUSED"))

        // The pause survives a restart.
        kill(d.processIdentifier, SIGTERM); waitForExit(d)
        d = h.start(workers: 2)
        eventually(10, "the restarted daemon is paused") { h.log(1).contains("paused: no new job of those starts") && h.log(1).contains("first full scan done") }
        sleep(2)
        XCTAssertEqual(h.finishedCount, 0)

        XCTAssertEqual(h.cli(["resume"]).out, "running\n")
        eventually(30, "all four done after resume") { (0..<4).allSatisfy { h.result("p\($0)") != nil } }
        eventually(5, "the resume logged") { h.log(1).contains("resumed: jobs start again") }
        h.stopAll()
    }

    func testPausingOneTypeOrTenantLetsTheOthersRun() throws {
        let h = SpoolHarness(self)
        h.start(workers: 2)
        XCTAssertEqual(h.cli(["pause", "--type", "transcode", "--tenant", "slowco"]).code, 0)
        eventually(10, "the daemon saw the pause") { h.log(0).contains("paused for tenants slowco; types transcode") }
        h.submit("tc", #"{"version":1,"type":"transcode","input":"clips/v1.mp4","output":{"path":"out/tc.mp4","video":{"height":120,"preset":"ultrafast"}}}"#)
        h.submit("slow", probeManifest("clips/v1.mp4", extra: #","tenant":"slowco""#))
        h.submit("probe", probeManifest("clips/v1.mp4"))
        h.submit("other", probeManifest("clips/v1.mp4", extra: #","tenant":"acme""#))
        eventually(30, "the unpaused ones done") { h.result("probe") != nil && h.result("other") != nil }
        XCTAssertNil(h.result("tc")); XCTAssertNil(h.result("slow"))
        XCTAssertEqual(h.cli(["resume", "--type", "transcode"]).out, "paused for tenants slowco\n")
        eventually(30, "the transcode done") { h.result("tc") != nil }
        XCTAssertNil(h.result("slow"), "its tenant is still paused")
        XCTAssertEqual(h.cli(["resume", "--tenant", "slowco"]).out, "running\n")
        eventually(30, "slowco's job done") { h.result("slow") != nil }
        h.stopAll()
    }

    func testDrainReturnsOnlyAfterTheRunningJobFinished() throws {
        let h = SpoolHarness(self)
        h.start(workers: 1, env: ["MEDIASPOOL_FAULTS": "delay:long:3000"])
        h.submit("long1", probeManifest("clips/v1.mp4"))
        eventually(20, "long1 running") { h.ids(in: h.layout.processing).contains("long1") }
        // Queued behind it (one worker): submitted now, so it cannot have run first.
        h.submit("after", probeManifest("clips/v1.mp4"))
        let t0 = Date()
        let r = h.cli(["drain", "--timeout", "60"])
        XCTAssertEqual(r.code, 0, r.out)
        XCTAssertNotNil(h.result("long1"), "drain returned only after the running job ended")
        XCTAssertGreaterThan(Date().timeIntervalSince(t0), 1)
        XCTAssertTrue(h.ids(in: h.layout.processing).isEmpty)
        XCTAssertNil(h.result("after"), "paused: the waiting job did not start")
        // A drain that cannot finish in time says so with exit 2.
        XCTAssertEqual(h.cli(["resume"]).code, 0)
        h.submit("long2", probeManifest("clips/v1.mp4"))
        eventually(20, "long2 running") { h.ids(in: h.layout.processing).contains("long2") }
        XCTAssertEqual(h.cli(["drain", "--timeout", "0.5"]).code, 2)
        h.stopAll()
    }
}
