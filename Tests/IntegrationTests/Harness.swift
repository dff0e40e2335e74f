import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The built `mediaspool` executable, beside the test bundle.
let mediaspoolBinary: String = {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    if dir.path.hasSuffix(".xctest") || dir.lastPathComponent == "Contents" { dir = dir.deletingLastPathComponent() }
    for d in [dir, dir.deletingLastPathComponent()] {
        let p = d.appendingPathComponent("mediaspool").path
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return dir.appendingPathComponent("mediaspool").path
}()

/// Under scripts/sanitize.sh the test runner itself runs without leak
/// checks (its own Process and Foundation objects are not the product);
/// the mediaspool processes it starts get MEDIASPOOL_CHILD_ASAN_OPTIONS.
let sanitizerChildEnvironment: [String: String] = ProcessInfo.processInfo.environment["MEDIASPOOL_CHILD_ASAN_OPTIONS"].map { ["ASAN_OPTIONS": $0] } ?? [:]

/// Memory bounds are multiplied by MEDIASPOOL_TEST_MEMORY_SCALE: the
/// sanitizers' shadow memory and quarantine (scripts/sanitize.sh sets it).
let testMemoryScale: Double = ProcessInfo.processInfo.environment["MEDIASPOOL_TEST_MEMORY_SCALE"].flatMap(Double.init) ?? 1

/// The 100,000- and 10,000-manifest tests shrink by MEDIASPOOL_TEST_LOAD_SCALE
/// under the sanitizers (10x slower daemons); their bounds still apply.
let testLoadScale: Double = ProcessInfo.processInfo.environment["MEDIASPOOL_TEST_LOAD_SCALE"].flatMap(Double.init) ?? 1

/// Media generated once per test run with ffmpeg's lavfi sources.
enum Fixtures {
    struct Media { let name: String; let video: (codec: String, w: Int, h: Int, fps: Double)?; let audio: (codec: String, rate: Int, channels: Int)?; let duration: Double }

    static let all: [Media] = [
        Media(name: "clips/v1.mp4", video: ("h264", 320, 240, 25), audio: ("aac", 48000, 2), duration: 2),
        Media(name: "clips/v2.mkv", video: ("mpeg4", 160, 120, 10), audio: nil, duration: 1),
        Media(name: "sound/a1.wav", video: nil, audio: ("pcm_s16le", 44100, 1), duration: 3),
    ]
    /// Further media for the pipeline tests (not probed in bulk).
    static let extra: [String] = ["sound/six.m4a", "clips/long.mp4", "clips/garbage.mp4", "clips/truncated.mp4",
                                  "clips/six.mp4", "stills/portrait.png", "music/theme.mp3"]

    static let dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("mediaspool-fixtures-\(getpid())")
        try! FileManager.default.createDirectory(at: d.appendingPathComponent("clips"), withIntermediateDirectories: true)
        try! FileManager.default.createDirectory(at: d.appendingPathComponent("sound"), withIntermediateDirectories: true)
        ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-shortest",
                d.appendingPathComponent("clips/v1.mp4").path])
        ffmpeg(["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "1", "-c:v", "mpeg4", d.appendingPathComponent("clips/v2.mkv").path])
        ffmpeg(["-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100", "-t", "3", "-c:a", "pcm_s16le", "-ac", "1", d.appendingPathComponent("sound/a1.wav").path])
        ffmpeg(["-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000", "-af", "pan=5.1|FL=c0|FR=c0|FC=c0|LFE=c0|BL=c0|BR=c0",
                "-t", "2", "-c:a", "aac", d.appendingPathComponent("sound/six.m4a").path])
        ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "20", "-c:v", "libx264", "-preset", "ultrafast",
                d.appendingPathComponent("clips/long.mp4").path])
        // 5.1 at 44.1 kHz, yuv444p at 30 fps, 256x144: everything unlike v1.mp4.
        ffmpeg(["-f", "lavfi", "-i", "testsrc=size=256x144:rate=30", "-f", "lavfi", "-i", "sine=frequency=700:sample_rate=44100",
                "-filter_complex", "[1:a]pan=5.1|FL=c0|FR=c0|FC=c0|LFE=c0|BL=c0|BR=c0[a]", "-map", "0:v", "-map", "[a]",
                "-t", "1.5", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p", "-c:a", "aac", d.appendingPathComponent("clips/six.mp4").path])
        try! FileManager.default.createDirectory(at: d.appendingPathComponent("stills"), withIntermediateDirectories: true)
        try! FileManager.default.createDirectory(at: d.appendingPathComponent("music"), withIntermediateDirectories: true)
        ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=200x300", "-frames:v", "1", d.appendingPathComponent("stills/portrait.png").path])
        ffmpeg(["-f", "lavfi", "-i", "sine=frequency=220:sample_rate=44100", "-t", "2", "-ac", "2", "-c:a", "libmp3lame", d.appendingPathComponent("music/theme.mp3").path])
        var garbage = [UInt8](repeating: 0, count: 64 * 1024)
        for i in garbage.indices { garbage[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
        try! Data(garbage).write(to: d.appendingPathComponent("clips/garbage.mp4"))
        let whole = try! Data(contentsOf: d.appendingPathComponent("clips/v1.mp4"))
        try! whole.prefix(whole.count / 2).write(to: d.appendingPathComponent("clips/truncated.mp4"))
        return d
    }()

    /// A 640x360 30 fps clip coded as phones do (B-frames, 5 s GOPs) at
    /// `path` (its directory made), `seconds` long.
    static func longGOPClip(_ path: String, seconds: Int) {
        try! FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "\(seconds)", "-c:v", "libx264", "-preset", "veryfast",
                "-g", "150", "-bf", "3", "-pix_fmt", "yuv420p", path])
    }

    /// A 320x180 25 fps clip whose frame N has the grey level 20 + 2·(N mod
    /// 100), at `path` (its directory made), coded with `codec`: each still
    /// or tile taken from it says which frame it is (`GreyRamp`).
    static func greyRamp(_ path: String, seconds: Double, codec: [String]) {
        try! FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        ffmpeg(["-f", "lavfi", "-i", "color=gray:size=320x180:rate=25", "-t", "\(seconds)", "-vf", "geq=lum='20+2*mod(N\\,100)':cb=128:cr=128"]
               + codec + ["-pix_fmt", "yuv420p", path])
    }

    static func ffmpeg(_ args: [String]) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ffmpeg", "-nostdin", "-v", "error", "-y"] + args
        try! p.run()
        p.waitUntilExit()
        precondition(p.terminationStatus == 0, "ffmpeg failed: \(args); run ./scripts/setup.sh")
    }

    /// Copies the fixtures into a media root.
    static func install(into media: FilePath) {
        for name in all.map(\.name) + extra {
            let dst = media.appending(name)
            try? FileManager.default.createDirectory(atPath: dst.removingLastComponent().string, withIntermediateDirectories: true)
            try? FileManager.default.removeItem(atPath: dst.string)
            try! FileManager.default.copyItem(atPath: dir.appendingPathComponent(name).path, toPath: dst.string)
        }
    }
}

/// A spool in a temp directory and the daemons started on it.
final class SpoolHarness {
    let root: FilePath
    let layout: SpoolLayout
    var media: FilePath { root.appending("media") }
    private(set) var daemons: [Process] = []
    private var logs: [URL] = []

    init(_ test: XCTestCase, root given: FilePath? = nil) {
        let p = given?.string ?? FileManager.default.temporaryDirectory.appendingPathComponent("mediaspool-it-\(UUID().uuidString.prefix(8))").path
        root = FilePath(p)
        layout = SpoolLayout(root: root)
        try! layout.create()
        Fixtures.install(into: media)
        test.addTeardownBlock { [self] in
            for d in daemons where d.isRunning { kill(d.processIdentifier, SIGKILL); waitForExit(d) }
            // A failed test's spool (logs, records, strays) is kept for a
            // post-mortem when MEDIASPOOL_KEEP_FAILED is set.
            if ProcessInfo.processInfo.environment["MEDIASPOOL_KEEP_FAILED"] != nil, (test.testRun?.failureCount ?? 0) > 0 {
                print("kept the failed test's spool: \(p)")
                return
            }
            try? FileManager.default.removeItem(atPath: p)
        }
    }

    @discardableResult
    func start(workers: Int? = 2, env: [String: String] = [:], args: [String] = [], wrapper: [String] = []) -> Process {
        let p = Process()
        let log = URL(fileURLWithPath: root.appending("daemon-\(daemons.count).log").string)
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let cmd = [mediaspoolBinary, "run", "--spool", root.string] + (workers.map { ["--workers", "\($0)"] } ?? []) + args
        if wrapper.isEmpty {
            p.executableURL = URL(fileURLWithPath: mediaspoolBinary)
            p.arguments = Array(cmd.dropFirst())
        } else {
            p.executableURL = URL(fileURLWithPath: wrapper[0])
            p.arguments = Array(wrapper.dropFirst()) + cmd
        }
        var e = ProcessInfo.processInfo.environment
        for k in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "MEDIASPOOL_LOG", "MEDIASPOOL_FAULTS"] { e[k] = nil }
        e["MEDIASPOOL_RESCAN_SECONDS"] = "1"
        e["MEDIASPOOL_BACKOFF_INITIAL_SECONDS"] = "0.2"
        for (k, v) in env { e[k] = v }
        for (k, v) in sanitizerChildEnvironment { e[k] = v }
        // LeakSanitizer cannot run under ptrace (a strace wrapper).
        if !wrapper.isEmpty, let asan = e["ASAN_OPTIONS"] { e["ASAN_OPTIONS"] = asan + ":detect_leaks=0" }
        p.environment = e
        p.standardError = try! FileHandle(forWritingTo: log)
        p.standardOutput = FileHandle.nullDevice
        try! p.run()
        daemons.append(p)
        logs.append(log)
        return p
    }

    func log(_ i: Int) -> String { (try? String(contentsOf: logs[i], encoding: .utf8)) ?? "" }

    /// Waits until the newest daemon has run its start-up recovery (it logs
    /// "spool … checked:" before its first claim). A daemon stopped before
    /// then leaves the spool as it found it.
    func waitUntilChecked(file: StaticString = #filePath, line: UInt = #line) {
        let i = logs.count - 1
        eventually(120, "daemon \(i) checked the spool", file: file, line: line) { log(i).contains(" checked: ") }
    }
    var allLogs: String { logs.indices.map(log).joined() }

    func submit(_ id: String, _ json: String) {
        try! Producer(layout: layout).submit(Array(json.utf8), id: id)
    }

    func names(_ dir: FilePath) -> [String] { (try? Sys.entries(in: dir)) ?? [] }

    func ids(in dir: FilePath) -> Set<String> {
        Set(names(dir).compactMap { JobID.fromManifestName($0) }.filter { !$0.hasSuffix(".result") && !$0.hasSuffix(".error") })
    }

    var finishedCount: Int { ids(in: layout.done).count + ids(in: layout.failed).count }

    func result(_ id: String) -> ResultRecord? {
        FileManager.default.contents(atPath: layout.result(id).string).flatMap { RecordCoding.decode(ResultRecord.self, Array($0)) }
    }
    func error(_ id: String) -> ErrorRecord? {
        FileManager.default.contents(atPath: layout.errorRecord(id).string).flatMap { RecordCoding.decode(ErrorRecord.self, Array($0)) }
    }
    /// A failed job has ended once its manifest is in failed/ too: the error
    /// record is published first, the manifest renamed beside it after.
    func hasFailed(_ id: String) -> Bool {
        error(id) != nil && FileManager.default.fileExists(atPath: layout.failed.appending("\(id).json").string)
    }
    func bytes(_ p: FilePath) -> [UInt8]? { FileManager.default.contents(atPath: p.string).map(Array.init) }

    /// Every file left under the spool whose name marks it temporary.
    var temporaryFiles: [String] {
        var out: [String] = []
        let e = FileManager.default.enumerator(atPath: root.string)
        while let f = e?.nextObject() as? String {
            let name = (f as NSString).lastPathComponent
            if SpoolName.isTemporary(name) || name.contains(".tmp-") { out.append(f) }
        }
        return out
    }

    /// Runs a mediaspool command on this spool: its exit status and stdout.
    @discardableResult
    func cli(_ args: [String], env: [String: String] = [:]) -> (code: Int32, out: String) {
        runProcess(mediaspoolBinary, args + ["--spool", root.string], env: sanitizerChildEnvironment.merging(env) { $1 })
    }

    func stopAll(signal: Int32 = SIGTERM) {
        for d in daemons where d.isRunning { kill(d.processIdentifier, signal) }
        for d in daemons { waitForExit(d) }
    }
}

/// Exit statuses of children reaped by `waitForExit` instead of Foundation.
nonisolated(unsafe) private var reapedStatus: [Int32: Int32] = [:]
private let reapedLock = NSLock()

/// Waits for a child to exit. Foundation's waitUntilExit can miss the
/// SIGCHLD of a killed child when many come and go (the child stays a
/// zombie and the wait never returns): poll, and reap a zombie that
/// Foundation has left alone for 3 s ourselves.
func waitForExit(_ p: Process, timeout: Double = 60) {
    let end = Date().addingTimeInterval(timeout)
    var zombieSince: Date?
    while p.isRunning && Date() < end {
        let stat = (try? String(contentsOfFile: "/proc/\(p.processIdentifier)/stat", encoding: .utf8)) ?? ""
        let zombie = stat.lastIndex(of: ")").map { stat[stat.index(after: $0)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z") } ?? false
        if zombie {
            zombieSince = zombieSince ?? Date()
            if Date().timeIntervalSince(zombieSince!) > 3 {
                var status: Int32 = 0
                if waitpid(p.processIdentifier, &status, WNOHANG) == p.processIdentifier {
                    reapedLock.lock(); reapedStatus[p.processIdentifier] = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f); reapedLock.unlock()
                }
                return
            }
        }
        usleep(10_000)
    }
}

/// The exit code of a finished child (a signal as 128+N), whoever reaped it.
func exitCode(_ p: Process) -> Int32? {
    if !p.isRunning { return p.terminationReason == .exit ? p.terminationStatus : 128 + p.terminationStatus }
    reapedLock.lock(); defer { reapedLock.unlock() }
    return reapedStatus[p.processIdentifier]
}

/// Polls `cond` until it holds or `timeout` passes.
@discardableResult
func eventually(_ timeout: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line, _ cond: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if cond() { return true }
        usleep(20_000)
    }
    let ok = cond()
    if !ok { XCTFail("timed out after \(timeout) s waiting for: \(what)", file: file, line: line) }
    return ok
}

/// Waits for `cond` as long as the work it waits for moves: fails when
/// `progress` (a count that grows while the daemon works: jobs done, say)
/// stands still for `stall` seconds, or after `limit`. A loaded machine is
/// slow, not stuck; a fixed timeout cannot tell the two apart.
@discardableResult
func eventually(stall: Double, limit: Double = 1200, _ what: String, file: StaticString = #filePath, line: UInt = #line,
                progress: () -> Int, _ cond: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(limit)
    var last = progress(), lastChange = Date()
    while Date() < end {
        if cond() { return true }
        let now = progress()
        if now != last { last = now; lastChange = Date() }
        if Date().timeIntervalSince(lastChange) > stall { break }
        usleep(100_000)
    }
    let ok = cond()
    if !ok { XCTFail("no progress for \(Int(stall)) s (or past \(Int(limit)) s) waiting for: \(what)", file: file, line: line) }
    return ok
}

/// Runs a program to its end: exit status and stdout (stderr dropped).
func runProcess(_ path: String, _ args: [String], env: [String: String] = [:]) -> (code: Int32, out: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    for (k, v) in env { e[k] = v }
    p.environment = e
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    try! p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    waitForExit(p)
    return (exitCode(p) ?? -1, String(decoding: out, as: UTF8.self))
}

func probeManifest(_ input: String, extra: String = "") -> String {
    #"{"version":1,"type":"probe","input":"\#(input)"\#(extra)}"#
}

/// The frames of a `Fixtures.greyRamp` clip by grey level, as the ffmpeg
/// command decodes them and after the scale a 64-wide still goes through:
/// a still (or one tile of a sheet) is the frame whose level it has.
struct GreyRamp {
    let levels: [UInt8]

    init(_ clip: String) {
        levels = [UInt8](runTool(["ffmpeg", "-v", "error", "-i", clip, "-vf", "scale=64:36,format=rgb24,scale=1:1,format=gray", "-f", "rawvideo", "-"]).out)
    }

    /// The grey level of an image, or of its 64x36 tile `k` in a sheet of `columns`.
    static func level(of image: String, tile k: Int? = nil, columns: Int = 1) -> UInt8? {
        let crop = k.map { "crop=64:36:\(($0 % columns) * 64):\(($0 / columns) * 36)," } ?? ""
        return [UInt8](runTool(["ffmpeg", "-v", "error", "-i", image, "-vf", crop + "scale=1:1,format=gray", "-f", "rawvideo", "-"]).out).first
    }

    /// Whether `level` is frame `n`'s (frames are 2 levels apart).
    func isFrame(_ n: Int, _ level: UInt8?) -> Bool {
        guard let level, n < levels.count else { return false }
        return abs(Int(level) - Int(levels[n])) <= 1
    }

    /// The frame nearest by level, among the first `within` (levels repeat every 100 frames).
    func frame(of level: UInt8, within: Int = 100) -> Int {
        levels.prefix(within).indices.min { abs(Int(levels[$0]) - Int(level)) < abs(Int(levels[$1]) - Int(level)) } ?? -1
    }
}
