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
}
