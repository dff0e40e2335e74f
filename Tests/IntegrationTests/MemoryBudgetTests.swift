import Foundation
import SpoolKit
import SystemPackage
import XCTest

/// Issue 13 row 12: a job whose frames would exceed its share of memory
/// fails LIMIT_EXCEEDED before decoding, instead of starving the others (a
/// decompression bomb within limits.maxWidth/maxHeight is such a job).
final class MemoryBudgetTests: XCTestCase {
    func testAJobOverItsMemoryBudgetFailsLimitExceeded() throws {
        let h = SpoolHarness(self)
        let config = h.root.appending("config.json")
        // 12 MB a job: 320x240 transcodes (about 6 MB of frames) fit, 640x360 (18 MB) does not.
        FileManager.default.createFile(atPath: config.string, contents: Data(#"{"limits":{"maxJobMemoryBytes":12000000}}"#.utf8))
        h.start(workers: 2, args: ["--config", config.string])
        func transcode(_ input: String, _ out: String) -> String {
            #"{"version":1,"type":"transcode","input":"\#(input)","output":{"path":"\#(out)","video":{"preset":"ultrafast"}}}"#
        }
        h.submit("small", transcode("clips/v1.mp4", "out/small.mp4"))
        h.submit("big", transcode("clips/long.mp4", "out/big.mp4"))
        h.submit("bigcopy", #"{"version":1,"type":"transcode","input":"clips/long.mp4","output":{"path":"out/bigcopy.mp4","video":{"codec":"copy"},"audio":{"codec":"none"}}}"#)
        h.submit("bigstill", #"{"version":1,"type":"thumbnail","input":"clips/long.mp4","at":[1],"output":{"path":"out/bigstill.jpg"}}"#)
        eventually(60, "all ended") { ["small", "big", "bigcopy", "bigstill"].allSatisfy { h.result($0) != nil || h.error($0) != nil } }
        XCTAssertNotNil(h.result("small"), h.error("small")?.message ?? "")
        XCTAssertEqual(h.error("big")?.code, "LIMIT_EXCEEDED")
        XCTAssertTrue(h.error("big")?.message.contains("640x360") ?? false, h.error("big")?.message ?? "")
        XCTAssertNil(Probed(h.media.string + "/out/big.mp4"), "nothing written")
        XCTAssertNotNil(h.result("bigcopy"), "a stream copy decodes nothing: \(h.error("bigcopy")?.message ?? "")")
        XCTAssertNotNil(h.result("bigstill"), "a still holds fewer frames: \(h.error("bigstill")?.message ?? "")")
        h.stopAll()
    }

    func testTheDaemonsMemoryLimitIsReadFromItsCgroupOrTheMachine() {
        let limit = Sys.memoryLimit()
        XCTAssertGreaterThan(limit, 64 << 20)
        XCTAssertLessThanOrEqual(limit, Int(ProcessInfo.processInfo.physicalMemory))
    }
}
