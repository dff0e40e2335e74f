import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 17: `mediaspool cancel` of a waiting and of a running job.
final class CancelTests: XCTestCase {
    func testCancelAWaitingJobThenReplayIt() throws {
        let h = SpoolHarness(self)
        h.start(workers: 1)
        XCTAssertEqual(h.cli(["pause"]).code, 0)
        eventually(10, "paused") { h.log(0).contains("paused: no new job of those starts") }
        h.submit("w1", probeManifest("clips/v1.mp4"))
        let r = h.cli(["cancel", "w1"])
        XCTAssertEqual(r.code, 0, r.out); XCTAssertEqual(r.out, "w1: cancelled (it was waiting)\n")
        XCTAssertEqual(h.error("w1")?.code, "CANCELLED"); XCTAssertEqual(h.error("w1")?.retryable, false)
        XCTAssertTrue(h.ids(in: h.layout.inbox).isEmpty)
        XCTAssertEqual(h.cli(["cancel", "w1"]).out, "w1: already ended; nothing to cancel\n")
        XCTAssertEqual(h.cli(["resume"]).code, 0)
        XCTAssertEqual(h.cli(["replay", "w1"]).code, 0)
        eventually(30, "the replay done") { h.result("w1") != nil }
        XCTAssertEqual(h.result("w1")?.history.last?.code, "CANCELLED", "the cancelled run is in the history")
        h.stopAll()
    }

    func testCancelARunningTranscodeStopsItAtOnceWithoutOutput() throws {
        let h = SpoolHarness(self)
        h.start(workers: 1)
        h.submit("slow", #"{"version":1,"type":"transcode","input":"clips/long.mp4","output":{"path":"out/slow.mp4","video":{"codec":"h264","preset":"veryslow"}}}"#)
        // Running FFmpeg for a while: its progress file is written after 0.5 s.
        eventually(30, "slow encoding") { Sys.exists(h.layout.progress("slow")) }
        let t0 = Date()
        let r = h.cli(["cancel", "slow", "--timeout", "30"])
        let took = Date().timeIntervalSince(t0)
        print("cancel of a running transcode took \(String(format: "%.2f", took)) s (CLI start-up included)")
        XCTAssertEqual(r.code, 0, r.out); XCTAssertEqual(r.out, "slow: cancelled (it was running)\n")
        // From the request to the record, on the daemon's side (the issue's
        // "within a second"), and a loose bound on the whole command for a loaded machine.
        let line = try XCTUnwrap(h.log(0).split(separator: "\n").first { $0.contains("cancel requested: stopping it") })
        let asked = try XCTUnwrap(RFC3339.date(String(line.prefix(24))))
        let failed = try XCTUnwrap(h.error("slow").flatMap { RFC3339.date($0.failedAt) })
        print("cancel: request seen -> CANCELLED record in \(Int(failed.timeIntervalSince(asked) * 1000)) ms")
        XCTAssertLessThan(failed.timeIntervalSince(asked), 1.5, "about a second, on a loaded machine too")
        XCTAssertLessThan(took, 10)
        XCTAssertEqual(h.error("slow")?.code, "CANCELLED")
        XCTAssertFalse(Sys.exists(h.media.appending("out/slow.mp4")), "no output")
        XCTAssertEqual(h.temporaryFiles, [], "no partial output")
        XCTAssertFalse(Sys.exists(CancelRequests.path(h.layout, "slow")), "the request withdrawn")
        XCTAssertTrue(h.log(0).contains("cancel requested: stopping it"))
        h.stopAll()
    }
}
