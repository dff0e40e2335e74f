import Foundation
import SpoolKit
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The durability order, read from the system calls (strace, with the time
/// each call began and how long it took): every rename that publishes a
/// file comes after an fsync of that file, and the directory it lands in
/// (and the one it left) is fsynced by an fsync that *began after the rename
/// returned* and ended before the renaming thread's next rename. The check
/// is by time, across threads, so it holds whichever thread made the fsync.
final class DurabilityTests: XCTestCase {
    func testFsyncOrderOfClaimCompletionAndOutputs() throws {
        let h = SpoolHarness(self)
        let trace = h.root.appending("sys.trace").string
        let d = h.start(workers: 1, wrapper: try straceWrapper(trace))
        h.submit("p1", probeManifest("clips/v1.mp4"))
        h.submit("t1", #"{"version":1,"type":"transcode","input":"clips/v1.mp4","output":{"path":"out/t1.mp4","video":{"height":120,"preset":"ultrafast"}}}"#)
        h.submit("bad", probeManifest("clips/missing.mp4"))
        eventually(30, "jobs finished") { h.finishedCount == 3 }
        XCTAssertNotNil(h.result("t1")); XCTAssertEqual(h.error("bad")?.code, "INPUT_NOT_FOUND")
        stopGracefully(d)

        let report = try SyscallTrace(path: trace).checkDurability(root: h.root.string)
        print("durability: \(report.checked) publishing renames checked")
        XCTAssertGreaterThanOrEqual(report.checked, 10, "claim, record and publish renames of three jobs, and the output's")
        // First attempts write no state file (docs/spool-layout.md).
        XCTAssertEqual(report.renamesInto(h.layout.state.string), 0, "no state file for a first attempt")
        XCTAssertEqual(report.renamesTo { $0.hasSuffix("/out/t1.mp4") }, 1, "the transcode's output publish was seen")
        XCTAssertEqual(report.renamesTo { $0.hasSuffix("/processing/t1.json") }, 1, "the claim rename was seen")
    }

    /// Four workers renaming into the same directories at once, 32 jobs:
    /// every rename is still covered by an fsync begun after it and ended
    /// before the worker's next rename.
    func testTheOrderHoldsWithFourWorkersAtOnce() throws {
        let h = SpoolHarness(self)
        let trace = h.root.appending("sys.trace").string
        let d = h.start(workers: 4, wrapper: try straceWrapper(trace))
        let ids = (0..<32).map { "g\($0)" }
        for id in ids { h.submit(id, probeManifest("clips/v1.mp4")) }
        eventually(120, "jobs finished") { h.finishedCount == ids.count }
        for id in ids { XCTAssertNotNil(h.result(id), "\(id) done") }
        stopGracefully(d)

        let t = try SyscallTrace(path: trace)
        let report = try t.checkDurability(root: h.root.string)
        let done = h.layout.done.string
        print("four workers: \(report.checked) renames checked; \(report.renamesInto(done)) into done/, \(t.fsyncs(of: done)) fsyncs of it by \(t.threadsSyncing(done)) threads")
        XCTAssertEqual(report.renamesInto(done), 2 * ids.count, "a result and a manifest per job")
        XCTAssertGreaterThan(t.threadsSyncing(done), 1, "more than one worker published")
    }

    private func straceWrapper(_ trace: String) throws -> [String] {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else { throw XCTSkip("no strace (apt-get install strace)") }
        return ["/usr/bin/strace", "-f", "-qq", "-y", "-ttt", "-T", "-e", "trace=rename,renameat,renameat2,fsync,fdatasync", "-o", trace]
    }

    /// A graceful stop, so every call of the finished jobs is in the trace.
    private func stopGracefully(_ d: Process) {
        for c in BootedSystemd.children(d.processIdentifier) { kill(c, SIGTERM) }
        waitForExit(d)
    }
}

/// The successful renames and fsyncs of an `strace -f -y -ttt -T` trace,
/// each with its thread, when it began and when it ended (a call another
/// thread's line interrupted is put together from its `unfinished` and
/// `resumed` halves).
struct SyscallTrace {
    enum Kind { case fsync(String), rename(String, String) }
    struct Call { let thread: String, begin: Double, end: Double, kind: Kind }
    let calls: [Call]

    init(path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // rename("a", "b"), or renameat(5</dir>, "a", 5</dir>, "b") relative
        // to a directory descriptor (outputs: OutputTarget), which -y names.
        let renameRE = try NSRegularExpression(pattern: #"^rename(?:at2?)?\((?:(?:\d+<([^>]+)>|AT_FDCWD),\s*)?"([^"]+)",\s*(?:(?:\d+<([^>]+)>|AT_FDCWD),\s*)?"([^"]+)".*= 0 <([\d.]+)>$"#)
        let fsyncRE = try NSRegularExpression(pattern: #"^f(?:data)?sync\(\d+<([^>]+)>\)\s+= 0 <([\d.]+)>$"#)
        let lineRE = try NSRegularExpression(pattern: #"^(\d+)\s+(\d+\.\d+)\s+(.*)$"#)
        var pending: [String: (begin: Double, head: String)] = [:]
        var calls: [Call] = []
        for raw in text.split(separator: "\n").map(String.init) {
            guard let m = lineRE.firstMatch(in: raw, range: NSRange(raw.startIndex..., in: raw)) else { continue }
            let g = { (i: Int) in String(raw[Range(m.range(at: i), in: raw)!]) }
            let thread = g(1), stamp = Double(g(2))!
            var body = g(3), begin = stamp
            if body.hasSuffix(" <unfinished ...>") {
                pending[thread] = (stamp, String(body.dropLast(" <unfinished ...>".count)))
                continue
            }
            if body.hasPrefix("<... "), let start = pending.removeValue(forKey: thread),
               let r = body.range(of: " resumed>") {
                body = start.head + body[r.upperBound...]
                begin = start.begin
            }
            let r = NSRange(body.startIndex..., in: body)
            let s = { (m: NSTextCheckingResult, i: Int) in Range(m.range(at: i), in: body).map { String(body[$0]) } }
            if let m = renameRE.firstMatch(in: body, range: r) {
                let path = { (dir: String?, name: String) in name.hasPrefix("/") || dir == nil ? name : dir! + "/" + name }
                calls.append(Call(thread: thread, begin: begin, end: begin + Double(s(m, 5)!)!,
                                  kind: .rename(path(s(m, 1), s(m, 2)!), path(s(m, 3), s(m, 4)!))))
            } else if let m = fsyncRE.firstMatch(in: body, range: r) {
                calls.append(Call(thread: thread, begin: begin, end: begin + Double(s(m, 2)!)!, kind: .fsync(s(m, 1)!)))
            }
        }
        self.calls = calls.sorted { $0.begin < $1.begin }
    }

    func fsyncs(of dir: String) -> Int { calls.filter { if case .fsync(let p) = $0.kind { p == dir } else { false } }.count }
    func threadsSyncing(_ dir: String) -> Int {
        Set(calls.filter { if case .fsync(let p) = $0.kind { p == dir } else { false } }.map(\.thread)).count
    }

    struct Report {
        var checked = 0
        var published: [String] = []
        func renamesInto(_ dir: String) -> Int { published.filter { ($0 as NSString).deletingLastPathComponent == dir }.count }
        func renamesTo(_ match: (String) -> Bool) -> Int { published.filter(match).count }
    }

    /// Checks every rename under `root` (but progress files, advisory and
    /// never fsynced) and returns what it checked.
    func checkDurability(root: String, file: StaticString = #filePath, line: UInt = #line) throws -> Report {
        // Timestamps are whole microseconds: a begin or an end may be off by one.
        let slack = 2e-6
        var report = Report()
        let byThread = Dictionary(grouping: calls, by: \.thread)
        for (_, list) in byThread {
            for (i, call) in list.enumerated() {
                guard case let .rename(from, to) = call.kind, to.hasPrefix(root), !to.hasSuffix(".progress") else { continue }
                let name = (from as NSString).lastPathComponent
                if name.contains(".tmp-") {
                    // The file itself was fsynced, by this thread, before the rename published it.
                    let before = list[..<i].reversed().prefix { if case .rename = $0.kind { false } else { true } }
                    XCTAssertTrue(before.contains { if case .fsync(let p) = $0.kind { p == from } else { false } },
                                  "no fsync of \(from) before its rename", file: file, line: line)
                }
                // The directories: an fsync by any thread, begun after the
                // rename returned, ended before this thread's next rename.
                let next = list[(i + 1)...].first { if case .rename = $0.kind { true } else { false } }?.begin ?? .infinity
                let toDir = (to as NSString).deletingLastPathComponent, fromDir = (from as NSString).deletingLastPathComponent
                for dir in Set([toDir, fromDir]) {
                    let covered = calls.contains { c in
                        guard case .fsync(let p) = c.kind, p == dir else { return false }
                        return c.begin >= call.end - slack && c.end <= next + slack
                    }
                    XCTAssertTrue(covered, "rename \(from) → \(to) (ended \(call.end)) not covered by an fsync of \(dir) begun after it and ended before \(next)", file: file, line: line)
                }
                report.checked += 1
                report.published.append(to)
            }
        }
        return report
    }
}
