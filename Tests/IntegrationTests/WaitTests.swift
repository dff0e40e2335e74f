import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 17: `mediaspool wait`, a producer's synchronous path.
final class WaitTests: XCTestCase {
    func testWaitExitCodesForDoneFailedAndTimeout() throws {
        let h = SpoolHarness(self)
        h.start(workers: 2, env: ["MEDIASPOOL_FAULTS": "delay:slow:4000"])
        h.submit("ok", probeManifest("clips/v1.mp4"))
        h.submit("bad", probeManifest("clips/missing.mp4"))
        var r = h.cli(["wait", "ok"])
        XCTAssertEqual(r.code, 0); XCTAssertEqual(r.out, "ok: done\n")
        r = h.cli(["wait", "ok", "bad"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.out.contains("bad: failed INPUT_NOT_FOUND"), r.out)
        r = h.cli(["wait", "--json", "ok"])
        XCTAssertEqual(try JSONDecoder().decode(ResultRecord.self, from: Data(r.out.utf8)).id, "ok")

        // A duplicate of a done job is removed from inbox/: wait wakes and says done.
        h.submit("ok", probeManifest("clips/v1.mp4"))
        r = h.cli(["wait", "ok", "--timeout", "20"])
        XCTAssertEqual(r.code, 0, r.out)

        // A timeout: exit 2, soon after it.
        h.submit("slow", probeManifest("clips/v1.mp4"))
        let t0 = Date()
        r = h.cli(["wait", "slow", "--timeout", "1"])
        XCTAssertEqual(r.code, 2)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 3)
        XCTAssertTrue(r.out.contains("slow: not finished"))
        h.stopAll()
    }

    /// It blocks on inotify: a few seconds of waiting cost (almost) no CPU.
    func testWaitDoesNotBusyLoop() throws {
        let h = SpoolHarness(self)
        h.start(workers: 1, env: ["MEDIASPOOL_FAULTS": "delay:long:10000"])
        h.submit("long1", probeManifest("clips/v1.mp4"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mediaspoolBinary)
        p.arguments = ["wait", "long1", "--spool", h.root.string]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        // utime + stime in ms, from /proc/PID/stat (fields 14 and 15).
        func cpuMs() throws -> Int {
            let stat = try String(contentsOfFile: "/proc/\(p.processIdentifier)/stat", encoding: .utf8)
            let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
            return (Int(fields[11])! + Int(fields[12])!) * 1000 / Int(sysconf(Int32(_SC_CLK_TCK)))
        }
        // Past start-up: once it holds its inotify descriptor.
        let pid = p.processIdentifier
        eventually(30, "wait is watching") {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).contains {
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == "anon_inode:inotify"
            }
        }
        let before = try cpuMs()
        usleep(5_000_000)
        let waiting = try cpuMs() - before
        print("wait: \(waiting) ms of CPU over 5 s of waiting (\(before) ms to start)")
        XCTAssertLessThan(waiting, 50, "no polling")
        XCTAssertTrue(p.isRunning)
        waitForExit(p)
        XCTAssertEqual(exitCode(p), 0)
        XCTAssertNotNil(h.result("long1"))
        h.stopAll()
    }
}
