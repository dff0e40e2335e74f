import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A spool with 100,000 waiting manifests: the daemon starts and claims at
/// once, streaming the directory instead of reading it all first, and its
/// memory stays bounded.
final class ScaleTests: XCTestCase {
    func rssKiB(_ pid: Int32) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return -1 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    func test100kWaitingManifests() throws {
        let h = SpoolHarness(self)
        let n = Int(100_000 * testLoadScale)
        // Written straight into inbox/ (no fsync: this is about the daemon, not the disk).
        for i in 0..<n {
            let body = probeManifest(Fixtures.all[i % 3].name, extra: i % 1000 == 0 ? #","priority":5"# : "")
            let fd = open(h.layout.inbox.appending("w\(i).json").string, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            _ = body.withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
        let t0 = Date()
        // Slow jobs (100 ms each), so the queue stays full while we look.
        let d = h.start(workers: 2, env: ["MEDIASPOOL_FAULTS": "delay:w:100"])
        eventually(30, "first job claimed") { !h.ids(in: h.layout.processing).isEmpty || !h.ids(in: h.layout.done).isEmpty }
        let firstClaim = Date().timeIntervalSince(t0)
        // The scan takes as long as the machine makes it: wait while jobs keep
        // ending (the daemon claims while it scans).
        let doneCount = { h.names(h.layout.done).count }
        eventually(stall: 60, "all 100,000 queued", progress: doneCount) { h.log(0).contains("ready:") && doneCount() > 0 && scanned(h) }
        let rss = rssKiB(d.processIdentifier)
        let waiting = h.names(h.layout.inbox).count
        print("scale: first claim after \(String(format: "%.2f", firstClaim)) s with \(n) waiting; RSS \(rss / 1024) MiB with \(waiting) still waiting")
        XCTAssertLessThan(firstClaim, 10, "the daemon claims before it has read the whole inbox")
        XCTAssertGreaterThan(waiting, n - n / 50, "most are still waiting: the figure is for a full queue")
        XCTAssertLessThan(Double(rss), 150 * 1024 * testMemoryScale, "RSS with 100,000 queued stays bounded (a few hundred bytes per waiting job)")
        // The 100 priority-5 jobs jump the queue: a few seconds after the
        // scan all of them are done, while FIFO would still be at w1000.
        eventually(stall: 60, "the \(n / 1000) priority-5 jobs done", progress: doneCount) {
            (0..<(n / 1000)).allSatisfy { h.result("w\($0 * 1000)") != nil }
        }
        let done = h.ids(in: h.layout.done).count
        print("scale: \(done) done when all \(n / 1000) priority-5 jobs are")
        XCTAssertLessThan(done, n / 5, "priority first, not arrival order")
        h.stopAll(signal: SIGKILL)
    }

    /// The watcher logs when its first full scan has queued the whole inbox.
    func scanned(_ h: SpoolHarness) -> Bool { h.log(0).contains("first full scan done") }
}
