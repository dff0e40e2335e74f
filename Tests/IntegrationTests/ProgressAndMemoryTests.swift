import Foundation
import SpoolKit
import SystemPackage
import XCTest

final class ProgressAndMemoryTests: XCTestCase {
    func rssKiB(_ pid: Int32) -> Int {
        let s = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        return Int(s.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    func testStatusShowsProgressOfARunningTranscode() throws {
        let h = SpoolHarness(self)
        h.start(workers: 1)
        h.submit("slow", #"{"version":1,"type":"transcode","input":"clips/long.mp4","output":{"path":"out/slow.mp4","video":{"codec":"hevc","preset":"slow"}},"timeoutSeconds":120}"#)
        var seen: [Double] = []
        eventually(60, "progress reported twice, growing") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: mediaspoolBinary)
            p.arguments = ["status", "--json", "--spool", h.root.string]
            let pipe = Pipe()
            p.standardOutput = pipe
            try? p.run()
            let d = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            if let st = try? JSONDecoder().decode(Inspector.Status.self, from: d), let r = st.running.first(where: { $0.id == "slow" }),
               r.step == "transcode", let f = r.fraction, f > 0, f < 1 {
                XCTAssertEqual(r.type, "transcode"); XCTAssertEqual(r.attempt, 1)
                if seen.last.map({ f > $0 }) ?? true { seen.append(f) }
            }
            return seen.count >= 2
        }
        print("progress: status showed fractions \(seen)")
        h.stopAll(signal: SIGKILL)
    }

    func testMemoryDoesNotGrowAcrossJobs() throws {
        let h = SpoolHarness(self)
        let d = h.start(workers: 1)
        func batch(_ from: Int, _ to: Int) {
            for i in from..<to {
                h.submit("m\(i)", #"{"version":1,"type":"transcode","input":"clips/v1.mp4","output":{"path":"out/m\#(i).mp4","video":{"height":120,"preset":"ultrafast"}}}"#)
            }
            eventually(stall: 60, "batch done", progress: { h.finishedCount }) { (from..<to).allSatisfy { h.result("m\($0)") != nil } }
        }
        batch(0, 4)
        let after4 = rssKiB(d.processIdentifier)
        batch(4, 24)
        let after24 = rssKiB(d.processIdentifier)
        print("memory: RSS \(after4 / 1024) MiB after 4 transcodes, \(after24 / 1024) MiB after 24")
        XCTAssertLessThan(Double(after24 - after4), 16 * 1024 * testMemoryScale, "no leak per job: FFmpeg objects are freed with their owners")
        h.stopAll()
    }
}

func sha256File(_ path: String) -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    p.arguments = [path]
    let pipe = Pipe()
    p.standardOutput = pipe
    try? p.run()
    let d = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(String(decoding: d, as: UTF8.self).prefix(64))
}
