import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The spool and its media on a small tmpfs that fills up mid-output: the
/// job fails with NO_SPACE, waits in retry/, leaves no partial output, and is
/// done once space is freed; it is never published without its output.
final class DiskFullTests: XCTestCase {
    func testNoSpaceIsRetriedAndFinishesWhenSpaceIsFreed() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to mount a small tmpfs") }
        let root = "/var/tmp/mediaspool-full-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=8m", "tmpfs", root]
        try mount.run(); mount.waitUntilExit()
        guard mount.terminationStatus == 0 else { throw XCTSkip("mount -t tmpfs refused here") }
        addTeardownBlock {
            let u = Process(); u.executableURL = URL(fileURLWithPath: "/bin/umount"); u.arguments = ["-l", root]
            try? u.run(); u.waitUntilExit(); try? FileManager.default.removeItem(atPath: root)
        }
        let h = SpoolHarness(self, root: FilePath(root + "/spool"))
        // Leave about 250 kB free: enough for the spool's records, not for the output.
        let ballast = root + "/ballast"
        var st = statvfs()
        statvfs(root, &st)
        let free = Int(st.f_bavail) * Int(st.f_frsize)
        FileManager.default.createFile(atPath: ballast, contents: Data(count: max(0, free - 250_000)))
        h.start(workers: 1, env: ["MEDIASPOOL_BACKOFF_INITIAL_SECONDS": "1", "MEDIASPOOL_BACKOFF_MAX_SECONDS": "1"])
        // Megabytes of output: 2 s of lossless H.264.
        h.submit("big", #"{"version":1,"type":"transcode","input":"clips/v1.mp4","maxAttempts":10,"output":{"path":"out/big.mp4","video":{"crf":0,"preset":"ultrafast"}}}"#)
        eventually(30, "the first attempt failed with NO_SPACE") {
            let s = h.bytes(h.layout.stateFile("big")).flatMap { RecordCoding.decode(JobState.self, $0) }
            return s?.history.contains { $0.code == "NO_SPACE" } ?? false
        }
        XCTAssertNil(h.result("big"), "not published without its output")
        XCTAssertNil(h.error("big"), "retryable: not failed")
        let out = (try? FileManager.default.contentsOfDirectory(atPath: h.media.string + "/out")) ?? []
        XCTAssertFalse(out.contains("big.mp4"))
        XCTAssertEqual(out.filter { $0.contains(".tmp-") }, [], "no partial output left behind")
        // Free the space: the next retry succeeds.
        try FileManager.default.removeItem(atPath: ballast)
        eventually(30, "done once space is freed") { h.result("big") != nil }
        let r = try XCTUnwrap(h.result("big"))
        XCTAssertGreaterThanOrEqual(r.attempts, 2)
        XCTAssertTrue(r.history.contains { $0.code == "NO_SPACE" }, "the NO_SPACE attempt is in the history")
        let p = try XCTUnwrap(Probed(h.media.string + "/out/big.mp4"))
        XCTAssertEqual(p.duration, 2, accuracy: 0.1); XCTAssertEqual(p.video?.frames, 50)
        XCTAssertTrue(h.daemons[0].isRunning)
        h.stopAll()
        XCTAssertEqual(h.temporaryFiles, [])
    }
}
