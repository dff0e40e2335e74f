import Foundation
import SpoolKit
import SystemPackage
import XCTest

/// Shared mode (config `hosts: "shared"`, docs/scale-out.md) with two
/// daemons of different host ids on one local spool: the hosts of a
/// shared file system, without the file system (the Ceph test of issue 15
/// is another one).
final class SharedHostsTests: XCTestCase {
    struct StatusView: Decodable {
        struct Host: Decodable { var host: String; var pid: Int32; var gone: Bool; var running: Int; var workers: Int; var jobs: [String] }
        struct Running: Decodable { var id: String; var host: String? }
        var hosts: [Host]
        var running: [Running]
    }

    func status(_ h: SpoolHarness) -> StatusView? {
        let r = h.cli(["status", "--json"])
        return try? JSONDecoder().decode(StatusView.self, from: Data(r.out.utf8))
    }

    func testTwoHostsShareASpoolEachJobOnceWithHostsInRecordsEventsAndStatus() throws {
        let h = SpoolHarness(self)
        let env = ["MEDIASPOOL_HOSTS": "shared", "MEDIASPOOL_HOST_TIMEOUT_SECONDS": "3", "MEDIASPOOL_SHUTDOWN_GRACE_SECONDS": "0",
                   "MEDIASPOOL_FAULTS": "delay:slow-:8000"]
        let a = h.start(workers: 2, env: env, args: ["--host-id", "host-a"])
        h.waitUntilChecked()
        let b = h.start(workers: 2, env: env, args: ["--host-id", "host-b"])
        h.waitUntilChecked()
        let hosts: Set<String> = ["host-a", "host-b"]
        eventually(60, "both hosts beat in status --json") { Set(status(h)?.hosts.filter { !$0.gone }.map(\.host) ?? []) == hosts }
        for log in [h.log(0), h.log(1)] {
            XCTAssertTrue(log.contains("shared mode"), log)
            XCTAssertTrue(log.contains("is a local file system: only one host can see this spool"), "a local spool in shared mode is warned about")
        }

        // N jobs, each done exactly once, by one of the two hosts.
        let n = 60
        for i in 0..<n { h.submit("j\(i)", probeManifest(Fixtures.all[i % 3].name)) }
        eventually(stall: 60, "\(n) jobs done", progress: { h.ids(in: h.layout.done).count }) { h.ids(in: h.layout.done).count == n }
        var by: [String: Int] = [:]
        for i in 0..<n {
            let r = h.result("j\(i)")
            XCTAssertEqual(r?.attempts, 1, "j\(i)")
            XCTAssertTrue(hosts.contains(r?.host ?? "none"), "j\(i) names its host: \(r?.host ?? "none")")
            by[r?.host ?? "none", default: 0] += 1
            XCTAssertEqual(h.allLogs.components(separatedBy: "started probe job j\(i) ").count, 2, "j\(i) started exactly once")
        }
        XCTAssertEqual(by.values.reduce(0, +), n)
        XCTAssertTrue(h.ids(in: h.layout.failed).isEmpty)

        // Four slow jobs: two workers each, so each host runs two; `status`
        // names the host of every running job, the heartbeats list them.
        for i in 0..<4 { h.submit("slow-\(i)", probeManifest(Fixtures.all[0].name)) }
        var seen: StatusView?
        eventually(60, "four slow jobs running on both hosts") {
            guard let s = status(h) else { return false }
            seen = s
            let slow = s.running.filter { $0.id.hasPrefix("slow-") }
            return slow.count == 4 && Set(slow.compactMap(\.host)) == hosts
                && s.hosts.allSatisfy { $0.running == 2 && $0.workers == 2 && $0.jobs.allSatisfy { $0.hasPrefix("slow-") } }
        }
        let onB = Set(seen?.running.filter { $0.host == "host-b" }.map(\.id) ?? [])
        XCTAssertEqual(onB.count, 2)
        let text = h.cli(["status"]).out
        XCTAssertTrue(text.contains("host host-a pid \(a.processIdentifier) up"), text)
        XCTAssertTrue(text.contains("host host-b pid \(b.processIdentifier) up"), text)
        XCTAssertTrue(text.contains("host host-b"), text)

        // kill -9 of host-b mid-job: its heartbeat ages to gone (the host
        // timeout is 3 s), host-a stays up and recovers b's jobs.
        kill(b.processIdentifier, SIGKILL)
        waitForExit(b)
        eventually(60, "host-b shown as gone, host-a up") {
            guard let s = status(h) else { return false }
            return s.hosts.first { $0.host == "host-b" }?.gone == true && s.hosts.first { $0.host == "host-a" }?.gone == false
        }
        XCTAssertEqual(Set(status(h)?.hosts.first { $0.host == "host-b" }?.jobs ?? []), onB, "a gone host shows what it was running")
        XCTAssertTrue(h.cli(["status"]).out.contains("host host-b pid \(b.processIdentifier) GONE"))
        eventually(stall: 60, "the slow jobs done", progress: { h.ids(in: h.layout.done).count }) { h.ids(in: h.layout.done).count == n + 4 }
        for id in onB {
            let r = h.result(id)
            XCTAssertEqual(r?.host, "host-a", "\(id) was recovered and finished by host-a")
            XCTAssertEqual(r?.attempts, 2, "\(id): the attempt that died counts")
            XCTAssertEqual(h.allLogs.components(separatedBy: "started probe job \(id) ").count, 3, "\(id) started once on each host")
        }

        // Every event line names one of the two hosts.
        var lines = 0
        for seg in h.names(h.layout.events) where seg.hasSuffix(".jsonl") {
            let text = try String(contentsOfFile: h.layout.events.appending(seg).string, encoding: .utf8)
            for line in text.split(separator: "\n") {
                lines += 1
                let host = (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["host"] as? String
                XCTAssertTrue(hosts.contains(host ?? "none"), "event names its host: \(line)")
            }
        }
        XCTAssertGreaterThanOrEqual(lines, 2 * (n + 4), "claimed and done of every job")

        // A clean stop removes the host's own heartbeat; the dead one's stays, gone.
        kill(a.processIdentifier, SIGTERM)
        waitForExit(a)
        XCTAssertEqual(exitCode(a), 0)
        XCTAssertEqual(h.names(h.layout.hosts).filter { !SpoolName.isTemporary($0) }.sorted(), ["host-b.json"])
        // A temporary host-b was writing when it was killed (its heartbeat,
        // a progress or state file) stays: in shared mode another host's
        // temporary is removed only once it is 10 min old. None of host-a's.
        let killed = ".tmp-\(b.processIdentifier)-"
        XCTAssertEqual(h.temporaryFiles.filter { !$0.contains(killed) }, [])
    }

    /// A second daemon with a host id that beats already is warned at start.
    func testASecondDaemonWithTheSameHostIDIsWarnedAbout() throws {
        let h = SpoolHarness(self)
        let env = ["MEDIASPOOL_HOSTS": "shared"]
        h.start(workers: 1, env: env, args: ["--host-id", "twin"])
        eventually(60, "the first daemon beats") { status(h)?.hosts.map(\.host) == ["twin"] }
        h.start(workers: 1, env: env, args: ["--host-id", "twin"])
        h.waitUntilChecked()
        eventually(30, "the second daemon warns") { h.log(1).contains("if another daemon runs with host id twin") }
        XCTAssertFalse(h.log(0).contains("if another daemon runs with host id"), "the first one found no beat of its id")
        h.stopAll()
    }

    /// Single mode (the default) writes no heartbeat, and its records name
    /// the host all the same.
    func testSingleModeNamesTheHostWithoutHeartbeats() throws {
        let h = SpoolHarness(self)
        h.start(workers: 1, args: ["--host-id", "solo"])
        h.submit("a", probeManifest(Fixtures.all[0].name))
        eventually(60, "a done") { h.result("a") != nil }
        XCTAssertEqual(h.result("a")?.host, "solo")
        XCTAssertEqual(status(h)?.hosts.count, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.layout.hosts.string))
        XCTAssertTrue(h.log(0).contains("host solo, single mode"), h.log(0))
        h.stopAll()
    }
}
