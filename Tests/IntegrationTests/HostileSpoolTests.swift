import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The spool as an attacker with the producers' group write access (or an
/// operator's mistake) leaves it: FIFOs, directories, symlinks, huge sparse
/// files and names of any bytes in every spool directory, planted while the
/// daemon is stopped and while it runs. The daemon must stay up, drain a
/// good job, stop on SIGTERM within its grace, end every hostile manifest in
/// failed/ with its code, and change nothing outside the spool; the CLI
/// commands and the sweep must finish over the same spool.
final class HostileSpoolTests: XCTestCase {
    func mkfifoAt(_ p: FilePath) { XCTAssertEqual(p.withPlatformString { mkfifo($0, 0o644) }, 0, "mkfifo \(p)") }
    func symlinkAt(_ p: FilePath, to target: String) { XCTAssertEqual(p.withPlatformString { symlink(target, $0) }, 0, "symlink \(p)") }
    func sparse(_ p: FilePath, size: Int) {
        let fd = p.withPlatformString { open($0, O_CREAT | O_WRONLY, 0o644) }
        XCTAssertEqual(ftruncate(fd, off_t(size)), 0)
        close(fd)
    }
    func file(_ p: FilePath, _ s: String) {
        let fd = p.withPlatformString { open($0, O_CREAT | O_WRONLY | O_TRUNC, 0o644) }
        XCTAssertGreaterThanOrEqual(fd, 0, "create \(p)")
        _ = s.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// A tree outside the spool and the roots, hashed: nothing may change it.
    func canary(_ dir: String) -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        let e = FileManager.default.enumerator(atPath: dir)
        while let f = e?.nextObject() as? String { out[f] = FileManager.default.contents(atPath: dir + "/" + f).map(Array.init) ?? [] }
        return out
    }

    /// A CLI command under a hard time limit: a hang fails, it does not stall the suite.
    func cli(_ h: SpoolHarness, _ args: [String]) -> (code: Int32, out: String) {
        runProcess("/usr/bin/timeout", ["-s", "KILL", "20", mediaspoolBinary] + args + ["--spool", h.root.string])
    }

    func rssMiB(_ pid: Int32) -> Double {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let kb = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0
        return kb / 1024
    }

    func plant(_ h: SpoolHarness, tag: String, outside: String, daemonStopped: Bool) {
        let l = h.layout
        // The fixed names of the extensions: a directory where the events
        // log's lock goes (every end of a job appends there), a FIFO as the
        // pause file, entries of no job held aside, and, while no daemon
        // holds it, a directory as locks/.daemon.
        try? Sys.mkdir(l.events)
        try? Sys.unlink(l.events.appending(".lock"))
        try! Sys.mkdir(l.events.appending(".lock"))
        try? Sys.mkdir(l.control)
        try? Sys.unlink(l.pauseFile)
        mkfifoAt(l.pauseFile)
        try? Sys.mkdir(l.hold)
        mkfifoAt(l.hold.appending("\(tag)-hfifo.json"))
        try! Sys.mkdir(l.hold.appending("\(tag)-hdir.json"))
        if daemonStopped {
            try? Sys.unlink(l.daemonLock)
            try! Sys.mkdir(l.daemonLock)
        }
        // A good job waiting in retry/ with a directory for its state file.
        file(l.manifest("\(tag)-sdir", in: l.retry), #"{"version":1,"type":"probe","input":"clips/v1.mp4"}"#)
        try! Sys.mkdir(l.stateFile("\(tag)-sdir"))
        // inbox/: not regular files, unbounded, names of any bytes.
        mkfifoAt(l.inbox.appending("\(tag)-fifo.json"))
        try! Sys.mkdir(l.inbox.appending("\(tag)-dir.json"))
        symlinkAt(l.inbox.appending("\(tag)-zero.json"), to: "/dev/zero")
        symlinkAt(l.inbox.appending("\(tag)-secret.json"), to: outside + "/secret.json")
        sparse(l.inbox.appending("\(tag)-huge.json"), size: 100 << 30)
        file(l.inbox.appending(String(repeating: "x", count: 190) + "\(tag)é" + String(repeating: "y", count: 40) + ".json"), "{}")
        let raw: [UInt8] = Array("\(tag)-bad".utf8) + [0xC3, 0x28, 0xFF] + Array(".json".utf8)
        file(l.inbox.appending(SpoolName.component(raw)!), "{}")
        file(l.inbox.appending("\(tag)-\u{1B}[2J\n1\tforged.json"), "{}")
        file(l.inbox.appending("\(tag)-r.error.json"), "{}")
        // retry/ and processing/: entries of no job.
        mkfifoAt(l.retry.appending("\(tag)-rfifo.json"))
        mkfifoAt(l.processing.appending("\(tag)-pfifo.json"))
        // done/ and failed/: what dedup, list and status read.
        mkfifoAt(l.done.appending("\(tag)-dd.json"))
        mkfifoAt(l.result("\(tag)-dr"))
        file(l.manifest("\(tag)-dr", in: l.done), "{}")
        mkfifoAt(l.errorRecord("\(tag)-ff"))
        file(l.manifest("\(tag)-ff", in: l.failed), "{}")
        file(l.done.appending("\(tag)\n1\td\tforged\tprobe\t\t1\tnull\t{}.json"), "{}")
        // state/ and locks/: what the claim opens.
        mkfifoAt(l.stateFile("\(tag)-rfifo"))
        mkfifoAt(l.lock("\(tag)-lk"))
        try! Sys.mkdir(l.lock("\(tag)-ld"))
        // index/: links where the CLI writes its cache.
        try? Sys.mkdirs(l.root.appending("index"))
        symlinkAt(l.root.appending("index/.finished.tsv.tmp-\(tag)"), to: outside + "/victim")
        // tmp/: whatever producers leave.
        mkfifoAt(l.tmp.appending("\(tag)-tfifo"))
        symlinkAt(l.tmp.appending("\(tag)-tlink"), to: outside + "/victim")
    }

    func testHostileEntriesInEverySpoolDirectory() throws {
        let h = SpoolHarness(self)
        let outside = h.root.removingLastComponent().appending("mediaspool-canary-\(UUID().uuidString.prefix(8))").string
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: outside) }
        try Data(#"{"version":1,"type":"probe","input":"clips/v1.mp4"}"#.utf8).write(to: URL(fileURLWithPath: outside + "/secret.json"))
        try Data("precious".utf8).write(to: URL(fileURLWithPath: outside + "/victim"))
        let before = canary(outside)

        // While stopped: recovery at start meets them first.
        plant(h, tag: "s", outside: outside, daemonStopped: true)
        let d = h.start(workers: 2)
        // The two refused jobs a producer legitimately causes: a conflict with
        // done/s-dd.json (a FIFO) and s-r.error.json (an invalid id).
        h.submit("s-dd", #"{"version":1,"type":"probe","input":"clips/v1.mp4"}"#)
        h.submit("good1", #"{"version":1,"type":"probe","input":"clips/v1.mp4"}"#)
        eventually(30, "the first good job done") { h.result("good1") != nil }
        // While running.
        plant(h, tag: "r", outside: outside, daemonStopped: false)
        h.submit("good2", #"{"version":1,"type":"probe","input":"clips/v1.mp4"}"#)
        eventually(30, "a good job submitted after the hostile entries is done") { h.result("good2") != nil }
        // Every hostile manifest of inbox/, retry/ and processing/ ends in failed/.
        let expected: [String: ErrorCode] = [
            "fifo": .manifestInvalid, "dir": .manifestInvalid, "zero": .manifestInvalid, "secret": .manifestInvalid,
            "huge": .manifestTooLarge, "rfifo": .manifestInvalid, "pfifo": .manifestInvalid,
        ]
        for tag in ["s", "r"] {
            for (name, code) in expected {
                eventually(30, "\(tag)-\(name) in failed/") { h.error("\(tag)-\(name)") != nil }
                XCTAssertEqual(h.error("\(tag)-\(name)")?.code, code.rawValue, "\(tag)-\(name): \(h.error("\(tag)-\(name)")?.message ?? "")")
            }
        }
        eventually(30, "the invalid names refused") { h.bytes(h.layout.inbox.appending("s-r.error.json")) == nil && h.bytes(h.layout.inbox.appending("r-r.error.json")) == nil }
        eventually(30, "inbox/ drained of every hostile entry") { h.names(h.layout.inbox).filter { !$0.hasPrefix(".") }.isEmpty }
        let invalid = try Sys.entries(in: h.layout.failed).filter { $0.hasPrefix("invalid~") && $0.hasSuffix(".error.json") }
        XCTAssertEqual(invalid.count, 8, "4 invalid names per round, each under a safe name: \(invalid)")
        XCTAssertEqual(h.error("s-dd")?.code, "ID_CONFLICT")
        for tag in ["s", "r"] {
            eventually(30, "\(tag)-sdir, whose state file was a directory, is done") { h.result("\(tag)-sdir") != nil && h.ids(in: h.layout.done).contains("\(tag)-sdir") }
        }
        // Every end went to the events log through the planted lock names.
        let ends = cli(h, ["events", "--only", "done"]).out
        XCTAssertTrue(["good1", "good2", "s-sdir", "r-sdir"].allSatisfy { ends.contains("\"id\":\"\($0)\"") }, ends)
        // The daemon is up, small, and its log names no crash.
        XCTAssertTrue(d.isRunning)
        XCTAssertLessThan(rssMiB(d.processIdentifier), 300)
        XCTAssertFalse(h.log(0).contains("Fatal error"), h.log(0))

        // The CLI and the sweep finish over the same spool, with escaped output.
        for args in [["status"], ["status", "--json"], ["list"], ["list", "--json"], ["list", "--state", "failed"],
                     ["show", "s-ff"], ["show", "s-dr"], ["watch", "--once"], ["sweep"], ["gallery", "--out", h.root.string + "/gallery"],
                     ["events"], ["list", "--state", "held"], ["release", "r-hfifo"], ["cancel", "r-hdir"], ["hold", "r-nothing"],
                     ["replay", "s-ff"], ["pause"], ["resume"]] {
            let r = cli(h, args)
            XCTAssertNotEqual(r.code, 137, "\(args) hung")
            XCTAssertFalse(r.out.contains("\u{1B}"), "\(args) printed a raw escape")
            if args.first == "list" && !args.contains("--json") {
                XCTAssertFalse(r.out.split(separator: "\n").contains { $0.contains("forged") && !$0.contains("\\u{") }, "\(args): \(r.out)")
            }
        }
        // A second good job after all of it.
        h.submit("good3", #"{"version":1,"type":"probe","input":"clips/v1.mp4"}"#)
        eventually(30, "good3 done") { h.result("good3") != nil }

        // kill -9 with a job queued, more planted while it is dead: the next
        // start recovers, refuses them, and drains.
        h.submit("good4", #"{"version":1,"type":"probe","input":"clips/v1.mp4"}"#)
        kill(d.processIdentifier, SIGKILL)
        waitForExit(d)
        plant(h, tag: "k", outside: outside, daemonStopped: true)
        let d2 = h.start(workers: 2)
        eventually(30, "good4 done after the restart") { h.result("good4") != nil }
        eventually(30, "k-sdir done") { h.result("k-sdir") != nil }
        for (name, code) in expected {
            eventually(30, "k-\(name) in failed/") { h.error("k-\(name)") != nil }
            XCTAssertEqual(h.error("k-\(name)")?.code, code.rawValue, "k-\(name)")
        }
        eventually(30, "inbox/ drained after the restart") { h.names(h.layout.inbox).filter { !$0.hasPrefix(".") }.isEmpty }
        XCTAssertLessThan(rssMiB(d2.processIdentifier), 300)

        // SIGTERM still stops it within the grace time.
        let t0 = Date()
        kill(d2.processIdentifier, SIGTERM)
        waitForExit(d2, timeout: 30)
        XCTAssertFalse(d2.isRunning)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 25)
        XCTAssertEqual(exitCode(d2), 0)
        XCTAssertEqual(canary(outside), before, "nothing outside the spool changed")
    }

    /// Row 5 as a race, end to end: while the daemon transcodes, another
    /// thread keeps exchanging the output directory with a symlink to a
    /// directory outside every root (renameat2 RENAME_EXCHANGE). Every job
    /// ends (done, or refused), and nothing is ever written outside.
    func testOutputDirectorySwapsDuringTranscodesWriteNothingOutside() throws {
        let h = SpoolHarness(self)
        let outside = h.root.removingLastComponent().appending("mediaspool-outside-\(UUID().uuidString.prefix(8))")
        try Sys.mkdirs(outside)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: outside.string) }
        try Sys.mkdirs(h.media.appending("out"))
        XCTAssertEqual(symlink(outside.string, h.media.appending("swap").string), 0)
        h.start(workers: 2)
        let stop = Flag(), swaps = Counter()
        let a = h.media.appending("out"), b = h.media.appending("swap")
        let swapper = Thread {
            while !stop.isSet { if (try? Sys.exchange(a, b)) != nil { swaps.add() } }
        }
        swapper.start()
        let ids = (0..<12).map { "swap\($0)" }
        for id in ids {
            h.submit(id, #"{"version":1,"type":"transcode","input":"clips/v1.mp4","output":{"path":"out/\#(id).mp4","video":{"height":120,"preset":"ultrafast"}}}"#)
        }
        eventually(stall: 60, "every job ended", progress: { h.finishedCount }) { ids.allSatisfy { h.result($0) != nil || h.error($0) != nil } }
        stop.set()
        while swapper.isExecuting { usleep(1000) }
        let done = ids.filter { h.result($0) != nil }
        print("output swap race: \(swaps.value) swaps, \(done.count) of \(ids.count) done, the rest refused")
        XCTAssertGreaterThan(swaps.value, 1000)
        XCTAssertEqual(try Sys.entries(in: outside), [], "nothing written outside the root")
        for id in ids where h.result(id) == nil { XCTAssertEqual(h.error(id)?.code, "OUTPUT_NOT_ALLOWED", "\(id): \(h.error(id)?.message ?? "")") }
        h.stopAll()
    }

    /// Row 4 as a race: while `list` runs again and again, another thread
    /// keeps putting a symlink to a victim file at the index's own name.
    /// The index is read without following it and written by a rename over
    /// it: the victim never changes.
    func testIndexSymlinkRaceNeverWritesThroughTheLink() throws {
        let h = SpoolHarness(self)
        let victim = h.root.removingLastComponent().appending("mediaspool-victim-\(UUID().uuidString.prefix(8))")
        FileManager.default.createFile(atPath: victim.string, contents: Data("precious".utf8))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: victim.string) }
        h.start(workers: 2)
        for i in 0..<20 { h.submit("j\(i)", probeManifest("clips/v1.mp4")) }
        eventually(60, "jobs done") { h.finishedCount == 20 }
        let index = h.root.appending("index")
        try Sys.mkdirs(index)
        let stop = Flag()
        let planter = Thread {
            var n = 0
            while !stop.isSet {
                let link = index.appending("link-\(n)")
                if symlink(victim.string, link.string) == 0 { try? Sys.rename(link, index.appending("finished.tsv")) }
                n += 1
            }
        }
        planter.start()
        for _ in 0..<30 { _ = h.cli(["list", "--limit", "5"]) }
        stop.set()
        while planter.isExecuting { usleep(1000) }
        XCTAssertEqual(FileManager.default.contents(atPath: victim.string), Data("precious".utf8))
        h.stopAll()
    }
}

/// A flag set once from one thread and read from another.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}

/// A count kept by one thread and read by another.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
    func add() { lock.lock(); n += 1; lock.unlock() }
}
