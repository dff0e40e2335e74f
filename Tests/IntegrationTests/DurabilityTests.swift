import Foundation
import SpoolKit
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The durability order, read from the system calls (strace): every rename
/// that publishes a file comes after an fsync of that file, and is followed
/// by an fsync of the directory it lands in (and of the one it left).
final class DurabilityTests: XCTestCase {
    func testFsyncOrderOfClaimCompletionAndOutputs() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else { throw XCTSkip("no strace (apt-get install strace)") }
        let h = SpoolHarness(self)
        let trace = h.root.appending("sys.trace").string
        let d = h.start(workers: 1, wrapper: ["/usr/bin/strace", "-f", "-qq", "-y", "-e", "trace=rename,renameat,renameat2,fsync,fdatasync", "-o", trace])
        h.submit("p1", probeManifest("clips/v1.mp4"))
        h.submit("t1", #"{"version":1,"type":"transcode","input":"clips/v1.mp4","output":{"path":"out/t1.mp4","video":{"height":120,"preset":"ultrafast"}}}"#)
        h.submit("bad", probeManifest("clips/missing.mp4"))
        eventually(30, "jobs finished") { h.finishedCount == 3 }
        XCTAssertNotNil(h.result("t1")); XCTAssertEqual(h.error("bad")?.code, "INPUT_NOT_FOUND")
        // A graceful stop, so every call of the finished jobs is in the trace.
        for c in BootedSystemd.children(d.processIdentifier) { kill(c, SIGTERM) }
        waitForExit(d)

        // Per thread: ("fsync", path) and ("rename", from, to), in order.
        enum Call { case fsync(String), rename(String, String) }
        var calls: [String: [Call]] = [:]
        let text = try String(contentsOfFile: trace, encoding: .utf8)
        // rename("a", "b"), or renameat(5</dir>, "a", 5</dir>, "b") relative
        // to a directory descriptor (outputs: OutputTarget), which strace -y names.
        let renameRE = try NSRegularExpression(pattern: #"^(\d+)\s+rename(?:at2?)?\((?:(?:\d+<([^>]+)>|AT_FDCWD),\s*)?"([^"]+)",\s*(?:(?:\d+<([^>]+)>|AT_FDCWD),\s*)?"([^"]+)".*= 0$"#)
        let fsyncRE = try NSRegularExpression(pattern: #"^(\d+)\s+f(?:data)?sync\(\d+<([^>]+)>\)\s+= 0$"#)
        for line in text.split(separator: "\n").map(String.init) {
            let r = NSRange(line.startIndex..., in: line)
            if let m = renameRE.firstMatch(in: line, range: r) {
                let g = { (i: Int) in Range(m.range(at: i), in: line).map { String(line[$0]) } }
                let path = { (dir: String?, name: String) in name.hasPrefix("/") || dir == nil ? name : dir! + "/" + name }
                calls[g(1)!, default: []].append(.rename(path(g(2), g(3)!), path(g(4), g(5)!)))
            } else if let m = fsyncRE.firstMatch(in: line, range: r) {
                let g = { (i: Int) in String(line[Range(m.range(at: i), in: line)!]) }
                calls[g(1), default: []].append(.fsync(g(2)))
            }
        }
        let root = h.root.string
        var checked = 0, outputsChecked = 0, claimsChecked = 0
        for (_, list) in calls {
            for (i, call) in list.enumerated() {
                guard case let .rename(from, to) = call, to.hasPrefix(root),
                      !to.hasSuffix(".progress") else { continue }  // progress files are advisory, never fsynced
                let name = (from as NSString).lastPathComponent
                if name.contains(".tmp-") {
                    // The file itself was fsynced before the rename published it.
                    let before = list[..<i].reversed().prefix { if case .rename = $0 { false } else { true } }
                    XCTAssertTrue(before.contains { if case .fsync(let p) = $0 { p == from } else { false } }, "no fsync of \(from) before its rename")
                }
                // The directories are fsynced after, before the next rename.
                let after = list[(i + 1)...].prefix { if case .rename = $0 { false } else { true } }
                let synced = Set(after.compactMap { if case .fsync(let p) = $0 { p } else { nil } })
                let toDir = (to as NSString).deletingLastPathComponent, fromDir = (from as NSString).deletingLastPathComponent
                XCTAssertTrue(synced.contains(toDir), "rename to \(to) not followed by fsync of \(toDir)")
                if fromDir != toDir { XCTAssertTrue(synced.contains(fromDir), "rename from \(from) not followed by fsync of \(fromDir)") }
                checked += 1
                if to.hasSuffix("/out/t1.mp4") { outputsChecked += 1 }
                if to.hasSuffix("/processing/t1.json") { claimsChecked += 1 }
            }
        }
        print("durability: \(checked) publishing renames checked")
        XCTAssertGreaterThanOrEqual(checked, 10, "claim, record and publish renames of three jobs, and the output's")
        // First attempts write no state file (docs/spool-layout.md).
        let stateRenames = calls.values.joined().filter { if case .rename(_, let to) = $0 { to.hasPrefix(h.layout.state.string + "/") } else { false } }
        XCTAssertEqual(stateRenames.count, 0, "no state file for a first attempt")
        XCTAssertEqual(outputsChecked, 1, "the transcode's output publish was seen")
        XCTAssertEqual(claimsChecked, 1, "the claim rename was seen")
    }
}
