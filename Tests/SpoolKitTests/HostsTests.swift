@testable import SpoolKit
import Foundation
import Logging
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Shared mode's pieces (Hosts.swift): config keys, host ids, the file
/// system verdicts, heartbeats read as hostile files, and the random head
/// window of the queue.
final class HostsTests: XCTestCase {
    func testConfigKeysAndModeDefaults() throws {
        var c = Config()
        XCTAssertEqual(c.hosts, .single); XCTAssertNil(c.hostId); XCTAssertEqual(c.hostTimeoutSeconds, 60)
        XCTAssertFalse(c.allowUnfencedShared)
        XCTAssertEqual(c.rescanSeconds, 10)
        XCTAssertTrue(HostID.isValid(c.effectiveHostId), "the default is the machine's name, sanitised: \(c.effectiveHostId)")

        let dir = makeTempDir(self, "cfg")
        write(#"{"hosts":"shared","hostId":"node-b.lab","hostTimeoutSeconds":5,"allowUnfencedShared":true}"#, to: dir.appending("c.json"))
        try c.apply(file: dir.appending("c.json"))
        XCTAssertEqual(c.hosts, .shared); XCTAssertEqual(c.effectiveHostId, "node-b.lab")
        XCTAssertEqual(c.hostTimeoutSeconds, 5); XCTAssertTrue(c.allowUnfencedShared)
        XCTAssertEqual(c.rescanSeconds, 1, "shared mode rescans every second by default")
        XCTAssertEqual(c.heartbeatSeconds, 1.25, "a quarter of the host timeout")

        // An explicit rescanSeconds wins in either mode, in the file or the environment.
        write(#"{"hosts":"shared","rescanSeconds":7}"#, to: dir.appending("d.json"))
        var d = Config()
        try d.apply(file: dir.appending("d.json"))
        XCTAssertEqual(d.rescanSeconds, 7)
        var e = Config()
        try e.apply(environment: ["MEDIASPOOL_HOSTS": "shared", "MEDIASPOOL_HOST_ID": "n1", "MEDIASPOOL_HOST_TIMEOUT_SECONDS": "30",
                                  "MEDIASPOOL_ALLOW_UNFENCED_SHARED": "true"])
        XCTAssertEqual(e.hosts, .shared); XCTAssertEqual(e.hostId, "n1"); XCTAssertEqual(e.hostTimeoutSeconds, 30)
        XCTAssertTrue(e.allowUnfencedShared); XCTAssertEqual(e.rescanSeconds, 1)
        try e.apply(environment: ["MEDIASPOOL_RESCAN_SECONDS": "3"])
        XCTAssertEqual(e.rescanSeconds, 3)

        for (bad, key) in [(#"{"hosts":"many"}"#, "hosts"), (#"{"hostId":"Node_B"}"#, "hostId"), (#"{"hostId":""}"#, "hostId"),
                           (#"{"hostId":".hidden"}"#, "hostId"), (#"{"hostTimeoutSeconds":0}"#, "hostTimeoutSeconds"),
                           (#"{"allowUnfencedShared":"yes"}"#, "allowUnfencedShared")] {
            write(bad, to: dir.appending("bad.json"))
            var x = Config()
            XCTAssertSpoolError(try x.apply(file: dir.appending("bad.json")), .manifestInvalid, contains: key)
        }
        XCTAssertSpoolError(try Config().withEnvironment(["MEDIASPOOL_ALLOW_UNFENCED_SHARED": "maybe"]), .manifestInvalid, contains: "ALLOW_UNFENCED_SHARED")
    }

    func testHostIDSanitising() {
        XCTAssertEqual(HostID.sanitise("node-a"), "node-a")
        XCTAssertEqual(HostID.sanitise("Node_A.Example.COM"), "node-a.example.com")
        XCTAssertEqual(HostID.sanitise("..-x y"), "x-y", "no leading dot or dash, a space becomes a dash")
        XCTAssertEqual(HostID.sanitise("héte"), "h-te")
        XCTAssertEqual(HostID.sanitise(String(repeating: "a", count: 100))?.utf8.count, 64)
        XCTAssertNil(HostID.sanitise(""))
        XCTAssertNil(HostID.sanitise("..."))
        XCTAssertTrue(HostID.isValid("a")); XCTAssertTrue(HostID.isValid("0.b-c"))
        for bad in ["", "-a", ".a", "A", "a_b", "a/b", "a b", String(repeating: "a", count: 65)] { XCTAssertFalse(HostID.isValid(bad), bad) }
    }

    func testFileSystemVerdicts() throws {
        func v(_ t: UInt64, _ m: String? = nil) -> SpoolFileSystem.Verdict { SpoolFileSystem.classify(fType: t, mountType: m).verdict }
        XCTAssertEqual(v(0x00C3_6400), .fences)
        XCTAssertEqual(v(0x6573_5546, "fuse.ceph-fuse"), .fences)
        XCTAssertEqual(v(0x6573_5546, "fuse.glusterfs"), .doesNotFence)
        XCTAssertEqual(v(0x6573_5546, "fuse.juicefs"), .doesNotFence)
        XCTAssertEqual(v(0x6573_5546, "fuse.sshfs"), .untested)
        XCTAssertEqual(v(0x6573_5546, nil), .doesNotFence, "a FUSE mount of unknown type might be GlusterFS")
        XCTAssertEqual(v(0x6969), .untested)
        XCTAssertEqual(v(0xEF53), .local); XCTAssertEqual(v(0x5846_5342), .local); XCTAssertEqual(v(0x0102_1994), .local)
        XCTAssertEqual(v(0x1234_5678), .untested)
        XCTAssertEqual(SpoolFileSystem.classify(fType: 0x6573_5546, mountType: "fuse.ceph-fuse").name, "cephfs (ceph-fuse)")

        // Refused only where it is known not to fence, and only without the override.
        let gluster = SpoolFileSystem.classify(fType: 0x6573_5546, mountType: "fuse.glusterfs")
        XCTAssertSpoolError(try gluster.checkShared(allowUnfenced: false, spool: "/s"), .internal, contains: "--allow-unfenced-shared")
        XCTAssertNotNil(try gluster.checkShared(allowUnfenced: true, spool: "/s"))
        XCTAssertNil(try SpoolFileSystem.classify(fType: 0x00C3_6400, mountType: nil).checkShared(allowUnfenced: false, spool: "/s"))
        XCTAssertTrue(try XCTUnwrap(SpoolFileSystem.classify(fType: 0xEF53, mountType: nil).checkShared(allowUnfenced: false, spool: "/s")).contains("only one host"))
        XCTAssertTrue(try XCTUnwrap(SpoolFileSystem.classify(fType: 0x6969, mountType: nil).checkShared(allowUnfenced: false, spool: "/s")).contains("not been tested"))

        // The mount holding the path: the longest mount point, the last of equal ones, escapes undone.
        let info = """
        22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
        60 22 0:50 / /mnt/spool rw shared:30 - fuse.glusterfs gl:/vol rw,user_id=0
        61 60 0:51 / /mnt/spool rw shared:31 - fuse.ceph-fuse ceph-fuse rw,user_id=0
        62 22 0:52 / /mnt/spool\\040two rw shared:32 - fuse.juicefs redis://x rw
        63 22 0:53 / /mnt/spoolx rw shared:33 - tmpfs tmpfs rw
        """
        XCTAssertEqual(SpoolFileSystem.mountType(mountinfo: info, path: "/mnt/spool/jobs"), "fuse.ceph-fuse")
        XCTAssertEqual(SpoolFileSystem.mountType(mountinfo: info, path: "/mnt/spool two/s"), "fuse.juicefs")
        XCTAssertEqual(SpoolFileSystem.mountType(mountinfo: info, path: "/mnt/spoolx"), "tmpfs")
        XCTAssertEqual(SpoolFileSystem.mountType(mountinfo: info, path: "/var/spool"), "ext4")
        XCTAssertNil(SpoolFileSystem.mountType(mountinfo: "garbage\n", path: "/x"))

        // The real one, read from the kernel, for a temporary directory.
        let fs = try SpoolFileSystem.detect(makeTempDir(self, "fs"))
        XCTAssertFalse(fs.name.isEmpty)
    }

    func testHeartbeatsWrittenReadAndAged() throws {
        let root = makeTempDir(self, "hb")
        let layout = SpoolLayout(root: root)
        try layout.create()
        let now = Date()
        try Heartbeats.write(HostBeat(host: "node-a", pid: 11, startedAt: RFC3339.string(now), beatAt: RFC3339.string(now), workers: 2, jobs: ["j1", "j2"]), layout)
        try Heartbeats.write(HostBeat(host: "node-b", pid: 12, startedAt: RFC3339.string(now), beatAt: RFC3339.string(now.addingTimeInterval(-90)), workers: 4, jobs: []), layout)
        let hosts = Heartbeats.read(layout, timeout: 60, now: now)
        XCTAssertEqual(hosts.map(\.host), ["node-a", "node-b"])
        XCTAssertEqual(hosts[0].running, 2); XCTAssertEqual(hosts[0].jobs, ["j1", "j2"]); XCTAssertEqual(hosts[0].workers, 2)
        XCTAssertFalse(hosts[0].gone); XCTAssertEqual(hosts[0].pid, 11)
        XCTAssertTrue(hosts[1].gone, "a beat older than the timeout is gone"); XCTAssertEqual(hosts[1].ageSeconds, 90, accuracy: 1)
        XCTAssertFalse(Heartbeats.read(layout, timeout: 120, now: now)[1].gone)
        // Atomic and not left behind: no temporary file, and it is removed on request.
        XCTAssertEqual(try Sys.entries(in: layout.hosts).sorted(), ["node-a.json", "node-b.json"])
        Heartbeats.remove("node-b", layout)
        XCTAssertEqual(Heartbeats.read(layout, timeout: 60, now: now).map(\.host), ["node-a"])
        // Status lists them.
        var config = Config(); config.spool = root
        XCTAssertEqual(Inspector(layout: layout).status(health: Inspector.HealthPolicy(config)).hosts.map(\.host), ["node-a"])
    }

    func testHostileHeartbeatFilesArePassedOver() throws {
        let root = makeTempDir(self, "hb")
        let layout = SpoolLayout(root: root)
        try layout.create()
        let now = Date()
        func beat(_ host: String, jobs: [String] = []) -> String {
            String(decoding: RecordCoding.encode(HostBeat(host: host, pid: 1, startedAt: RFC3339.string(now), beatAt: RFC3339.string(now), workers: 1, jobs: jobs)), as: UTF8.self)
        }
        try Heartbeats.write(HostBeat(host: "good", pid: 1, startedAt: RFC3339.string(now), beatAt: RFC3339.string(now), workers: 1, jobs: []), layout)
        let h = layout.hosts
        // A symlink to a valid beat elsewhere, a FIFO, a directory, a file over 64 KiB,
        // garbage, a beat naming another host, a name that is no host id, a dot file.
        write(beat("elsewhere"), to: root.appending("elsewhere.json"))
        XCTAssertEqual(symlink(root.appending("elsewhere.json").string, h.appending("elsewhere.json").string), 0)
        XCTAssertEqual(mkfifo(h.appending("fifo.json").string, 0o644), 0)
        try Sys.mkdir(h.appending("dir.json"))
        write(String(repeating: " ", count: 70 * 1024) + beat("big"), to: h.appending("big.json"))
        write("{not json", to: h.appending("junk.json"))
        write(beat("good"), to: h.appending("impostor.json"))
        write(beat("Bad_Name"), to: h.appending("Bad_Name.json"))
        write(beat("hidden"), to: h.appending(".hidden.json"))
        write(#"{"host":"notime","pid":1,"startedAt":"x","beatAt":"yesterday","workers":1,"jobs":[]}"#, to: h.appending("notime.json"))
        write(beat("badjobs", jobs: ["ok-1", "../etc/passwd", "\u{1B}[2J"]), to: h.appending("badjobs.json"))
        let t0 = ContinuousClock.now
        let hosts = Heartbeats.read(layout, timeout: 60, now: now)
        XCTAssertLessThan((ContinuousClock.now - t0).seconds, 5, "the FIFO was not opened for a blocking read")
        XCTAssertEqual(hosts.map(\.host), ["badjobs", "good"])
        XCTAssertEqual(hosts[0].jobs, ["ok-1"], "ids that are no job ids are dropped")
    }

    /// hosts/ replaced by a symlink (a member of the spool's group can):
    /// nothing is read through it, and no beat is written through it.
    func testASymlinkedHostsDirectoryIsNeitherReadNorWritten() throws {
        let root = makeTempDir(self, "hb")
        let layout = SpoolLayout(root: root)
        try layout.create()
        let now = Date()
        let beat = HostBeat(host: "node-a", pid: 1, startedAt: RFC3339.string(now), beatAt: RFC3339.string(now), workers: 1, jobs: [])
        let elsewhere = makeTempDir(self, "elsewhere")
        write(String(decoding: RecordCoding.encode(beat), as: UTF8.self), to: elsewhere.appending("node-a.json"))
        XCTAssertEqual(symlink(elsewhere.string, layout.hosts.string), 0)
        XCTAssertEqual(Heartbeats.read(layout, timeout: 60, now: now).count, 0)
        XCTAssertThrowsError(try Heartbeats.write(HostBeat(host: "node-b", pid: 1, startedAt: RFC3339.string(now), beatAt: RFC3339.string(now), workers: 1, jobs: []), layout))
        Heartbeats.remove("node-a", layout)
        XCTAssertEqual(try Sys.entries(in: elsewhere), ["node-a.json"], "nothing written or removed through the symlink")
    }

    func testSharedHeadWindowKeepsPriorityAndFairnessButShuffles() {
        func e(_ id: String, _ prio: Int = 0, tenant: String = "", at: Int64) -> QueueEntry {
            QueueEntry(id: id, source: .inbox, priority: prio, tenant: tenant, arrival: at, notBefore: 0)
        }
        var firsts = Set<String>()
        for _ in 0..<40 {
            let q = JobQueue(headWindow: 4)
            for i in 0..<10 { q.upsert(e("low-\(i)", 0, at: Int64(i))) }
            q.upsert(e("high-0", 5, at: 100)); q.upsert(e("high-1", 5, at: 101))
            var order: [String] = []
            while q.count > 0, let x = q.next() { order.append(x.id); q.finished(x) }
            XCTAssertEqual(Set(order.prefix(2)), ["high-0", "high-1"], "priority first, always")
            XCTAssertEqual(order.count, 12, "every entry once")
            XCTAssertTrue(["low-0", "low-1", "low-2", "low-3"].contains(order[2]), "only the head window of 4 is drawn from: \(order)")
            // No entry waits behind more than window - 1 later ones.
            for (pos, id) in order.dropFirst(2).enumerated() { XCTAssertLessThan(Int(id.dropFirst(4))! - pos, 4, "\(order)") }
            firsts.insert(order[2])
        }
        XCTAssertGreaterThan(firsts.count, 1, "the head is drawn at random")
        // Tenants still alternate.
        let q = JobQueue(headWindow: 16)
        for i in 0..<20 { q.upsert(e("big-\(i)", tenant: "big", at: Int64(i))) }
        q.upsert(e("small-0", tenant: "small", at: 1000))
        let picks = (0..<2).map { _ in q.next()! }
        XCTAssertEqual(Set(picks.map(\.tenant)), ["big", "small"])
        // Window 1 is the strict order.
        let strict = JobQueue()
        for i in 0..<5 { strict.upsert(e("s-\(i)", at: Int64(5 - i))) }
        XCTAssertEqual((0..<5).map { _ in strict.next()!.id }, ["s-4", "s-3", "s-2", "s-1", "s-0"])
    }

    func testRecordsAndEventsNameTheHost() throws {
        HostID.current = "node-t"
        defer { HostID.current = HostID.machine }
        let root = makeTempDir(self, "rec")
        let layout = SpoolLayout(root: root)
        try layout.create()
        let r = ResultRecord(id: "a", type: "probe", attempts: 1, startedAt: "x", completedAt: "y", durationMs: 1, tenant: nil, labels: [:],
                             steps: [], outputs: [], probe: nil, history: [])
        XCTAssertEqual(r.host, "node-t")
        let encoded = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(RecordCoding.encode(r))) as? [String: Any])
        XCTAssertEqual(encoded["host"] as? String, "node-t")
        // A record of an older version, without the field, still decodes.
        var old = encoded; old["host"] = nil
        XCTAssertNil(RecordCoding.decode(ResultRecord.self, Array(try JSONSerialization.data(withJSONObject: old)))?.host)
        try EventLog(layout: layout).append(JobEvent(.held, id: "a", state: "hold"))
        let reader = EventReader(layout: layout)
        let lines = try reader.read(after: reader.start)
        XCTAssertEqual(lines.map(\.event.host), ["node-t"])
    }
}

extension Config {
    func withEnvironment(_ env: [String: String]) throws(SpoolError) -> Config {
        var c = self
        try c.apply(environment: env)
        return c
    }
}

/// Recovery in shared mode cannot see other hosts' processes: a temporary
/// whose pid is not alive here may be another host's write in progress.
final class SharedRecoveryTests: XCTestCase {
    func testAnotherHostsTemporaryIsLeftUntilItIsOld() throws {
        let root = makeTempDir(self, "tmp")
        var config = Config(); config.spool = root
        try config.layout.create()
        // A pid no process has here (above the kernel's pid_max of 2^22).
        let name = ".x.result.json.tmp-2147483000-7"
        let path = config.layout.done.appending(name)
        var r = Recovery.Report()
        config.hosts = .shared
        write("{}", to: path)
        Recovery(config: config, logger: Logger(label: "t")).removeTemporaries(&r)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path.string), "a fresh temporary may be another host's write")
        try Sys.setModificationTime(path, seconds: Date().timeIntervalSince1970 - Recovery.sharedTemporaryAgeSeconds - 60)
        Recovery(config: config, logger: Logger(label: "t")).removeTemporaries(&r)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path.string), "an old one is abandoned")
        config.hosts = .single
        write("{}", to: path)
        Recovery(config: config, logger: Logger(label: "t")).removeTemporaries(&r)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path.string), "one host: a dead pid is enough")
        // A process in single mode (a sweep run by hand) on a spool where a
        // shared daemon has beaten (hosts/ exists) keeps the shared rule.
        try FileManager.default.createDirectory(atPath: config.layout.hosts.string, withIntermediateDirectories: true)
        write("{}", to: path)
        Recovery(config: config, logger: Logger(label: "t")).removeTemporaries(&r)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path.string), "single mode on a spool with hosts/: may be another host's")
    }
}
