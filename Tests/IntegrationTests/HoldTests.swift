import Foundation
import SpoolKit
import SystemPackage
import XCTest

/// Issue 17: `hold` and `release` of a waiting and of a retrying job.
final class HoldTests: XCTestCase {
    func testHeldJobsAreNeverClaimedAndReleaseReturnsThemWhereTheyWere() throws {
        let h = SpoolHarness(self)
        // Retries wait 60 s here: long enough to hold one meanwhile.
        h.start(workers: 1, env: ["MEDIASPOOL_BACKOFF_INITIAL_SECONDS": "60"])
        XCTAssertEqual(h.cli(["pause"]).code, 0)
        eventually(10, "paused") { h.log(0).contains("paused: no new job of those starts") }
        h.submit("w1", probeManifest("clips/v1.mp4"))
        XCTAssertEqual(h.cli(["hold", "w1"]).out, "w1: held (was in inbox/)\n")
        XCTAssertEqual(h.ids(in: h.layout.hold), ["w1"])
        XCTAssertEqual(h.cli(["status", "--json"]).out.contains(#""held" : 1"#), true)
        XCTAssertEqual(h.cli(["list", "--state", "held"]).out.contains("w1"), true)
        XCTAssertEqual(h.cli(["resume"]).code, 0)
        // Held: never claimed, even with the queue running and a rescan (1 s in tests) passing.
        h.submit("marker", probeManifest("clips/v1.mp4"))
        eventually(30, "a later job done") { h.result("marker") != nil }
        XCTAssertNil(h.result("w1"))
        XCTAssertEqual(h.cli(["release", "w1"]).out, "w1: released to inbox/\n")
        eventually(30, "w1 done after release") { h.result("w1") != nil }
        XCTAssertEqual(h.cli(["hold", "w1"]).code, 1, "a finished job cannot be held")

        // A retrying job (TIMEOUT is retried) is held with its attempts and
        // released back to retry/, not to inbox/.
        h.submit("r1", #"{"version":1,"type":"transcode","input":"clips/long.mp4","timeoutSeconds":1,"output":{"path":"out/r1.mp4","video":{"codec":"h264","preset":"veryslow"}}}"#)
        // In retry/ and its lock released (the daemon holds it past the rename, for the fsyncs and the event).
        eventually(30, "r1 waiting to retry") { h.ids(in: h.layout.retry).contains("r1") && !Sys.exists(h.layout.lock("r1")) }
        XCTAssertEqual(h.cli(["hold", "r1"]).out, "r1: held (was in retry/)\n")
        XCTAssertEqual(h.ids(in: h.layout.hold), ["r1"])
        let state = { h.bytes(h.layout.stateFile("r1")).flatMap { RecordCoding.decode(JobState.self, $0) } }
        XCTAssertEqual(state()?.history.last?.code, "TIMEOUT")
        _ = h.cli(["sweep"])   // the sweep's stray clean-up keeps a held job's state
        XCTAssertEqual(state()?.attempts, 1)
        XCTAssertEqual(h.cli(["release", "r1"]).out, "r1: released to retry/\n")
        XCTAssertEqual(h.ids(in: h.layout.retry), ["r1"])
        h.stopAll()
    }
}
