import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class BurstTests: XCTestCase {
    func testBurstOf10000ManifestsStaysBounded() throws {
        let h = SpoolHarness(self)
        let d = h.start(workers: 2)
        let n = Int(10_000 * testLoadScale)
        let window = n / 5
        let t0 = Date()
        for i in 0..<n {
            let tmp = h.layout.tmp.appending(".b\(i)").string
            FileManager.default.createFile(atPath: tmp, contents: Data(#"{"version":1,"type":"probe","input":"sound/a1.wav"}"#.utf8))
            rename(tmp, h.layout.inbox.appending("b\(i).json").string)
        }
        var maxRSS = 0, maxFDs = 0, windows: [Double] = []
        var lastCount = 0, lastTime = Date()   // reset after the submissions below
        func fds() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(d.processIdentifier)/fd").count) ?? 0 }
        func rss() -> Int {
            let s = (try? String(contentsOfFile: "/proc/\(d.processIdentifier)/status", encoding: .utf8)) ?? ""
            return Int(s.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        // Counting done/ costs the test CPU that the daemon needs (2 cores):
        // a bare readdir count, once a second.
        func doneCount() -> Int {
            var c = 0
            try? Sys.forEachEntry(in: h.layout.done) { if $0.hasSuffix(".result.json") { c += 1 } }
            return c
        }
        lastCount = doneCount(); lastTime = Date()
        eventually(600, "all \(n) done") {
            maxRSS = max(maxRSS, rss()); maxFDs = max(maxFDs, fds())
            let c = doneCount()
            if c - lastCount >= window {
                windows.append(Double(c - lastCount) / Date().timeIntervalSince(lastTime))
                lastCount = c; lastTime = Date()
            }
            usleep(1_000_000)
            return c == n
        }
        let total = Date().timeIntervalSince(t0)
        print("burst: \(n) jobs in \(Int(total)) s; jobs/s per \(window)-job window \(windows.map { Int($0) }); max RSS \(maxRSS / 1024) MiB, max open fds \(maxFDs)")
        XCTAssertEqual(h.ids(in: h.layout.done).count, n, "nothing lost")
        XCTAssertTrue(h.ids(in: h.layout.failed).isEmpty)
        XCTAssertLessThan(Double(maxRSS), 200 * 1024 * testMemoryScale, "memory bounded")
        XCTAssertLessThan(maxFDs, 64, "descriptors bounded (no leak per job)")
        if let first = windows.first, let last = windows.last {
            XCTAssertGreaterThan(last, first * 0.5, "throughput steady, not degrading as done/ grows")
        }
        h.stopAll()
    }
}
