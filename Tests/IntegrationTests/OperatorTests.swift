import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// What operators run: the health check's exit codes, retention in the
/// sweep, the metrics file and listener.
final class OperatorTests: XCTestCase {
    func status(_ h: SpoolHarness, _ args: [String] = [], env: [String: String] = [:]) throws -> (Int32, Inspector.Status) {
        let (code, out) = h.cli(["status", "--json"] + args, env: env)
        return (code, try JSONDecoder().decode(Inspector.Status.self, from: Data(out.utf8)))
    }

    func testStatusExitCodesTellHealthyNoDaemonBacklogAndFailures() throws {
        let h = SpoolHarness(self)
        var (code, s) = try status(h)
        XCTAssertEqual(code, 3); XCTAssertEqual(s.exitCode, 3); XCTAssertFalse(s.daemonAlive)
        XCTAssertTrue(s.problems.first?.contains("systemctl status mediaspool") ?? false)

        // One worker held by a slow job; a second job waits in inbox/.
        h.start(workers: 1, env: ["MEDIASPOOL_FAULTS": "delay:slow:6000"])
        h.submit("slow", probeManifest("clips/v1.mp4"))
        eventually(5, "slow job running") { h.names(h.layout.processing).contains("slow.json") }
        (code, s) = try status(h)
        XCTAssertEqual(code, 0, "\(s.problems)"); XCTAssertTrue(s.healthy); XCTAssertTrue(s.daemonAlive)
        XCTAssertEqual(s.running.map(\.id), ["slow"])
        h.submit("waiting", probeManifest("clips/v1.mp4"))
        sleep(2)
        (code, s) = try status(h, ["--max-waiting", "1"])
        XCTAssertEqual(code, 4, "backlog older than 1 s: \(s)"); XCTAssertFalse(s.healthy)
        XCTAssertGreaterThanOrEqual(s.oldestWaitingSeconds ?? 0, 1)
        XCTAssertTrue(s.problems.contains { $0.contains("healthMaxWaitingSeconds") })
        (code, _) = try status(h, ["--max-waiting", "60"])
        XCTAssertEqual(code, 0)
        eventually(15, "both done") { h.finishedCount == 2 }

        // Three failures of five ended jobs: 60% > 50%.
        for i in 0..<3 { h.submit("bad\(i)", probeManifest("clips/none-\(i).mp4")) }
        eventually(10, "all ended") { h.finishedCount == 5 }
        let few = ["MEDIASPOOL_HEALTH_MIN_JOBS": "5"]
        (code, s) = try status(h, env: few)
        XCTAssertEqual(code, 5, "\(s)"); XCTAssertEqual(s.recentFailed, 3); XCTAssertEqual(s.recentDone, 2)
        XCTAssertEqual(s.failureRate ?? 0, 0.6, accuracy: 0.001)
        XCTAssertTrue(s.problems.contains { $0.contains("list --state failed") })
        (code, _) = try status(h, ["--max-failure-rate", "0.7"], env: few)
        XCTAssertEqual(code, 0)
        (code, _) = try status(h)   // default healthMinJobs 10: too few jobs to judge
        XCTAssertEqual(code, 0)
        // Several verdicts: the lowest code wins, and the text form exits the same.
        h.stopAll()
        let text = h.cli(["status"], env: few)
        XCTAssertEqual(text.code, 3)
        XCTAssertTrue(text.out.contains("UNHEALTHY"))
    }

    func backdate(_ p: FilePath, days: Double) {
        let t = Date().addingTimeInterval(-days * 86400).timeIntervalSince1970
        var times = [timespec(tv_sec: Int(t), tv_nsec: 0), timespec(tv_sec: Int(t), tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, p.string, &times, 0), 0, "backdating \(p)")
    }

    func testRetentionPurgesBackdatedJobsAndFreesTheirIds() throws {
        let h = SpoolHarness(self)
        h.start(workers: 2)
        func thumb(_ id: String) -> String { #"{"version":1,"type":"thumbnail","input":"clips/v1.mp4","at":[0.5],"output":{"path":"out/\#(id).jpg"}}"# }
        for id in ["old1", "old2", "new1"] { h.submit(id, thumb(id)) }
        for id in ["oldbad", "newbad"] { h.submit(id, probeManifest("clips/none-\(id).mp4")) }
        eventually(20, "all ended") { h.finishedCount == 5 }
        h.stopAll()
        for id in ["old1", "old2"] { backdate(h.layout.result(id), days: 10) }
        backdate(h.layout.errorRecord("oldbad"), days: 4)
        backdate(h.layout.errorRecord("newbad"), days: 1)

        // No retention configured: nothing goes.
        var r = h.cli(["sweep", "--json"])
        XCTAssertEqual(r.code, 0)
        XCTAssertEqual(h.ids(in: h.layout.done), ["old1", "old2", "new1"])

        let env = ["MEDIASPOOL_RETAIN_DONE_DAYS": "7", "MEDIASPOOL_RETAIN_FAILED_DAYS": "3"]
        r = h.cli(["sweep", "--json"], env: env)
        XCTAssertEqual(r.code, 0)
        let report = try JSONDecoder().decode(Recovery.Report.self, from: Data(r.out.utf8))
        XCTAssertEqual(report.purged, 3); XCTAssertEqual(report.outputsPurged, 0)
        XCTAssertEqual(h.ids(in: h.layout.done), ["new1"])
        XCTAssertEqual(h.ids(in: h.layout.failed), ["newbad"])
        for id in ["old1", "old2"] {
            XCTAssertNil(h.result(id)); XCTAssertFalse(Sys.exists(h.layout.manifest(id, in: h.layout.done)))
            XCTAssertTrue(Sys.exists(h.media.appending("out/\(id).jpg")), "outputs kept by default")
        }
        XCTAssertNil(h.error("oldbad"))
        XCTAssertNotNil(h.result("new1")); XCTAssertNotNil(h.error("newbad"))

        // With retentionPurgesOutputs the output goes too.
        backdate(h.layout.result("new1"), days: 8)
        r = h.cli(["sweep", "--json"], env: env.merging(["MEDIASPOOL_RETENTION_PURGES_OUTPUTS": "true"]) { a, _ in a })
        XCTAssertEqual(try JSONDecoder().decode(Recovery.Report.self, from: Data(r.out.utf8)).outputsPurged, 1)
        XCTAssertFalse(Sys.exists(h.media.appending("out/new1.jpg")))
        XCTAssertTrue(Sys.exists(h.media.appending("out/old1.jpg")), "an earlier purge's outputs are not touched")

        // A purged id is free again: the same manifest runs anew instead of
        // being dropped as a duplicate.
        h.start(workers: 1)
        h.submit("old1", thumb("old1"))
        eventually(15, "old1 ran again") { h.result("old1") != nil }
        XCTAssertEqual(h.result("old1")?.attempts, 1)
        h.stopAll()
        XCTAssertEqual(h.temporaryFiles, [])
    }

    func testMetricsTextfileAndUnixSocket() throws {
        let h = SpoolHarness(self)
        let prom = h.root.appending("metrics/mediaspool.prom")
        let sock = h.root.appending("metrics.sock")
        try FileManager.default.createDirectory(atPath: prom.removingLastComponent().string, withIntermediateDirectories: true)
        h.start(workers: 2, env: ["MEDIASPOOL_METRICS_TEXTFILE": prom.string, "MEDIASPOOL_METRICS_LISTEN": "unix:" + sock.string,
                                  "MEDIASPOOL_METRICS_INTERVAL_SECONDS": "1"])
        for i in 0..<3 { h.submit("p\(i)", probeManifest("clips/v1.mp4")) }
        h.submit("bad", probeManifest("clips/none.mp4"))
        h.submit("t", #"{"version":1,"type":"thumbnail","input":"clips/v1.mp4","at":[0.5],"output":{"path":"out/t.jpg"}}"#)
        eventually(15, "all ended") { h.finishedCount == 5 }
        // The counters change after the publish, and the file is rewritten
        // every second: wait for the export that has them all.
        var text = ""
        eventually(15, "the textfile has the final counts") {
            text = h.bytes(prom).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let m = parseExposition(text)
            return m[#"mediaspool_jobs_total{type="probe",outcome="done",code=""}"#] == 3
                && m[#"mediaspool_jobs_total{type="thumbnail",outcome="done",code=""}"#] == 1 && m["mediaspool_busy_workers"] == 0
        }
        let m = parseExposition(text)
        XCTAssertEqual(m[#"mediaspool_jobs_total{type="probe",outcome="done",code=""}"#], 3)
        XCTAssertEqual(m[#"mediaspool_jobs_total{type="probe",outcome="failed",code="INPUT_NOT_FOUND"}"#], 1)
        XCTAssertEqual(m[#"mediaspool_jobs_total{type="thumbnail",outcome="done",code=""}"#], 1)
        XCTAssertEqual(m[#"mediaspool_job_duration_seconds_count{type="probe"}"#], 4)
        XCTAssertEqual(m[#"mediaspool_job_duration_seconds_bucket{type="probe",le="+Inf"}"#], 4)
        XCTAssertEqual(m[#"mediaspool_queue_wait_seconds_count{type="thumbnail"}"#], 1)
        XCTAssertEqual(m[#"mediaspool_queue_depth{state="inbox"}"#], 0)
        XCTAssertEqual(m[#"mediaspool_workers"#], 2)
        XCTAssertEqual(m[#"mediaspool_busy_workers"#], 0)
        XCTAssertNotNil(m["mediaspool_oldest_waiting_seconds"])
        XCTAssertTrue(text.contains("# TYPE mediaspool_jobs_total counter"))

        // The same over HTTP on the Unix socket.
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sf", "--unix-socket", sock.string, "http://localhost/metrics"]
        let pipe = Pipe(); curl.standardOutput = pipe
        try curl.run()
        let served = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        waitForExit(curl)
        XCTAssertEqual(exitCode(curl), 0)
        XCTAssertEqual(parseExposition(served)[#"mediaspool_jobs_total{type="probe",outcome="done",code=""}"#], 3)
        h.stopAll()
        // After the stop (a rewrite runs every second while the daemon lives).
        XCTAssertEqual(h.names(prom.removingLastComponent()), ["mediaspool.prom"], "written atomically: no temporary left")
        XCTAssertEqual(exitCode(h.daemons[0]), 0)
        XCTAssertFalse(Sys.exists(sock), "the socket is removed at exit")
    }

    /// Prometheus text exposition: "name{labels} value" per sample line.
    func parseExposition(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let sp = line.lastIndex(of: " "), let v = Double(line[line.index(after: sp)...]) else { continue }
            out[String(line[..<sp])] = v
        }
        return out
    }
}
