import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Two hosts on one spool on a real CephFS (issue 15, docs/scale-out.md):
/// the one-node Ceph of Tests/ceph/ (Debian's Pacific packages, ~10 s to
/// start), mounted twice with ceph-fuse from two network namespaces, so two
/// client sessions as two machines would have, and one daemon per mount in
/// shared mode, each with one logical media root mapped to its own mount
/// (`localRoots`). Then: 200 mixed jobs through both mounts; kill -9 of the
/// daemon running a job; the Ceph client of a host killed (a dead host);
/// a host cut off by iptables while it transcodes, then healed.
///
/// Every file-system call of the test itself into a mount runs in a child
/// under `timeout -s KILL` (Tests/ceph/snapshot.py, the CLI, cp): a FUSE
/// call can hang, and a test stuck in one cannot be stopped. Skips where
/// Ceph cannot run (not root, no /dev/fuse, no Ceph packages, or
/// MEDIASPOOL_SKIP_CEPH=1); scripts/test.sh runs it beside the rest.
final class CephSpoolTests: XCTestCase {
    func testTwoHostsOnCephFSThroughKillsADeadClientAndACut() throws {
        if let why = CephCluster.skipReason() { throw XCTSkip(why) }
        let ceph = try CephCluster(self)
        let began = Date()
        func log(_ s: String) { print(String(format: "[ceph %6.1f s] ", Date().timeIntervalSince(began)) + s) }
        log("cluster up, mounted at \(ceph.mount("A")) and \(ceph.mount("B"))")

        // The media, through host A's mount; a 40 s 720p clip for the cut.
        let local = ceph.work + "/local"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        Fixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                         "-t", "40", "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-c:a", "aac", "-shortest", local + "/cut.mp4"])
        try ceph.fs(["mkdir", "-p", ceph.spool("A") + "/media"])
        try ceph.fs(["cp", "-r", Fixtures.dir.path + "/.", local + "/cut.mp4", ceph.spool("A") + "/media/"], timeout: 120)

        var daemons: [String: Process] = [:]
        daemons["A"] = ceph.startDaemon("A")
        daemons["B"] = ceph.startDaemon("B")
        for h in ["A", "B"] { ceph.waitUntilChecked(h) }
        eventually(120, "both hosts beat") { Set(ceph.status("B")?.hosts.filter { !$0.gone }.map(\.host) ?? []) == ["host-a", "host-b"] }
        log("daemons up")

        // (1) 200 mixed jobs, half through each mount: each done once.
        var manifests: [String: String] = [:]
        for i in 0..<200 {
            let id = "m\(i)"
            switch i % 20 {
            case 0, 1, 2:
                manifests[id] = #"{"version":1,"type":"transcode","input":"clips/v1.mp4","output":{"path":"out/\#(id).mp4","video":{"codec":"h264","height":120,"preset":"ultrafast"},"audio":{"codec":"aac","bitrateKbps":64}}}"#
            case 3, 4, 5:
                manifests[id] = #"{"version":1,"type":"thumbnail","input":"clips/v1.mp4","at":[1.0],"width":160,"output":{"path":"thumbs/\#(id)-%02d.jpg"}}"#
            default:
                manifests[id] = probeManifest(Fixtures.all[i % 3].name)
            }
        }
        let dir = ceph.work + "/manifests"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (id, body) in manifests { try body.write(toFile: "\(dir)/\(id).json", atomically: true, encoding: .utf8) }
        let ids = manifests.keys.sorted { Int($0.dropFirst())! < Int($1.dropFirst())! }
        let halves = [("A", ids.filter { Int($0.dropFirst())! % 2 == 0 }), ("B", ids.filter { Int($0.dropFirst())! % 2 == 1 })]
        let submits = CephCluster.runAtOnce(halves.map { h, half in [mediaspoolBinary, "submit", "--spool", ceph.spool(h)] + half.map { "\(dir)/\($0).json" } },
                                            timeout: 300, env: sanitizerChildEnvironment)
        for r in submits { try CephCluster.check(r, "submit") }
        log("200 jobs submitted")
        eventually(stall: 120, "200 jobs done", progress: { ceph.doneCount("B") }) { ceph.doneCount("B") >= 200 }
        var snap = try XCTUnwrap(ceph.snapshot("B"))
        var spread: [String: Int] = [:]
        for id in ids {
            let r = snap.results[id]
            XCTAssertEqual(r?.attempts, 1, "\(id)")
            spread[r?.host ?? "none", default: 0] += 1
            XCTAssertEqual(ceph.started(id), 1, "\(id) started exactly once")
            XCTAssertEqual(snap.events.filter { $0.id == id && $0.event == "done" }.count, 1, "\(id): one done event")
        }
        XCTAssertEqual(Set(spread.keys), ["host-a", "host-b"], "both hosts took jobs: \(spread)")
        XCTAssertEqual(snap.badOutputs, [], "every output is the one its record names")
        for i in ids.filter({ [0, 1, 2].contains(Int($0.dropFirst())! % 20) }) {
            let p = ceph.probe(ceph.spool("B") + "/media/out/\(i).mp4")
            XCTAssertEqual(p?.height, 120, i); XCTAssertEqual(p?.duration ?? 0, 2, accuracy: 0.1, i)
        }
        log("(1) 200 jobs done exactly once: \(spread.sorted { $0.key < $1.key })")

        // A transcode of the 20 s clip, submitted through `through`; the host
        // that runs it (once its progress shows) is returned.
        func runSlow(_ id: String, input: String = "clips/long.mp4", through: String = "A") throws -> String {
            let m = #"{"version":1,"type":"transcode","input":"\#(input)","output":{"path":"out/\#(id).mp4","video":{"codec":"h264","height":360,"crf":23,"preset":"medium"},"audio":{"codec":"aac","bitrateKbps":96}}}"#
            manifests[id] = m
            try m.write(toFile: "\(dir)/\(id).json", atomically: true, encoding: .utf8)
            try ceph.fs([mediaspoolBinary, "submit", "--spool", ceph.spool(through), "\(dir)/\(id).json"])
            var host: String?
            eventually(120, "\(id) running") {
                host = ceph.status(through)?.running.first { $0.id == id && ($0.fraction ?? 0) > 0.02 }?.host
                return host != nil
            }
            return try XCTUnwrap(host)
        }
        func other(_ host: String) -> String { host == "host-a" ? "B" : "A" }
        func letter(_ host: String) -> String { host == "host-a" ? "A" : "B" }

        // (2) kill -9 of the daemon running a job: the other host recovers it.
        let killedOn = try runSlow("kill9")
        let killed = daemons[letter(killedOn)]!
        kill(killed.processIdentifier, SIGKILL)
        waitForExit(killed)
        let survivor = other(killedOn)
        eventually(stall: 120, "kill9 done", progress: { ceph.doneCount(survivor) }) { ceph.isDone("kill9", survivor) }
        snap = try XCTUnwrap(ceph.snapshot(survivor))
        XCTAssertEqual(snap.results["kill9"]?.attempts, 2)
        XCTAssertNotEqual(snap.results["kill9"]?.host, killedOn, "the other host finished it")
        XCTAssertEqual(ceph.started("kill9"), 2, "once on each host")
        XCTAssertEqual(ceph.probe(ceph.spool(survivor) + "/media/out/kill9.mp4")?.duration ?? 0, 20, accuracy: 0.1)
        log("(2) kill -9 of \(killedOn) mid-job: kill9 finished by \(snap.results["kill9"]?.host ?? "?")")
        daemons[letter(killedOn)] = ceph.startDaemon(letter(killedOn))
        ceph.waitUntilChecked(letter(killedOn))

        // (3) A dead host: its Ceph client killed while it runs a job. Its
        // daemon meets ENOTCONN and exits fenced off (75); the other host
        // gets the job's lock once the MDS evicts the dead session (~60 s).
        let deadOn = try runSlow("deadhost")
        let dead = letter(deadOn), alive = other(deadOn)
        let t3 = Date()
        ceph.killClient(dead)
        eventually(120, "the daemon of the dead client exits") { !daemons[dead]!.isRunning }
        waitForExit(daemons[dead]!)
        XCTAssertEqual(exitCode(daemons[dead]!), 75, "fenced off: " + ceph.daemonLog(dead).suffix(600))
        var claimedAt: Date?
        eventually(150, "deadhost claimed again by host \(alive)") {
            claimedAt = ceph.snapshot(alive)?.events.first { $0.id == "deadhost" && $0.event == "claimed" && $0.attempt == 2 }.flatMap { RFC3339Date($0.time) }
            return claimedAt != nil
        }
        let recoveredIn = (claimedAt ?? .distantFuture).timeIntervalSince(t3)
        XCTAssertLessThanOrEqual(recoveredIn, 90, "a dead host's job is recovered within 90 s")
        eventually(stall: 120, "deadhost done", progress: { ceph.doneCount(alive) }) { ceph.isDone("deadhost", alive) }
        XCTAssertEqual(ceph.snapshot(alive)?.results["deadhost"]?.host, deadOn == "host-a" ? "host-b" : "host-a")
        log(String(format: "(3) ceph-fuse of %@ killed: its daemon exited 75, deadhost claimed by the other host %.1f s later", deadOn, recoveredIn))
        try ceph.remount(dead)
        daemons[dead] = ceph.startDaemon(dead)
        ceph.waitUntilChecked(dead)
        eventually(120, "both hosts beat again") { ceph.status(alive)?.hosts.filter { !$0.gone }.count == 2 }

        // (4) A host cut off while it transcodes, then healed.
        let cutOn = try runSlow("cut", input: "cut.mp4")
        let cut = letter(cutOn), keep = other(cutOn)
        try ceph.cut(cut)
        let tCut = Date()  // after the rules apply: nothing of host `cut` can pass from here
        eventually(180, "cut claimed again by host \(keep)") {
            ceph.snapshot(keep)?.events.contains { $0.id == "cut" && $0.event == "claimed" && $0.attempt == 2 } ?? false
        }
        log(String(format: "(4) %@ cut off: cut claimed by the other host %.1f s later", cutOn, Date().timeIntervalSince(tCut)))
        try ceph.heal(cut)
        eventually(120, "the cut-off daemon exits after the heal") { !daemons[cut]!.isRunning }
        waitForExit(daemons[cut]!)
        XCTAssertEqual(exitCode(daemons[cut]!), 75, "fenced off: " + ceph.daemonLog(cut).suffix(600))
        XCTAssertTrue(ceph.daemonLog(cut).contains("fenced this host off"), String(ceph.daemonLog(cut).suffix(1500)))
        eventually(stall: 120, "cut done", progress: { ceph.doneCount(keep) }) { ceph.isDone("cut", keep) }
        snap = try XCTUnwrap(ceph.snapshot(keep))
        XCTAssertEqual(snap.results["cut"]?.host, keep == "A" ? "host-a" : "host-b")
        XCTAssertEqual(snap.results["cut"]?.attempts, 2)
        XCTAssertEqual(ceph.probe(ceph.spool(keep) + "/media/out/cut.mp4")?.duration ?? 0, 40, accuracy: 0.1)
        let late = snap.events.filter { $0.host == cutOn && (RFC3339Date($0.time) ?? .distantFuture) >= tCut }
        XCTAssertEqual(late.map { "\($0.id) \($0.event)" }, [], "nothing from the cut-off host after the cut")
        log("(4) the cut-off daemon exited 75 after the heal; cut finished by \(snap.results["cut"]?.host ?? "?")")

        // The invariants of the chaos test, at the end.
        daemons[cut] = nil
        for (_, d) in daemons where d.isRunning { kill(d.processIdentifier, SIGTERM); waitForExit(d) }
        snap = try XCTUnwrap(ceph.snapshot(keep))
        XCTAssertEqual(Set(snap.results.keys), Set(manifests.keys), "every job done")
        XCTAssertEqual(snap.errors.count, 0, "none failed: \(snap.errors)")
        for id in manifests.keys {
            XCTAssertEqual(snap.events.filter { $0.id == id && $0.event == "done" }.count, 1, "\(id): one done event")
            XCTAssertEqual(snap.events.filter { $0.id == id && ($0.event == "failed") }.count, 0, "\(id): no failed event")
        }
        XCTAssertEqual(snap.badOutputs, [])
        // A temporary of a killed or fenced daemon in a spool directory is
        // kept 10 min in shared mode (docs/scale-out.md); none anywhere else.
        let gonePids = ceph.diedPids.map { ".tmp-\($0)-" }
        func live(_ names: [String]) -> [String] { names.filter { n in !gonePids.contains { n.contains($0) } } }
        for d in ["inbox", "retry", "processing", "state", "hold"] { XCTAssertEqual(live(snap.dirs[d] ?? []), [], d) }
        XCTAssertEqual((snap.dirs["locks"] ?? []).filter { !$0.hasPrefix(".daemon") }, [], "no stale lock")
        XCTAssertEqual(snap.temporaries.filter { t in t.hasPrefix("media/") || !gonePids.contains { t.contains($0) } }, [], "no partial output")
        log("invariants hold; \(snap.temporaries.count) temporaries of dead daemons kept")
    }
}

private func RFC3339Date(_ s: String) -> Date? {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.date(from: s)
}

/// The Ceph of Tests/ceph/ for one test: brought up in init, torn down
/// (daemons, mounts, cluster, namespaces, files) at the test's end.
final class CephCluster {
    /// The media root the daemons share, by name: each host maps it to
    /// media/ in the spool through its own mount (config `localRoots`).
    static let logicalMedia = "/srv/mediaspool-ceph-media"
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("ceph").path
    let work: String
    private var daemonLogs: [String: [String]] = [:]
    private var processes: [Process] = []
    /// Pids of daemons that were killed or fenced (their temporaries may stay).
    private(set) var diedPids: [Int32] = []
    private let serial: Int32

    static func skipReason() -> String? {
        if ProcessInfo.processInfo.environment["MEDIASPOOL_SKIP_CEPH"] == "1" { return "MEDIASPOOL_SKIP_CEPH=1" }
        if getuid() != 0 { return "the CephFS test needs root (network namespaces, FUSE mounts, iptables)" }
        if access("/dev/fuse", R_OK | W_OK) != 0 { return "the CephFS test needs /dev/fuse" }
        for tool in ["ceph-mon", "ceph-osd", "ceph-mds", "ceph-mgr", "ceph-fuse", "ceph", "iptables", "nsenter"] where which(tool) == nil {
            return "the CephFS test needs \(tool): ./scripts/setup.sh installs Ceph (ceph-mon ceph-mgr ceph-osd ceph-mds ceph-fuse ceph-common iptables)"
        }
        return nil
    }

    static func which(_ tool: String) -> String? {
        for d in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] where access("\(d)/\(tool)", X_OK) == 0 { return "\(d)/\(tool)" }
        return nil
    }

    init(_ test: XCTestCase) throws {
        // One Ceph test at a time on a machine (fixed namespace names and addresses).
        serial = open("/run/mediaspool-ceph-test.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        flock(serial, LOCK_EX)
        work = "/var/tmp/mediaspool-ceph-\(getpid())"
        test.addTeardownBlock { [self] in tearDown(keep: (test.testRun?.failureCount ?? 0) > 0) }
        _ = CephCluster.run(["\(Self.scripts)/netns.sh", "down"], timeout: 30)
        try CephCluster.check(CephCluster.run(["\(Self.scripts)/netns.sh", "up"], timeout: 30), "netns.sh up")
        try CephCluster.check(CephCluster.run(["\(Self.scripts)/ceph-up.sh", work], timeout: 300), "ceph-up.sh")
        try mountHost("A")
        try mountHost("B")
    }

    func mount(_ h: String) -> String { "\(work)/mnt/\(h)" }
    func spool(_ h: String) -> String { mount(h) + "/spool" }

    private func mountHost(_ h: String) throws {
        try CephCluster.check(CephCluster.run(["\(Self.scripts)/ceph-mount.sh", work, h, mount(h)], timeout: 120), "ceph-mount.sh \(h)")
    }

    /// Runs `args` under `timeout -s KILL`: exit status, stdout, stderr.
    static func run(_ args: [String], timeout: Int = 60, env: [String: String] = [:]) -> (code: Int32, out: String, err: String) {
        runAtOnce([args], timeout: timeout, env: env)[0]
    }

    /// Runs the commands at the same time, each under `timeout -s KILL`.
    static func runAtOnce(_ commands: [[String]], timeout: Int = 60, env: [String: String] = [:]) -> [(code: Int32, out: String, err: String)] {
        // Output to files, not pipes: a daemon the command starts (ceph-fuse,
        // ceph-mon) may keep a pipe open after the command has exited.
        let started = commands.map { args -> (Process, String) in
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("ceph-run-\(UUID().uuidString.prefix(8))").path
            FileManager.default.createFile(atPath: base + ".out", contents: nil)
            FileManager.default.createFile(atPath: base + ".err", contents: nil)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
            p.arguments = ["-s", "KILL", "\(timeout)"] + args
            var e = ProcessInfo.processInfo.environment
            for (k, v) in env { e[k] = v }
            p.environment = e
            p.standardOutput = FileHandle(forWritingAtPath: base + ".out")
            p.standardError = FileHandle(forWritingAtPath: base + ".err")
            p.standardInput = FileHandle.nullDevice
            do { try p.run() } catch { try? "\(error)".write(toFile: base + ".err", atomically: false, encoding: .utf8) }
            return (p, base)
        }
        return started.map { p, base in
            if p.processIdentifier != 0 { waitForExit(p, timeout: Double(timeout) + 30) }
            let out = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
            let err = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
            return (p.processIdentifier != 0 ? exitCode(p) ?? -1 : -1, out, err)
        }
    }

    static func check(_ r: (code: Int32, out: String, err: String), _ what: String) throws {
        guard r.code == 0 else { throw CephError(message: "\(what) failed (\(r.code)): \(r.err.suffix(2000)) \(r.out.suffix(1000))") }
    }
    struct CephError: Error, CustomStringConvertible { var message: String; var description: String { message } }

    /// A file-system command (cp, mkdir, the CLI) under a hard timeout.
    func fs(_ args: [String], timeout: Int = 60) throws {
        try CephCluster.check(CephCluster.run(args, timeout: timeout, env: sanitizerChildEnvironment), args.prefix(3).joined(separator: " "))
    }

    func startDaemon(_ h: String) -> Process {
        let p = Process()
        let n = daemonLogs[h, default: []].count
        let log = "\(work)/daemon-\(h)-\(n).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        p.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        p.arguments = ["--net=/run/netns/so-h\(h)", mediaspoolBinary, "run", "--spool", spool(h), "--workers", "2", "--host-id", "host-\(h.lowercased())"]
        var e = ProcessInfo.processInfo.environment
        for k in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "MEDIASPOOL_LOG", "MEDIASPOOL_FAULTS"] { e[k] = nil }
        e["MEDIASPOOL_HOSTS"] = "shared"
        // One logical media root, each host's own mount of it (localRoots).
        e["MEDIASPOOL_MEDIA_ROOT"] = CephCluster.logicalMedia
        e["MEDIASPOOL_LOCAL_ROOTS"] = "\(CephCluster.logicalMedia)=\(spool(h))/media"
        e["MEDIASPOOL_BACKOFF_INITIAL_SECONDS"] = "0.2"
        for (k, v) in sanitizerChildEnvironment { e[k] = v }
        p.environment = e
        p.standardError = FileHandle(forWritingAtPath: log)
        p.standardOutput = FileHandle.nullDevice
        try! p.run()
        processes.append(p)
        daemonLogs[h, default: []].append(log)
        return p
    }

    func daemonLog(_ h: String) -> String { daemonLogs[h]?.last.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "" }
    var allLogs: String { daemonLogs.values.flatMap { $0 }.compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }.joined() }
    /// How many times a job was started, by the daemons' logs.
    func started(_ id: String) -> Int {
        allLogs.split(separator: "\n").filter { $0.contains("] started ") && $0.contains(" job \(id) (attempt ") }.count
    }

    func waitUntilChecked(_ h: String, file: StaticString = #filePath, line: UInt = #line) {
        eventually(180, "host \(h)'s daemon checked the spool", file: file, line: line) { daemonLog(h).contains(" checked: ") }
    }

    struct Snapshot: Decodable {
        struct Result: Decodable { var host: String?; var attempts: Int }
        struct Failure: Decodable { var code: String? }
        struct Event: Decodable { var id: String?; var event: String; var host: String?; var time: String; var attempt: Int? }
        var dirs: [String: [String]]
        var results: [String: Result]
        var errors: [String: Failure]
        var events: [Event]
        var badOutputs: [String]
        var temporaries: [String]
    }

    /// The whole state, read through host `h`'s mount (tried 3 times: a
    /// record or events segment may be mid-rename).
    func snapshot(_ h: String) -> Snapshot? {
        for _ in 0..<3 {
            pace()
            let r = CephCluster.run(["python3", "\(Self.scripts)/snapshot.py", spool(h)], timeout: 120)
            if r.code == 0, let s = try? JSONDecoder().decode(Snapshot.self, from: Data(r.out.utf8)) { return s }
        }
        return nil
    }

    /// The number of jobs done: manifests in done/ (moved there last, after
    /// the record and the event), 0 when the listing failed.
    func doneCount(_ h: String) -> Int {
        pace()
        let r = CephCluster.run(["python3", "\(Self.scripts)/snapshot.py", spool(h), "counts"], timeout: 120)
        struct Counts: Decodable { var dirs: [String: [String]] }
        let done = (try? JSONDecoder().decode(Counts.self, from: Data(r.out.utf8)))?.dirs["done"] ?? []
        return done.filter { $0.hasSuffix(".json") && !$0.hasSuffix(".result.json") && !$0.hasPrefix(".") }.count
    }

    /// Whether job `id` is done: its manifest in done/ (moved last).
    func isDone(_ id: String, _ h: String) -> Bool {
        pace()
        let r = CephCluster.run(["test", "-f", spool(h) + "/done/\(id).json"], timeout: 120)
        return r.code == 0
    }

    /// The polls of the test run a child each, through FUSE: at most two a
    /// second, or they would keep a core busy.
    private var lastPoll = Date.distantPast
    private func pace() {
        let wait = 0.5 - Date().timeIntervalSince(lastPoll)
        if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
        lastPoll = Date()
    }

    struct Status: Decodable {
        struct Host: Decodable { var host: String; var gone: Bool }
        struct Running: Decodable { var id: String; var host: String?; var fraction: Double? }
        var hosts: [Host]
        var running: [Running]
    }

    func status(_ h: String) -> Status? {
        pace()
        let r = CephCluster.run([mediaspoolBinary, "status", "--json", "--spool", spool(h)], timeout: 120, env: sanitizerChildEnvironment)
        return try? JSONDecoder().decode(Status.self, from: Data(r.out.utf8))
    }

    /// Height and duration of a video, by ffprobe.
    func probe(_ path: String) -> (height: Int, duration: Double)? {
        let r = CephCluster.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=height:format=duration", "-of", "csv=p=0", path])
        let f = r.out.split(whereSeparator: \.isNewline).map(String.init)
        guard f.count == 2, let h = Int(f[0]), let d = Double(f[1]) else { return nil }
        return (h, d)
    }

    private func fusePid(_ h: String) -> Int32? {
        (try? String(contentsOfFile: "\(work)/run/fuse\(h).pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// A dead host: its ceph-fuse killed; the daemon's pid recorded.
    func killClient(_ h: String) {
        if let pid = fusePid(h) { kill(pid, SIGKILL) }
        for p in processes where p.isRunning && (p.arguments ?? []).contains(spool(h)) { diedPids.append(p.processIdentifier) }
    }

    func remount(_ h: String) throws {
        detach(h)
        try mountHost(h)
    }

    /// Aborts the FUSE connection of a mount (a call into it can hang
    /// forever otherwise), then detaches it.
    private func detach(_ h: String) {
        let target = mount(h)
        if let info = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) {
            for line in info.split(separator: "\n") {
                let f = line.split(separator: " ")
                guard f.count > 4, f[4] == target, let minor = f[2].split(separator: ":").last else { continue }
                _ = CephCluster.run(["sh", "-c", "mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections; echo 1 > /sys/fs/fuse/connections/\(minor)/abort"], timeout: 10)
            }
        }
        _ = CephCluster.run(["umount", "-l", target], timeout: 30)
        if let pid = fusePid(h) { kill(pid, SIGKILL) }
    }

    func cut(_ h: String) throws {
        for p in processes where p.isRunning && (p.arguments ?? []).contains(spool(h)) { diedPids.append(p.processIdentifier) }
        for chain in ["INPUT", "OUTPUT"] {
            try CephCluster.check(CephCluster.run(["nsenter", "--net=/run/netns/so-h\(h)", "iptables", "-A", chain, "-j", "DROP"], timeout: 10), "iptables")
        }
    }

    func heal(_ h: String) throws {
        try CephCluster.check(CephCluster.run(["nsenter", "--net=/run/netns/so-h\(h)", "iptables", "-F"], timeout: 10), "iptables -F")
    }

    private func tearDown(keep: Bool) {
        for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL); waitForExit(p, timeout: 10) }
        detach("A")
        detach("B")
        for pidFile in (try? FileManager.default.contentsOfDirectory(atPath: "\(work)/run")) ?? [] where pidFile.hasSuffix(".pid") {
            if let s = try? String(contentsOfFile: "\(work)/run/\(pidFile)", encoding: .utf8), let pid = Int32(s.trimmingCharacters(in: .whitespacesAndNewlines)) {
                kill(pid, SIGKILL)
            }
        }
        _ = CephCluster.run(["\(Self.scripts)/netns.sh", "down"], timeout: 30)
        if keep {
            print("kept the Ceph test's logs: \(work)")
            _ = CephCluster.run(["rm", "-rf", "\(work)/osd", "\(work)/mon", "\(work)/local"], timeout: 60)
        } else {
            _ = CephCluster.run(["rm", "-rf", work], timeout: 60)
        }
        flock(serial, LOCK_UN)
        close(serial)
    }
}
