import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The shipped units, installed by scripts/install.sh into a real systemd
/// booted in a namespace. Skipped with a message where not root.
final class SystemdUnitTests: XCTestCase {
    func records(_ sd: BootedSystemd) -> (result: (String) -> ResultRecord?, error: (String) -> ErrorRecord?, ids: (String) -> Set<String>) {
        let layout = SpoolLayout(root: FilePath(sd.spool))
        return (
            { FileManager.default.contents(atPath: layout.result($0).string).flatMap { RecordCoding.decode(ResultRecord.self, Array($0)) } },
            { FileManager.default.contents(atPath: layout.errorRecord($0).string).flatMap { RecordCoding.decode(ErrorRecord.self, Array($0)) } },
            { dir in Set(((try? Sys.entries(in: FilePath(sd.spool + "/" + dir))) ?? []).compactMap(JobID.fromManifestName)) }
        )
    }

    func journal(_ sd: BootedSystemd, _ args: [String]) -> [[String: Any]] {
        sd.run(["journalctl", "--no-pager", "-b", "-o", "json"] + args).out.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    func testActiveOnlyAfterReadyStatusJournalVerifyAndExposure() throws {
        let sd = try BootedSystemd(self)
        sd.install(dropIn: "Environment=MEDIASPOOL_FAULTS=ready-delay:2000\n")
        // systemd-analyze verify of the installed units is clean.
        let v = sd.run(["systemd-analyze", "verify", "/etc/systemd/system/mediaspool.service",
                        "/etc/systemd/system/mediaspool-sweep.service", "/etc/systemd/system/mediaspool-sweep.timer"])
        XCTAssertEqual(v.code, 0, v.err)
        XCTAssertEqual(v.err.split(separator: "\n").filter { $0.contains("mediaspool") }, [], "verify warnings")
        // The security exposure figure.
        let sec = sd.run(["systemd-analyze", "security", "mediaspool.service"]).out
        let line = try XCTUnwrap(sec.split(separator: "\n").first { $0.contains("Overall exposure level for mediaspool.service") })
        let figure = try XCTUnwrap(Double(line.split(separator: ":").last!.split(separator: " ").first!))
        print("systemd-analyze security mediaspool.service: \(figure)")
        XCTAssertLessThanOrEqual(figure, 1.0)

        // The spool's modes (docs/security.md): producers, the group, may
        // write tmp/ and inbox/ only.
        let modes = sd.run(["stat", "-c", "%n %a", "/var/spool/mediaspool", "/var/spool/mediaspool/tmp", "/var/spool/mediaspool/inbox",
                            "/var/spool/mediaspool/processing", "/var/spool/mediaspool/done", "/var/spool/mediaspool/failed",
                            "/var/spool/mediaspool/locks", "/var/spool/mediaspool/retry", "/var/spool/mediaspool/state",
                            "/var/spool/mediaspool/index"]).out
        let expected = ["": "2755", "/tmp": "2775", "/inbox": "2775", "/processing": "2755", "/done": "2755", "/failed": "2755",
                        "/locks": "2750", "/retry": "2750", "/state": "2750", "/index": "2755"]
        for (suffix, mode) in expected {
            XCTAssertTrue(modes.contains("/var/spool/mediaspool\(suffix) \(mode)\n"), "\(suffix) should be \(mode): \(modes)")
        }
        sd.installMedia()
        XCTAssertEqual(sd.systemctl("start", "--no-block", "mediaspool.service").code, 0)
        usleep(700_000)
        XCTAssertEqual(sd.property("ActiveState"), "activating", "not active before READY=1 (start is held 2 s by the test fault)")
        eventually(15, "active after READY=1") { sd.property("ActiveState") == "active" }
        // The limits the unit sets (docs/security.md, issue 13 row 12), as
        // the running daemon has them.
        XCTAssertEqual(sd.property("LimitNOFILE"), "65536")
        XCTAssertEqual(sd.property("MemoryMax"), "\(4 << 30)")
        // (systemd cannot raise it past its own hard limit: 20000 in some sandboxes.)
        func openFiles(_ pid: String) -> [String]? {
            let limits = sd.run(["cat", "/proc/\(pid)/limits"]).out
            return limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }?.split(separator: " ").suffix(3).map(String.init)
        }
        let ceiling = try XCTUnwrap(openFiles("1").flatMap { Int($0[1]) })
        let nofile = "\(min(65536, ceiling))"
        XCTAssertEqual(openFiles(sd.property("MainPID")), [nofile, nofile, "files"])
        let status = sd.systemctl("status", "mediaspool.service").out
        XCTAssertTrue(status.contains("Status: \"waiting 0, retry 0, running 0/"), status)

        let (result, error, _) = records(sd)
        sd.submit("sd-ok", probeManifest("clips/v1.mp4", extra: #","labels":{"via":"systemd"}"#))
        sd.submit("sd-bad", probeManifest("clips/missing.mp4"))
        eventually(15, "both jobs finished") { result("sd-ok") != nil && error("sd-bad") != nil }
        XCTAssertEqual(result("sd-ok")?.probe?.streams.count, 2)
        XCTAssertEqual(error("sd-bad")?.code, "INPUT_NOT_FOUND")
        eventually(5, "STATUS= counts the jobs") { sd.property("StatusText").contains("done 1, failed 1") }

        // journalctl -u mediaspool JOB_ID=… tells one job's story, with fields
        // (the done line is logged after the publish; journald takes it in asynchronously).
        var ok: [[String: Any]] = []
        eventually(10, "sd-ok's done line in the journal") {
            ok = journal(sd, ["-u", "mediaspool", "JOB_ID=sd-ok"])
            return ok.contains { $0["STATUS"] as? String == "done" }
        }
        XCTAssertGreaterThanOrEqual(ok.count, 2)
        XCTAssertTrue(ok.allSatisfy { $0["JOB_ID"] as? String == "sd-ok" })
        let done = try XCTUnwrap(ok.first { $0["STATUS"] as? String == "done" })
        XCTAssertEqual(done["JOB_TYPE"] as? String, "probe"); XCTAssertEqual(done["ATTEMPT"] as? String, "1")
        XCTAssertEqual(done["STEP"] as? String, "done"); XCTAssertNotNil((done["DURATION_MS"] as? String).flatMap(Int.init))
        var bad: [[String: Any]] = []
        eventually(10, "sd-bad's lines in the journal") {
            bad = journal(sd, ["-u", "mediaspool", "JOB_ID=sd-bad", "ERROR_CODE=INPUT_NOT_FOUND"])
            return !bad.isEmpty
        }
        XCTAssertEqual(bad.first?["STEP"] as? String, "check-paths")
    }

    func testWatchdogRestartsAStoppedDaemonAndTheJobFinishes() throws {
        let sd = try BootedSystemd(self)
        sd.install(dropIn: "WatchdogSec=3\nEnvironment=MEDIASPOOL_FAULTS=delay:long:4000\n")
        sd.installMedia()
        XCTAssertEqual(sd.systemctl("start", "mediaspool.service").code, 0)
        let (result, _, ids) = records(sd)
        sd.submit("long1", probeManifest("clips/v1.mp4"))
        eventually(10, "long1 running") { ids("processing").contains("long1") }
        let pid = sd.mainPID()
        XCTAssertGreaterThan(pid, 0)
        let t0 = Date()
        XCTAssertEqual(sd.systemctl("kill", "--signal=SIGSTOP", "mediaspool.service").code, 0)
        eventually(3 + 5, "systemd's watchdog restarts the daemon") { let p = sd.mainPID(); return p != 0 && p != pid && sd.property("ActiveState") == "active" }
        let restartedAfter = Date().timeIntervalSince(t0)
        print("watchdog restart after \(String(format: "%.1f", restartedAfter)) s (WatchdogSec=3)")
        XCTAssertGreaterThan(restartedAfter, 2.5, "not before the watchdog interval")
        XCTAssertEqual(sd.property("NRestarts"), "1")
        eventually(20, "long1 finished after the restart") { result("long1") != nil }
        XCTAssertEqual(result("long1")?.attempts, 2, "the killed attempt counted")
        XCTAssertEqual(result("long1")?.history.first?.code, "INTERRUPTED")
    }

    func testStopDrainsRequeuesAndTheJobFinishesAfterTheNextStart() throws {
        let sd = try BootedSystemd(self)
        sd.install(dropIn: "Environment=MEDIASPOOL_FAULTS=delay:long:60000 MEDIASPOOL_SHUTDOWN_GRACE_SECONDS=2\n")
        sd.installMedia()
        XCTAssertEqual(sd.systemctl("start", "mediaspool.service").code, 0)
        let (result, _, ids) = records(sd)
        sd.submit("long2", probeManifest("clips/v1.mp4"))
        sd.submit("quick", probeManifest("clips/v2.mkv"))
        eventually(10, "long2 running") { ids("processing").contains("long2") }
        let t0 = Date()
        XCTAssertEqual(sd.systemctl("stop", "mediaspool.service").code, 0)
        let took = Date().timeIntervalSince(t0)
        print("systemctl stop with a 60 s job running took \(String(format: "%.1f", took)) s (grace 2 s)")
        XCTAssertLessThan(took, 10, "drained within the grace period, not the job's length")
        XCTAssertEqual(sd.property("ActiveState"), "inactive")
        XCTAssertEqual(sd.property("Result"), "success", "a clean exit, not a kill")
        XCTAssertTrue(ids("retry").contains("long2"), "requeued")
        let st = FileManager.default.contents(atPath: sd.spool + "/state/long2.json").flatMap { RecordCoding.decode(JobState.self, Array($0)) }
        XCTAssertEqual(st?.history.last?.code, "INTERRUPTED")
        let log = journal(sd, ["-u", "mediaspool"]).compactMap { $0["MESSAGE"] as? String }
        XCTAssertTrue(log.contains { $0.hasPrefix("stopping: letting running jobs finish") })
        // Next start, without the slow fault: the job finishes.
        sd.install(dropIn: "Environment=\n")
        XCTAssertEqual(sd.systemctl("start", "mediaspool.service").code, 0)
        eventually(15, "long2 finished after the next start") { result("long2") != nil }
        XCTAssertEqual(result("long2")?.attempts, 1, "a graceful stop does not use up an attempt")
        XCTAssertEqual(result("long2")?.history.first?.code, "INTERRUPTED")
        XCTAssertNotNil(result("quick"))
    }

    /// Issue 17 under systemd: pause and cancel against the managed unit,
    /// and the notifier unit (its own sandbox) handing every end to a command.
    func testPauseCancelAndTheNotifierUnderSystemd() throws {
        let sd = try BootedSystemd(self)
        sd.install(dropIn: "Environment=MEDIASPOOL_FAULTS=delay:long:60000\n")
        sd.installMedia()
        sd.writeInside("/etc/mediaspool/notify.json", #"{"command": ["/bin/sh", "-c", "cat >> /var/lib/mediaspool-notify/got.jsonl"]}"#)
        XCTAssertEqual(sd.systemctl("start", "mediaspool.service").code, 0)
        XCTAssertEqual(sd.systemctl("start", "mediaspool-notify.service").code, 0, sd.systemctl("status", "mediaspool-notify.service").out)
        XCTAssertEqual(sd.property("ActiveState", "mediaspool-notify.service"), "active")
        let (result, error, ids) = records(sd)
        let cli = "/usr/local/bin/mediaspool"

        // Paused: the daemon reports the job waiting (it saw it) and starts nothing.
        XCTAssertEqual(sd.run([cli, "pause"]).code, 0)
        sd.submit("p1", probeManifest("clips/v1.mp4"))
        eventually(20, "the daemon reports p1 waiting while paused") {
            let status = sd.property("StatusText")
            return status.hasPrefix("paused") && status.contains("waiting 1,")
        }
        XCTAssertTrue(ids("inbox").contains("p1"), "not started while paused")
        XCTAssertNil(result("p1"))
        XCTAssertEqual(sd.run([cli, "resume"]).code, 0)
        eventually(20, "p1 done after resume") { result("p1") != nil }

        // Cancel a running 60 s job through the CLI: CANCELLED within seconds.
        sd.submit("long1", probeManifest("clips/v1.mp4"))
        eventually(20, "long1 running") { ids("processing").contains("long1") }
        let t0 = Date()
        let cancel = sd.run([cli, "cancel", "long1"])
        XCTAssertEqual(cancel.code, 0, cancel.err)
        XCTAssertEqual(error("long1")?.code, "CANCELLED")
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10)

        // The notifier ran the command for both ends.
        let got = "/proc/\(sd.pid1)/root/var/lib/mediaspool-notify/got.jsonl"
        eventually(20, "the notifier handed both ends to its command") {
            let text = (try? String(contentsOfFile: got, encoding: .utf8)) ?? ""
            return text.contains(#""id":"p1""#) && text.contains(#""event":"cancelled""#)
        }
        XCTAssertEqual(sd.systemctl("stop", "mediaspool-notify.service").code, 0)
        XCTAssertEqual(sd.property("Result", "mediaspool-notify.service"), "success")
    }

    func testReloadAppliesAChangedWorkerCountWithoutDroppingJobs() throws {
        let sd = try BootedSystemd(self)
        sd.install(dropIn: "Environment=MEDIASPOOL_FAULTS=delay:w:1500\n")
        sd.writeInside("/etc/mediaspool/config.json", #"{"workers": 1}"#)
        sd.installMedia()
        XCTAssertEqual(sd.systemctl("start", "mediaspool.service").code, 0)
        eventually(5, "1 worker") { sd.property("StatusText").contains("/1,") }
        let (result, _, _) = records(sd)
        for i in 0..<8 { sd.submit("w\(i)", probeManifest("clips/v1.mp4")) }
        usleep(500_000)
        sd.writeInside("/etc/mediaspool/config.json", #"{"workers": 3}"#)
        let pid = sd.mainPID()
        XCTAssertEqual(sd.systemctl("reload", "mediaspool.service").code, 0)
        XCTAssertEqual(sd.mainPID(), pid, "reloaded in place")
        eventually(5, "3 workers") { sd.property("StatusText").contains("/3,") }
        var sawParallel = false
        eventually(30, "all 8 jobs done") {
            if sd.property("StatusText").contains("running 3/3") || sd.property("StatusText").contains("running 2/3") { sawParallel = true }
            return (0..<8).allSatisfy { result("w\($0)") != nil }
        }
        XCTAssertTrue(sawParallel, "more than one job ran at once after the reload")
        for i in 0..<8 { XCTAssertEqual(result("w\(i)")?.attempts, 1, "w\(i) not dropped or re-run") }
    }

    func testTimerSweepRecoversAJobLeftStaleByAKilledWorker() throws {
        let sd = try BootedSystemd(self)
        // The daemon's own periodic check is pushed out of the way: only the
        // timer's sweep can recover the job.
        sd.install(dropIn: "Environment=MEDIASPOOL_RESCAN_SECONDS=3600\n",
                   timerDropIn: "[Timer]\nOnActiveSec=2s\nOnUnitActiveSec=2s\nAccuracySec=1s\n")
        sd.installMedia()
        XCTAssertEqual(sd.systemctl("start", "mediaspool.service").code, 0)
        // The daemon's first full scan (with its stale-job check) runs on the
        // watcher's thread and may end after READY=1: wait for it, or on a
        // loaded machine it finds the orphan below (seen in CI).
        eventually(60, "the daemon's first full scan") {
            journal(sd, ["-u", "mediaspool.service", "STEP=scan"]).contains { ($0["MESSAGE"] as? String)?.hasPrefix("first full scan done") == true }
        }
        // A job whose worker was killed: in processing/, attempt 1 counted, no lock held.
        let body = probeManifest("clips/v1.mp4")
        let state = RecordCoding.encode(JobState(id: "orphan", attempts: 1, history: [HistoryEntry(attempt: 1, startedAt: RFC3339.string(Date()))]))
        FileManager.default.createFile(atPath: sd.spool + "/state/orphan.json", contents: Data(state), attributes: [.posixPermissions: 0o664])
        FileManager.default.createFile(atPath: sd.spool + "/processing/orphan.json", contents: Data(body.utf8), attributes: [.posixPermissions: 0o664])
        let (result, _, _) = records(sd)
        let t0 = Date()
        XCTAssertEqual(sd.systemctl("start", "mediaspool-sweep.timer").code, 0)
        eventually(60, "the sweep recovered it and the daemon finished it") { result("orphan") != nil }
        print("timer started -> orphan done: \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
        XCTAssertEqual(result("orphan")?.attempts, 2)
        XCTAssertEqual(result("orphan")?.history.first?.code, "INTERRUPTED")
        var sweepLog: [String] = []
        eventually(10, "the sweep's summary in the journal") {
            sweepLog = journal(sd, ["-u", "mediaspool-sweep.service"]).compactMap { $0["MESSAGE"] as? String }
            return sweepLog.contains { $0.contains("sweep: 1 stale jobs requeued") }
        }
        XCTAssertEqual(sd.property("Result", "mediaspool-sweep.service"), "success")
        // Who recovered it, from the journal's own attribution (not from a
        // wait in which nothing happened): the sweep's unit logged the
        // recovery of this job; the daemon ran it afterwards and never
        // recovered it itself.
        let recoveredBy = { (unit: String) in
            self.journal(sd, ["-u", unit, "JOB_ID=orphan", "STEP=recover"]).compactMap { $0["MESSAGE"] as? String }
        }
        XCTAssertTrue(recoveredBy("mediaspool-sweep.service").contains { $0.hasPrefix("recovered stale job orphan") })
        XCTAssertEqual(recoveredBy("mediaspool.service"), [], "the daemon alone did not touch it")
        var ran: [[String: Any]] = []
        eventually(10, "the daemon's done line in the journal") {
            ran = journal(sd, ["-u", "mediaspool.service", "JOB_ID=orphan", "STATUS=done"])
            return !ran.isEmpty
        }
        XCTAssertEqual(ran.count, 1, "the daemon ran it, once")
    }

    /// A oneshot unit with the shipped unit's sandbox, every line of it, and
    /// another command.
    func sandboxedUnit(_ exec: String) throws -> String {
        let unit = try String(contentsOf: BootedSystemd.repo.appendingPathComponent("systemd/mediaspool.service"), encoding: .utf8)
        var out: [String] = []
        var sandboxLines = 0
        for line in unit.split(separator: "\n", omittingEmptySubsequences: false) {
            let key = line.split(separator: "=").first.map(String.init) ?? ""
            switch key {
            case "Type": out.append("Type=oneshot")
            case "ExecStart": out.append("ExecStart=\(exec)")
            case "ExecReload", "WatchdogSec", "Restart", "RestartSec", "NotifyAccess", "TimeoutStopSec", "TimeoutAbortSec", "KillMode": continue
            case "WantedBy": continue
            default:
                if key.hasPrefix("Protect") || key.hasPrefix("Private") || key.hasPrefix("Restrict") || key.hasPrefix("SystemCall") { sandboxLines += 1 }
                out.append(String(line))
            }
        }
        XCTAssertGreaterThan(sandboxLines, 20, "the unit's sandbox was carried over")
        return out.joined(separator: "\n")
    }

    /// FFmpeg's encoders (x264, x265, libvpx, AAC, Opus: the libraries the
    /// pipeline links) run under exactly the unit's sandbox. They call
    /// sched_setaffinity and friends, which a ~@resources filter would break.
    func testFFmpegEncodersWorkUnderTheUnitsSandbox() throws {
        let sd = try BootedSystemd(self)
        sd.install()
        let cases: [(String, String)] = [
            ("x264.mp4", "-c:v libx264 -preset veryfast -c:a aac"),
            ("x265.mp4", "-c:v libx265 -preset ultrafast -c:a aac"),
            ("vp9.webm", "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -c:a libopus"),
        ]
        for (name, codec) in cases {
            let unit = "enc-\(name.replacingOccurrences(of: ".", with: "-")).service"
            sd.writeInside("/etc/systemd/system/\(unit)", try sandboxedUnit(
                "/usr/bin/ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=sample_rate=48000 -t 1 -threads 2 \(codec) /var/spool/mediaspool/media/\(name)"))
            sd.systemctl("daemon-reload")
            let r = sd.systemctl("start", unit)
            let log = sd.run(["journalctl", "--no-pager", "-b", "-u", unit]).out
            XCTAssertEqual(r.code, 0, "\(name) under the sandbox: \(r.err) \(log)")
            let size = (try? FileManager.default.attributesOfItem(atPath: sd.spool + "/media/\(name)"))?[.size] as? Int ?? 0
            XCTAssertGreaterThan(size, 1000, "\(name) written")
        }
        // And the daemon itself, in-process, under the unit: every job type.
        sd.installMedia()
        XCTAssertEqual(sd.systemctl("start", "mediaspool.service").code, 0)
        let (result, error, _) = records(sd)
        let jobs: [(String, String)] = [
            ("x264", #"{"version":1,"type":"transcode","input":"clips/v1.mp4","output":{"path":"out/d-x264.mp4","video":{"preset":"veryfast"}}}"#),
            ("x265", #"{"version":1,"type":"transcode","input":"clips/v1.mp4","output":{"path":"out/d-x265.mp4","video":{"codec":"hevc","preset":"ultrafast"}}}"#),
            ("vp9", #"{"version":1,"type":"transcode","input":"clips/v1.mp4","output":{"path":"out/d-vp9.webm"}}"#),
            ("av1", #"{"version":1,"type":"transcode","input":"clips/v2.mkv","output":{"path":"out/d-av1.mkv","video":{"codec":"av1"}}}"#),
            ("thumb", #"{"version":1,"type":"thumbnail","input":"clips/v1.mp4","count":2,"output":{"path":"out/d-%d.webp"}}"#),
            ("audio", #"{"version":1,"type":"audio","input":"clips/v1.mp4","loudness":{"targetLufs":-16},"output":{"path":"out/d.m4a"}}"#),
            ("compose", #"{"version":1,"type":"compose","clips":[{"path":"clips/v1.mp4"},{"path":"stills/portrait.png","duration":1,"motion":"zoom-in"}],"transition":{"type":"crossfade","duration":0.5},"output":{"path":"out/d-compose.mp4"}}"#),
        ]
        for (id, body) in jobs { sd.submit(id, body) }
        eventually(120, "every job type done under the sandbox") { jobs.allSatisfy { result($0.0) != nil || error($0.0) != nil } }
        for (id, _) in jobs { XCTAssertNotNil(result(id), "\(id) under the sandbox: \(error(id)?.message ?? "")") }
        // And the sandbox does bite: creating a namespace is refused.
        sd.writeInside("/etc/systemd/system/enc-ns.service", try sandboxedUnit("/usr/bin/unshare --user true"))
        sd.systemctl("daemon-reload")
        XCTAssertNotEqual(sd.systemctl("start", "enc-ns.service").code, 0, "namespaces are refused inside the sandbox")
    }
}
