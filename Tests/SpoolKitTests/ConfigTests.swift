import SpoolKit
import SystemPackage
import XCTest

final class ConfigTests: XCTestCase {
    func testFileThenEnvironment() throws {
        let dir = makeTempDir(self, "cfg")
        write(#"{"spool":"/srv/spool","workers":3,"maxAttempts":4,"backoffInitialSeconds":1,"limits":{"maxWidth":1920}}"#, to: dir.appending("c.json"))
        var c = Config()
        try c.apply(file: dir.appending("c.json"))
        XCTAssertEqual(c.spool, "/srv/spool"); XCTAssertEqual(c.workers, 3); XCTAssertEqual(c.maxAttempts, 4)
        XCTAssertEqual(c.limits.maxWidth, 1920)
        XCTAssertEqual(c.effectiveMediaRoot, "/srv/spool/media")
        try c.apply(environment: ["MEDIASPOOL_WORKERS": "5", "MEDIASPOOL_ALLOW_ROOTS": "/a:/b"])
        XCTAssertEqual(c.workers, 5); XCTAssertEqual(c.allowRoots, ["/a", "/b"])
        XCTAssertEqual(c.backoff(afterAttempt: 1), 1); XCTAssertEqual(c.backoff(afterAttempt: 3), 4)
    }

    /// The hosts of a shared spool mount it at different paths: the daemon
    /// settings they must agree on name paths inside the spool relative to it.
    func testDaemonSettingsNamePathsInsideTheSpoolRelativeToIt() {
        var a = Config(), b = Config()
        a.spool = "/mnt/hostA/spool"; b.spool = "/srv/ceph/spool/"
        XCTAssertEqual(DaemonLock.Settings(a), DaemonLock.Settings(b), "the default media root, media/ in the spool")
        XCTAssertEqual(DaemonLock.Settings(a).mediaRoot, "<spool>/media")
        a.allowRoots = ["/mnt/hostA/spool/extra/"]; b.allowRoots = ["/srv/ceph/spool/extra"]
        XCTAssertEqual(DaemonLock.Settings(a), DaemonLock.Settings(b))
        b.mediaRoot = "/srv/ceph/media"
        XCTAssertNotEqual(DaemonLock.Settings(a), DaemonLock.Settings(b), "a media root outside the spool is compared as it is")
        // An older daemon wrote the absolute path: read relative to this spool.
        var old = DaemonLock.Settings(Config()); old.mediaRoot = "/mnt/hostA/spool/media"
        a.mediaRoot = nil; a.allowRoots = []
        XCTAssertEqual(old.relative(to: "/mnt/hostA/spool").mediaRoot, DaemonLock.Settings(a).mediaRoot)
        a.mediaRoot = "/mnt/hostA/spoolish/media"
        XCTAssertEqual(DaemonLock.Settings(a).mediaRoot, "/mnt/hostA/spoolish/media", "a sibling whose name starts alike is outside")
    }

    /// `localRoots` (host-local mount points of logical roots) is read from
    /// the file and the environment, and left out of the settings two
    /// daemons must agree on.
    func testLocalRootsAreReadAndAreNoSharedSetting() throws {
        let dir = makeTempDir(self, "cfg")
        write(#"{"mediaRoot":"/shared/media","localRoots":{"/shared/media/":"/mnt/ceph/media"}}"#, to: dir.appending("c.json"))
        var a = Config()
        try a.apply(file: dir.appending("c.json"))
        XCTAssertEqual(a.localRoots, ["/shared/media": "/mnt/ceph/media"])
        XCTAssertEqual(a.pathPolicy.local("/shared/media/a.mp4"), "/mnt/ceph/media/a.mp4")
        var b = Config()
        b.mediaRoot = "/shared/media"
        try b.apply(environment: ["MEDIASPOOL_LOCAL_ROOTS": "/shared/media=/srv/media:/x=/y"])
        XCTAssertEqual(b.localRoots, ["/shared/media": "/srv/media", "/x": "/y"])
        XCTAssertEqual(DaemonLock.Settings(a), DaemonLock.Settings(b))
        write(#"{"localRoots":{"relative":"/y"}}"#, to: dir.appending("bad.json"))
        XCTAssertNil(a.localRootsProblem)
        var below = a
        below.localRoots = ["/shared/media/archive": "/mnt/x"]
        XCTAssertNotNil(below.localRootsProblem, "a key below a root would map inputs and not outputs' directories")
        var above = a
        above.localRoots = ["/shared": "/mnt/ceph"]
        XCTAssertNil(above.localRootsProblem)
        var slash = a
        slash.localRoots = ["/shared/media": "/"]
        XCTAssertNotNil(slash.localRootsProblem)
        var c = Config()
        XCTAssertThrowsError(try c.apply(file: dir.appending("bad.json")))
        XCTAssertThrowsError(try c.apply(environment: ["MEDIASPOOL_LOCAL_ROOTS": "/x"]))
    }

    func testDefaultsFollowTheSpec() {
        let c = Config()
        XCTAssertEqual(c.maxAttempts, 3); XCTAssertEqual(c.timeoutSeconds, 1800)
        XCTAssertEqual(c.backoff(afterAttempt: 1), 30); XCTAssertEqual(c.backoff(afterAttempt: 2), 60)
        XCTAssertEqual(c.backoff(afterAttempt: 9), 600)
    }

    func testUnknownKeyIsRefused() {
        let dir = makeTempDir(self, "cfg")
        write(#"{"wrokers":3}"#, to: dir.appending("c.json"))
        var c = Config()
        XCTAssertSpoolError(try c.apply(file: dir.appending("c.json")), .manifestInvalid, contains: "wrokers")
    }

    func testOperatorKeys() throws {
        let dir = makeTempDir(self, "cfg")
        write(#"{"healthMaxWaitingSeconds":60,"healthMaxFailureRate":0.2,"retainDoneDays":30,"retentionPurgesOutputs":true,"metricsTextfile":"/var/lib/node/m.prom","metricsListen":"[::1]:9464"}"#, to: dir.appending("c.json"))
        var c = Config()
        try c.apply(file: dir.appending("c.json"))
        XCTAssertEqual(c.healthMaxWaitingSeconds, 60); XCTAssertEqual(c.healthMaxFailureRate, 0.2)
        XCTAssertEqual(c.retainDoneDays, 30); XCTAssertNil(c.retainFailedDays); XCTAssertTrue(c.retentionPurgesOutputs)
        XCTAssertEqual(c.metricsTextfile, "/var/lib/node/m.prom")
        XCTAssertEqual(MetricsEndpoint(c.metricsListen!), .tcp(host: "::1", port: 9464))
        XCTAssertEqual(MetricsEndpoint("localhost:9100"), .tcp(host: "127.0.0.1", port: 9100))
        XCTAssertEqual(MetricsEndpoint("unix:/run/m.sock"), .unix("/run/m.sock"))
        for bad in ["0.0.0.0:9464", "192.168.1.5:80", "127.0.0.1:0", "127.0.0.1:99999", "unix:relative.sock", "9464"] {
            XCTAssertNil(MetricsEndpoint(bad), "\(bad) must be refused: metrics stay on loopback")
        }
        write(#"{"metricsListen":"0.0.0.0:9464"}"#, to: dir.appending("d.json"))
        XCTAssertSpoolError(try c.apply(file: dir.appending("d.json")), .manifestInvalid, contains: "metricsListen")
        write(#"{"metricsTextfile":"/tmp/m.txt"}"#, to: dir.appending("e.json"))
        XCTAssertSpoolError(try c.apply(file: dir.appending("e.json")), .manifestInvalid, contains: ".prom")
        try c.apply(environment: ["MEDIASPOOL_RETAIN_FAILED_DAYS": "2.5", "MEDIASPOOL_HEALTH_MIN_JOBS": "3"])
        XCTAssertEqual(c.retainFailedDays, 2.5); XCTAssertEqual(c.healthMinJobs, 3)
    }

    func testCodecThreads() throws {
        var c = Config()
        XCTAssertEqual(c.codecThreads, 0)
        try c.apply(environment: ["MEDIASPOOL_CODEC_THREADS": "3"])
        XCTAssertEqual(c.codecThreads, 3)
        let dir = makeTempDir(self, "cfg")
        write(#"{"codecThreads":-1}"#, to: dir.appending("c.json"))
        XCTAssertSpoolError(try c.apply(file: dir.appending("c.json")), .manifestInvalid, contains: "codecThreads")
        // The policy: a configured count wins; a job alone gets every core
        // (FFmpeg's 0); jobs sharing the cores get an equal share, at least 1.
        XCTAssertEqual(JobThreads.perJob(configured: 3, cores: 2, concurrent: 2), 3)
        XCTAssertEqual(JobThreads.perJob(configured: 0, cores: 2, concurrent: 1), 0)
        XCTAssertEqual(JobThreads.perJob(configured: 0, cores: 2, concurrent: 2), 1)
        XCTAssertEqual(JobThreads.perJob(configured: 0, cores: 16, concurrent: 4), 4)
        XCTAssertEqual(JobThreads.perJob(configured: 0, cores: 2, concurrent: 8), 1)
    }
}
