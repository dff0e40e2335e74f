import Foundation
@testable import SpoolKit
import Synchronization
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Group commit (GroupSync.swift): callers that arrive while a sync runs
/// share the next one; nobody returns before a sync that began after its
/// call has succeeded; a failed sync fails everyone it covered. The syncs
/// here are closures that stamp when they begin and end, and block until
/// the test lets them go, so every interleaving is set by the test.
final class GroupSyncTests: XCTestCase {
    /// What a closure "sync" saw: when it began and ended, on one counter
    /// shared with the callers' own stamps.
    final class Clock: @unchecked Sendable {
        private let m = Mutex<(now: Int, runs: [(begin: Int, end: Int)])>((0, []))
        func tick() -> Int { m.withLock { $0.now += 1; return $0.now } }
        func begin() -> Int { tick() }
        func end(_ begin: Int) { m.withLock { $0.now += 1; $0.runs.append((begin, $0.now)) } }
        var runs: [(begin: Int, end: Int)] { m.withLock { $0.runs } }
    }

    /// A gate the first sync blocks on until the test opens it.
    final class Gate: @unchecked Sendable {
        let c = Sys.Condition(); var open = false, entered = false
        func pass() { c.lock(); entered = true; c.broadcast(); while !open { c.wait() }; c.unlock() }
        func waitEntered() { c.lock(); while !entered { c.wait() }; c.unlock() }
        func release() { c.lock(); open = true; c.broadcast(); c.unlock() }
    }

    func testCallersArrivingDuringASyncShareTheNextOne() throws {
        let batcher = GroupSync.Batcher(), clock = Clock(), gate = Gate()
        let calls = Mutex<[(called: Int, returned: Int)]>([])
        let body: @Sendable () throws(Errno) -> Void = { clock.end(clock.begin()) }
        let group = DispatchGroup()
        func caller() {
            spawn(group) {
                let called = clock.tick()
                try! batcher.sync(key: "d", body)
                let returned = clock.tick()
                calls.withLock { $0.append((called, returned)) }
            }
        }
        // The first caller leads a sync and is held inside it.
        let first = DispatchGroup(); first.enter()
        Thread.detachNewThread {
            try! batcher.sync(key: "d") { () throws(Errno) in
                let b = clock.begin(); gate.pass(); clock.end(b)
            }
            first.leave()
        }
        gate.waitEntered()
        // Seven more arrive while it runs: it began before them, so it
        // covers none of them; they wait, then share one sync.
        for _ in 0..<7 { caller() }
        waitUntil("seven waiters") { batcher.waiters("d") == 7 }
        gate.release()
        XCTAssertEqual(group.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(first.wait(timeout: .now() + 10), .success)
        let runs = clock.runs
        XCTAssertEqual(runs.count, 2, "the held sync and one shared by the seven: \(runs)")
        XCTAssertEqual(batcher.counts().syncs, 2)
        XCTAssertEqual(batcher.counts().calls, 8)
        // Every caller returned after a sync that began after it called.
        for c in calls.withLock({ $0 }) {
            XCTAssertTrue(runs.contains { $0.begin > c.called && $0.end < c.returned }, "caller \(c) returned without a sync begun after it: \(runs)")
        }
    }

    func testACallerCoveredByTheRunningSyncWaitsForItAndGetsItsError() throws {
        let batcher = GroupSync.Batcher(), gate = Gate()
        let runs = Atomic<Int>(0)
        // A sync that fails, held until the test lets it go.
        let leader = DispatchGroup(); leader.enter()
        let leaderError = Mutex<Errno?>(nil)
        Thread.detachNewThread {
            do {
                try batcher.sync(key: "d") { () throws(Errno) in
                    runs.wrappingAdd(1, ordering: .relaxed)
                    gate.pass()
                    throw Errno.ioError
                }
            } catch { leaderError.withLock { $0 = error as? Errno } }
            leader.leave()
        }
        gate.waitEntered()
        // Callers arriving now were not covered by it: they must not get its
        // error, and get a sync of their own (which succeeds).
        let late = DispatchGroup()
        let lateErrors = Atomic<Int>(0)
        for _ in 0..<3 {
            spawn(late) {
                do { try batcher.sync(key: "d") { () throws(Errno) in runs.wrappingAdd(1, ordering: .relaxed) } } catch {
                    lateErrors.wrappingAdd(1, ordering: .relaxed)
                }
            }
        }
        waitUntil("three waiters") { batcher.waiters("d") == 3 }
        gate.release()
        XCTAssertEqual(leader.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(late.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(leaderError.withLock { $0 }, .ioError, "the leader gets its own sync's error")
        XCTAssertEqual(lateErrors.load(ordering: .relaxed), 0, "callers it did not cover are not failed by it")
        XCTAssertEqual(runs.load(ordering: .relaxed), 2, "the failed sync, then one shared by the three")
    }

    func testErrorsReachEveryCallerTheFailedSyncCovered() throws {
        // Callers stamped before the sync began are covered by it: they get
        // its error. Made certain by holding them at the lock: the batcher's
        // stamp is taken on entry, so callers that entered while a first,
        // successful sync ran are all covered by the second, failing one.
        let batcher = GroupSync.Batcher(), gate = Gate()
        let n = Atomic<Int>(0)
        let first = DispatchGroup(); first.enter()
        Thread.detachNewThread {
            try! batcher.sync(key: "d") { () throws(Errno) in n.wrappingAdd(1, ordering: .relaxed); gate.pass() }
            first.leave()
        }
        gate.waitEntered()
        let errors = Atomic<Int>(0), group = DispatchGroup()
        for _ in 0..<4 {
            spawn(group) {
                do { try batcher.sync(key: "d") { () throws(Errno) in n.wrappingAdd(1, ordering: .relaxed); throw Errno.noSpace } } catch {
                    XCTAssertEqual(error as? Errno, .noSpace); errors.wrappingAdd(1, ordering: .relaxed)
                }
            }
        }
        waitUntil("four waiters") { batcher.waiters("d") == 4 }
        gate.release()
        XCTAssertEqual(group.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(first.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(n.load(ordering: .relaxed), 2, "one failing sync served the four")
        XCTAssertEqual(errors.load(ordering: .relaxed), 4, "each of the four got its error")
    }

    func testDifferentKeysDoNotWaitForEachOther() throws {
        let batcher = GroupSync.Batcher(), gate = Gate()
        let held = DispatchGroup(); held.enter()
        Thread.detachNewThread {
            try! batcher.sync(key: "a") { () throws(Errno) in gate.pass() }
            held.leave()
        }
        gate.waitEntered()
        // "a" is held; "b" goes through.
        var ran = false
        try batcher.sync(key: "b") { () throws(Errno) in ran = true }
        XCTAssertTrue(ran)
        gate.release()
        XCTAssertEqual(held.wait(timeout: .now() + 10), .success)
    }

    /// The real thing on a directory: renames, then GroupSync.directory from
    /// many threads at once; every call returns, every file is there.
    func testDirectorySyncsOfRealRenames() throws {
        let dir = makeTempDir(self, "groupsync")
        let group = DispatchGroup()
        let failures = Atomic<Int>(0)
        for i in 0..<32 {
            spawn(group) {
                do {
                    let tmp = dir.appending(".t\(i)"), dst = dir.appending("f\(i)")
                    let fd = try Sys.open(tmp, .writeOnly, options: [.create, .exclusiveCreate], permissions: .ownerReadWrite)
                    try Sys.fsync(fd); try Sys.close(fd)
                    try Sys.rename(tmp, dst)
                    try GroupSync.directory(dir)
                } catch { failures.wrappingAdd(1, ordering: .relaxed) }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(failures.load(ordering: .relaxed), 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.string).filter { $0.hasPrefix("f") }.count, 32)
    }
}

/// Polls `cond` until it holds (the bound only turns a hang into a failure).
private func waitUntil(_ what: String, file: StaticString = #filePath, line: UInt = #line, _ cond: () -> Bool) {
    let end = Date().addingTimeInterval(60)
    while !cond() {
        if Date() > end { XCTFail("timed out waiting for \(what)", file: file, line: line); return }
        usleep(1000)
    }
}

/// A thread of its own for each caller (GCD's pool would add threads for
/// blocked callers only slowly).
private func spawn(_ group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
    group.enter()
    Thread.detachNewThread { body(); group.leave() }
}
