import Foundation
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A real systemd booted as PID 1 of a fresh PID and mount namespace
/// (Tests/systemd/boot.sh, after ../shared/notes/systemd-in-a-namespace.md),
/// with mediaspool installed into it by scripts/install.sh. /etc, /usr/local,
/// /var/lib and /var/spool are overlays inside, so the host is not touched;
/// the spool is `workdir/spool` on the host side.
final class BootedSystemd {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let work: String
    var spool: String { work + "/spool" }
    private let unshare: Process
    let pid1: Int32

    /// Skips (with the reason) where this cannot run: not root, or namespaces refused.
    static func skipUnlessPossible() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to boot systemd in a namespace; CI runs as root") }
        guard FileManager.default.isExecutableFile(atPath: "/lib/systemd/systemd") else { throw XCTSkip("no /lib/systemd/systemd (apt-get install systemd)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = ["--pid", "--fork", "--mount", "true"]
        try p.run(); p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("unshare --pid --mount is refused here") }
    }

    init(_ test: XCTestCase) throws {
        try Self.skipUnlessPossible()
        work = "/var/tmp/mediaspool-systemd-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        unshare = Process()
        unshare.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        unshare.arguments = ["--wait", "/usr/bin/unshare", "--pid", "--fork", "--mount", "--mount-proc", "--propagation", "private",
                             Self.repo.appendingPathComponent("Tests/systemd/boot.sh").path, work, Self.repo.path]
        let log = FileHandle(forWritingAtPath: "/dev/null")!
        unshare.standardInput = FileHandle.nullDevice
        unshare.standardOutput = log
        unshare.standardError = log
        try unshare.run()
        // PID 1 of the namespace: the descendant of setsid/unshare named systemd.
        var found: Int32 = 0
        let end = Date().addingTimeInterval(10)
        while found == 0 && Date() < end {
            usleep(50_000)
            found = Self.descendant(of: unshare.processIdentifier, named: "systemd") ?? 0
        }
        pid1 = found
        guard pid1 > 0 else {
            kill(unshare.processIdentifier, SIGKILL)
            struct BootFailed: Error {}
            XCTFail("systemd did not start in the namespace (Tests/systemd/boot.sh)")
            throw BootFailed()
        }
        test.addTeardownBlock { [self] in shutdown() }
        // Wait for the manager and journald.
        let ready = Date().addingTimeInterval(30)
        while Date() < ready {
            let s = run(["systemctl", "is-system-running"]).out
            if s.hasPrefix("running") || s.hasPrefix("degraded") { break }
            usleep(100_000)
        }
    }

    static func children(_ pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { t in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(t)/children", encoding: .utf8)) ?? "").split(separator: " ").compactMap { Int32($0) }
        }
    }

    static func descendant(of pid: Int32, named name: String) -> Int32? {
        for c in children(pid) {
            let comm = (try? String(contentsOfFile: "/proc/\(c)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            if comm == name { return c }
            if let d = descendant(of: c, named: name) { return d }
        }
        return nil
    }

    func shutdown() {
        if pid1 > 0 { kill(pid1, SIGKILL) }
        unshare.waitUntilExit()
        // The spool belongs to the namespace's mediaspool user: remove as root.
        try? FileManager.default.removeItem(atPath: work)
    }

    /// Runs a command inside the namespace (nsenter -a): exit code and stdout.
    @discardableResult
    func run(_ args: [String], env: [String: String] = [:]) -> (code: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        p.arguments = ["-t", "\(pid1)", "-a", "/usr/bin/env"] + env.map { "\($0)=\($1)" } + args
        let o = Pipe(), e = Pipe()
        p.standardOutput = o; p.standardError = e; p.standardInput = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return (-1, "", "nsenter failed") }
        let od = o.fileHandleForReading.readDataToEndOfFile(), ed = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: od, as: UTF8.self), String(decoding: ed, as: UTF8.self))
    }

    func systemctl(_ args: String...) -> (code: Int32, out: String, err: String) { run(["systemctl", "--no-pager"] + args) }

    /// Installs mediaspool with scripts/install.sh (the debug binary: its
    /// fault injection lets tests make slow jobs), plus a test drop-in.
    func install(dropIn: String = "", timerDropIn: String = "") {
        let r = run([Self.repo.appendingPathComponent("scripts/install.sh").path, "--binary", mediaspoolBinary])
        precondition(r.code == 0, "install failed: \(r.err)")
        if !dropIn.isEmpty { writeInside("/etc/systemd/system/mediaspool.service.d/test.conf", "[Service]\n" + dropIn) }
        // Sanitized binaries (scripts/sanitize.sh): their options reach the units.
        if let env = ProcessInfo.processInfo.environment["MEDIASPOOL_UNIT_ENV"] {
            for unit in ["mediaspool.service", "mediaspool-sweep.service"] {
                writeInside("/etc/systemd/system/\(unit).d/sanitizer.conf", "[Service]\nEnvironment=\(env)\n")
            }
        }
        if !timerDropIn.isEmpty { writeInside("/etc/systemd/system/mediaspool-sweep.timer.d/test.conf", timerDropIn) }
        systemctl("daemon-reload")
    }

    /// Writes a file inside the namespace (through /proc/PID/root).
    func writeInside(_ path: String, _ text: String) {
        let p = "/proc/\(pid1)/root\(path)"
        try? FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! Data(text.utf8).write(to: URL(fileURLWithPath: p))
    }

    func mainPID(_ unit: String = "mediaspool.service") -> Int {
        Int(systemctl("show", "-p", "MainPID", "--value", unit).out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    func property(_ name: String, _ unit: String = "mediaspool.service") -> String {
        systemctl("show", "-p", name, "--value", unit).out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Drops a manifest as a producer would: tmp/, then rename into inbox/,
    /// readable by the service's group.
    func submit(_ id: String, _ json: String) {
        let tmp = "\(spool)/tmp/.\(id)", dst = "\(spool)/inbox/\(id).json"
        FileManager.default.createFile(atPath: tmp, contents: Data(json.utf8), attributes: [.posixPermissions: 0o664])
        precondition(rename(tmp, dst) == 0, "rename into inbox: \(errno)")
    }

    /// Copies the test media into the spool's media root, readable by the service.
    func installMedia() {
        let media = FilePath(spool + "/media")
        Fixtures.install(into: media)
        chmodTree(spool + "/media")
    }

    func chmodTree(_ path: String) {
        let e = FileManager.default.enumerator(atPath: path)
        chmod(path, 0o2775)
        while let f = e?.nextObject() as? String {
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: path + "/" + f, isDirectory: &isDir)
            chmod(path + "/" + f, isDir.boolValue ? 0o2775 : 0o664)
        }
    }
}
