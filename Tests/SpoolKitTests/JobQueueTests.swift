@testable import SpoolKit
import XCTest
import Foundation

final class JobQueueTests: XCTestCase {
    func e(_ id: String, _ prio: Int = 0, tenant: String = "", at: Int64, notBefore: Double = 0, source: Source = .inbox) -> QueueEntry {
        QueueEntry(id: id, source: source, priority: prio, tenant: tenant, arrival: at, notBefore: notBefore)
    }

    func testPriorityThenArrival() {
        let q = JobQueue()
        q.upsert(e("late-low", 0, at: 3)); q.upsert(e("early-low", 0, at: 1)); q.upsert(e("high", 5, at: 9)); q.upsert(e("neg", -3, at: 0))
        var order: [String] = []
        while q.count > 0, let x = q.next() { order.append(x.id); q.finished(x) }
        XCTAssertEqual(order, ["high", "early-low", "late-low", "neg"])
    }

    func testNoTenantStarvesAnother() {
        let q = JobQueue()
        for i in 0..<100 { q.upsert(e("big-\(i)", tenant: "big", at: Int64(i))) }
        q.upsert(e("small-0", tenant: "small", at: 1000))
        q.upsert(e("small-1", tenant: "small", at: 1001))
        // Four workers: picks alternate between tenants (fewest running,
        // then least recently served), so both "small" jobs are among them
        // although 100 "big" jobs arrived first.
        let picks = (0..<4).map { _ in q.next()! }
        XCTAssertEqual(picks.filter { $0.tenant == "small" }.count, 2)
        XCTAssertNotEqual(picks[0].tenant, picks[1].tenant)
        XCTAssertEqual(picks[0].tenant, picks[2].tenant)
        // Within "big", arrival order.
        XCTAssertEqual(picks.filter { $0.tenant == "big" }.map(\.id), ["big-0", "big-1"])
    }

    func testDelayedEntriesWait() {
        let q = JobQueue()
        q.upsert(e("later", at: 0, notBefore: Date().timeIntervalSince1970 + 0.3, source: .retry))
        q.upsert(e("now", at: 1))
        XCTAssertEqual(q.next()?.id, "now")
        let t0 = Date()
        XCTAssertEqual(q.next()?.id, "later")
        XCTAssertGreaterThan(Date().timeIntervalSince(t0), 0.2)
    }

    func testInFlightIDIsNotHandedOutTwice() {
        let q = JobQueue()
        q.upsert(e("a", at: 0))
        let first = q.next()!
        q.upsert(e("a", at: 5))   // a newer manifest arrives while "a" runs
        q.upsert(e("b", at: 6))
        XCTAssertEqual(q.next()?.id, "b")
        q.finished(first)
        XCTAssertEqual(q.next()?.id, "a")
    }

    func testRetryEntryWinsOverInbox() {
        let q = JobQueue()
        q.upsert(e("a", at: 0, source: .retry))
        q.upsert(e("a", at: 5, source: .inbox))
        XCTAssertEqual(q.entry("a")?.source, .retry)
    }

    func testCloseReleasesWaiters() {
        let q = JobQueue()
        let done = expectation(description: "worker returns")
        Thread.detachNewThread { XCTAssertNil(q.next()); done.fulfill() }
        Thread.sleep(forTimeInterval: 0.05)
        q.close()
        wait(for: [done], timeout: 2)
    }

    /// The queue's timed waits (Sys.Condition) run on the monotonic clock:
    /// a waiter wakes on a broadcast, and a timed wait lasts its time.
    func testTheConditionWakesOnABroadcastAndWaitsItsTime() {
        let c = Sys.Condition()
        c.lock()
        let t0 = ContinuousClock.now
        while c.wait(seconds: 0.2) {}  // a spurious wake-up waits again
        XCTAssertGreaterThanOrEqual(t0.duration(to: .now), .milliseconds(199))
        let woken = Thread { c.lock(); c.broadcast(); c.unlock() }
        let t1 = ContinuousClock.now
        woken.start()
        XCTAssertTrue(c.wait(seconds: 60), "woken by the broadcast, not the 60 s")
        XCTAssertLessThan(t1.duration(to: .now), .seconds(30))
        c.unlock()
    }
}
