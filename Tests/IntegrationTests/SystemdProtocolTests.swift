import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// sd_notify against a real datagram socket, and the journal fields against
/// journald's native protocol socket (the daemon runs in a private mount
/// namespace where /run/systemd/journal/socket is the test's socket).
/// The full units against a booted systemd are tested with issue #4's suite.
final class SystemdProtocolTests: XCTestCase {
    func testNotifyReadyAfterRecoveryStatusWatchdogReloadStopping() throws {
        let h = SpoolHarness(self)
        // A stale job: in processing/ with attempt 1 counted, nobody holds its lock.
        let body = probeManifest("clips/v1.mp4")
        try Data(body.utf8).write(to: URL(fileURLWithPath: h.layout.manifest("stale", in: h.layout.processing).string))
        try Durable.write(RecordCoding.encode(JobState(id: "stale", attempts: 1, history: [HistoryEntry(attempt: 1, startedAt: RFC3339.string(Date()))])),
                          to: h.layout.stateFile("stale"))
        let sock = DatagramListener(path: h.root.appending("notify.sock").string)
        defer { sock.stop() }
        let cfg = h.root.appending("config.json")
        try Data(#"{"workers":1}"#.utf8).write(to: URL(fileURLWithPath: cfg.string))
        let d = h.start(workers: nil, env: ["NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": "1000000"], args: ["--config", cfg.string])

        eventually(10, "READY=1") { sock.messages.contains { $0.contains("READY=1") } }
        // At READY the stale job has been recovered: its attempt ended as INTERRUPTED.
        let st = (h.bytes(h.layout.stateFile("stale"))).flatMap { RecordCoding.decode(JobState.self, $0) }
        let recovered = st?.history.contains { $0.code == "INTERRUPTED" } ?? false
        XCTAssertTrue(recovered || h.result("stale") != nil, "READY=1 came before recovery")
        let readyIndex = sock.messages.firstIndex { $0.contains("READY=1") }!
        XCTAssertTrue(sock.messages[readyIndex].contains("STATUS="))
        eventually(10, "stale job finished") { h.result("stale") != nil }
        XCTAssertEqual(h.result("stale")?.attempts, 2)
        XCTAssertEqual(h.result("stale")?.history.first?.code, "INTERRUPTED")

        eventually(5, "WATCHDOG=1") { sock.messages.contains("WATCHDOG=1") }
        eventually(5, "STATUS= with counts") { sock.messages.contains { $0.hasPrefix("STATUS=waiting") && $0.contains("done 1") } }

        XCTAssertTrue(sock.messages.last { $0.hasPrefix("STATUS=") }?.contains("/1,") ?? false, "1 worker from the config file")
        try Data(#"{"workers":3}"#.utf8).write(to: URL(fileURLWithPath: cfg.string))
        kill(d.processIdentifier, SIGHUP)
        eventually(5, "RELOADING=1 then READY=1") {
            let m = sock.messages
            guard let r = m.lastIndex(where: { $0.contains("RELOADING=1") }) else { return false }
            return m[r].contains("MONOTONIC_USEC=") && m[(r + 1)...].contains { $0.contains("READY=1") }
        }
        XCTAssertTrue(d.isRunning)
        eventually(5, "3 workers after the reload") { sock.messages.last { $0.hasPrefix("STATUS=") }?.contains("/3,") ?? false }
        XCTAssertTrue(h.log(0).contains("configuration reloaded: 3 workers"))
        kill(d.processIdentifier, SIGTERM)
        waitForExit(d)
        XCTAssertEqual(exitCode(d), 0)
        XCTAssertTrue(sock.messages.contains { $0.contains("STOPPING=1") })
    }

    func testWatchdogIsWithheldWhileAJobIsStuck() throws {
        let h = SpoolHarness(self)
        let sock = DatagramListener(path: h.root.appending("notify.sock").string)
        defer { sock.stop() }
        h.start(workers: 1, env: ["NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": "1000000",
                                  "MEDIASPOOL_FAULTS": "hang:stuck:6000", "MEDIASPOOL_STUCK_GRACE_SECONDS": "1"])
        eventually(10, "READY=1") { sock.messages.contains { $0.contains("READY=1") } }
        h.submit("stuck1", probeManifest("clips/v1.mp4", extra: #","timeoutSeconds":1,"maxAttempts":1"#))
        eventually(10, "stuck1 running") { h.ids(in: h.layout.processing).contains("stuck1") }
        // Past timeout (1 s) + stuck grace (1 s), the heartbeat stops: from
        // the log line that says so, none for 1.5 s (the hang lasts 6 s).
        eventually(10, "the watchdog withheld") { h.log(0).contains("withholding the watchdog") }
        let n0 = sock.messages.count(where: { $0 == "WATCHDOG=1" })
        usleep(1_500_000)
        let n1 = sock.messages.count(where: { $0 == "WATCHDOG=1" })
        XCTAssertTrue(h.ids(in: h.layout.processing).contains("stuck1"), "the window was inside the hang")
        XCTAssertEqual(n0, n1, "no WATCHDOG=1 while a worker is stuck past its timeout")
        // When the hang ends the job is failed with TIMEOUT (after its retries) and the heartbeat resumes.
        eventually(20, "stuck1 ended with TIMEOUT") { h.error("stuck1")?.code == "TIMEOUT" || h.ids(in: h.layout.retry).contains("stuck1") }
        eventually(5, "heartbeat resumes") { sock.messages.count(where: { $0 == "WATCHDOG=1" }) > n1 }
        h.stopAll(signal: SIGKILL)
    }

    func testJournalFieldsOverTheNativeProtocol() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root for a private mount namespace (unshare --mount); run as root, as CI does") }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        probe.arguments = ["--mount", "true"]
        try probe.run(); probe.waitUntilExit()
        guard probe.terminationStatus == 0 else { throw XCTSkip("unshare --mount is refused here") }

        let h = SpoolHarness(self)
        let jdir = h.root.appending("journal")
        try FileManager.default.createDirectory(atPath: jdir.string, withIntermediateDirectories: true)
        let sock = DatagramListener(path: jdir.appending("socket").string)
        defer { sock.stop() }
        let script = #"mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && mount --bind "$0" /run/systemd/journal && exec "$@""#
        h.start(workers: 1, env: ["MEDIASPOOL_LOG": "journal"], args: ["--host-id", "node-j"],
                wrapper: ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, jdir.string])
        h.submit("jr-ok", probeManifest("clips/v1.mp4"))
        h.submit("jr-bad", probeManifest("clips/absent.mp4"))
        eventually(15, "both jobs finished") { h.finishedCount == 2 }
        // Either job may run first: wait for the last entry of each.
        eventually(5, "journal entries") {
            let e = sock.journalEntries
            return e.contains { $0["JOB_ID"] == "jr-bad" && $0["STATUS"] == "failed" } && e.contains { $0["JOB_ID"] == "jr-ok" && $0["STATUS"] == "done" }
        }
        let entries = sock.journalEntries
        let ok = entries.filter { $0["JOB_ID"] == "jr-ok" }
        XCTAssertGreaterThanOrEqual(ok.count, 2, "started and done")
        let done = try XCTUnwrap(ok.first { $0["STATUS"] == "done" })
        XCTAssertEqual(done["JOB_TYPE"], "probe"); XCTAssertEqual(done["ATTEMPT"], "1"); XCTAssertEqual(done["STEP"], "done")
        XCTAssertNotNil(done["DURATION_MS"].flatMap(Int.init))
        XCTAssertEqual(done["SYSLOG_IDENTIFIER"], "mediaspool"); XCTAssertEqual(done["PRIORITY"], "6")
        XCTAssertTrue(done["MESSAGE"]?.contains("jr-ok") ?? false)
        let bad = try XCTUnwrap(entries.first { $0["JOB_ID"] == "jr-bad" && $0["STATUS"] == "failed" })
        XCTAssertEqual(bad["ERROR_CODE"], "INPUT_NOT_FOUND"); XCTAssertEqual(bad["STEP"], "check-paths"); XCTAssertEqual(bad["PRIORITY"], "3")
        XCTAssertTrue(entries.contains { $0["STEP"] == "ready" }, "daemon-level lines go to the journal too")
        XCTAssertTrue(entries.allSatisfy { $0["MEDIASPOOL_HOST"] == "node-j" }, "every entry names the host")
        h.stopAll()
    }
}
