import Foundation
import Logging
@testable import SystemdSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class NotifierTests: XCTestCase {
    func testNotifyGoesThroughLibsystemdToTheSocket() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("n-\(getpid()).sock").path
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd); unlink(path) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let b = Array(path.utf8); raw.copyBytes(from: b); raw[b.count] = 0
        }
        XCTAssertEqual(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }, 0)
        setenv("NOTIFY_SOCKET", path, 1)
        setenv("WATCHDOG_USEC", "2000000", 1)
        defer { unsetenv("NOTIFY_SOCKET"); unsetenv("WATCHDOG_USEC") }
        let n = Notifier()
        XCTAssertTrue(n.isActive)
        XCTAssertEqual(n.watchdogInterval, .seconds(2))
        n.ready(status: "waiting 0")
        var buf = [UInt8](repeating: 0, count: 4096)
        let got = recv(fd, &buf, buf.count, 0)
        XCTAssertEqual(String(decoding: buf[..<max(0, got)], as: UTF8.self), "READY=1\nSTATUS=waiting 0")
        n.reloading()
        let got2 = recv(fd, &buf, buf.count, 0)
        XCTAssertTrue(String(decoding: buf[..<max(0, got2)], as: UTF8.self).hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
    }

    func testWithoutNotifySocketNothingIsSent() {
        unsetenv("NOTIFY_SOCKET")
        XCTAssertFalse(Notifier().isActive)
        XCTAssertFalse(Notifier().notify("READY=1"))
    }

    func testJournalFieldNames() {
        XCTAssertEqual(JournalLogHandler.fieldName("JOB_ID"), "JOB_ID")
        XCTAssertEqual(JournalLogHandler.fieldName("job-id"), "JOB_ID")
        XCTAssertEqual(JournalLogHandler.fieldName("_secret"), "SECRET")
        XCTAssertEqual(JournalLogHandler.syslogPriority(.error), 3)
    }
}
