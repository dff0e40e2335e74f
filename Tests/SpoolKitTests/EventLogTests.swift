import Foundation
@testable import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The events log's writer and reader (Events.swift) on their own: torn
/// lines, rotation, retention, cursors, the dedupe check, ownership.
final class EventLogTests: XCTestCase {
    func makeLog(segmentBytes: Int64 = 4096, keep: Int = 100) throws -> (EventLog, EventReader) {
        let layout = SpoolLayout(root: makeTempDir(self, "events"))
        try layout.create()
        return (EventLog(layout: layout, segmentBytes: segmentBytes, keepSegments: keep, prunes: true), EventReader(layout: layout))
    }

    func event(_ id: String, _ kind: EventKind = .done, time: String = "2026-11-28T00:00:00.000Z") -> JobEvent {
        JobEvent(kind, id: id, state: kind.isTerminal ? "done" : "processing", time: time)
    }

    func ids(_ r: EventReader, after c: EventCursor? = nil) throws -> [String] {
        try r.read(after: c ?? r.start).map { try JSONDecoder().decode(JobEvent.self, from: Data($0.line)).id }
    }

    func appendRaw(_ bytes: String, to path: FilePath) throws {
        let fd = try Sys.open(path, .writeOnly, options: [.append])
        defer { try? fd.close() }
        try Sys.writeAll(fd, Array(bytes.utf8))
    }

    func testATornLineNeverJoinsTheNextOrStopsReaders() throws {
        let (log, reader) = try makeLog()
        try log.append(event("a"))
        // A crash (or a full disk) left half a line.
        try appendRaw(#"{"event":"done","id":"half"#, to: EventLog.segmentPath(log.layout, 1))
        try log.append(event("b"))
        XCTAssertEqual(try ids(reader), ["a", "b"], "the fragment is ended and skipped; b is whole")
        // A torn tail at the end of a segment that rotation then left behind.
        try appendRaw(#"{"event":"done","id":"torn"#, to: EventLog.segmentPath(log.layout, 1))
        var big = event("big"); big.message = String(repeating: "x", count: 4000)
        try log.append(big)
        try log.append(event("c"))
        XCTAssertGreaterThan(EventLog.segments(log.layout).count, 1, "rotated")
        XCTAssertEqual(try ids(reader), ["a", "b", "big", "c"])
        // A line over 64 KiB loses labels and outputs, not the event.
        var huge = event("huge"); huge.outputs = (0..<20_000).map { "out/\($0).jpg" }
        try log.append(huge)
        let last = try XCTUnwrap(try reader.read(after: reader.start).last)
        let decoded = try JSONDecoder().decode(JobEvent.self, from: Data(last.line))
        XCTAssertEqual(decoded.id, "huge"); XCTAssertEqual(decoded.truncated, true); XCTAssertNil(decoded.outputs)
        XCTAssertLessThanOrEqual(last.line.count, EventLog.maxLineBytes)
    }

    func testCursorsResumeExactlyAndBadOnesAreRefused() throws {
        let (log, reader) = try makeLog()
        for i in 0..<100 { try log.append(event("j\(i)")) }
        let all = try reader.read(after: reader.start)
        XCTAssertEqual(all.count, 100)
        let mid = all[41].cursor
        XCTAssertEqual(try ids(reader, after: mid), (42..<100).map { "j\($0)" }, "resumes after the line, nothing twice")
        XCTAssertEqual(reader.end, all.last?.cursor)
        XCTAssertEqual(try reader.read(after: reader.end).count, 0)
        XCTAssertThrowsError(try reader.read(after: EventCursor(segment: mid.segment, offset: mid.offset - 3))) { XCTAssertEqual($0 as? EventReader.ReadError, .invalid("cursor \(mid.segment):\(mid.offset - 3) is not at the end of a line")) }
        XCTAssertThrowsError(try reader.read(after: EventCursor(segment: UInt64.max, offset: 0)), "no trap on the largest segment number")
        XCTAssertNil(EventCursor("0:5")); XCTAssertNil(EventCursor("1:-1")); XCTAssertNil(EventCursor("1:2:3")); XCTAssertNil(EventCursor("x"))
    }

    func testRetentionRemovesOldSegmentsAndOldCursorsExpire() throws {
        let (log, reader) = try makeLog(segmentBytes: 4096, keep: 2)
        let first = reader.start
        for i in 0..<200 { try log.append(event("r\(i)")) }
        XCTAssertEqual(EventLog.segments(log.layout).count, 2)
        XCTAssertThrowsError(try reader.read(after: first)) { XCTAssertEqual($0 as? EventReader.ReadError, .expired(oldest: EventLog.segments(log.layout).first)) }
        XCTAssertEqual(try ids(reader).last, "r199")
    }

    func testTheDedupeCheckComparesFieldsNotText() throws {
        let (log, reader) = try makeLog(segmentBytes: 1 << 20)
        // Another job's labels spell out J's terminal event.
        var decoy = event("decoy")
        decoy.labels = ["event": "done", "id": "J", "time": "2026-11-28T00:00:00.000Z"]
        try log.append(decoy)
        try log.append(event("J"), unlessPresent: true)
        try log.append(event("J"), unlessPresent: true)
        try log.append(event("J", time: "2026-11-28T00:00:01.000Z"), unlessPresent: true) // a replay's later end
        XCTAssertEqual(try ids(reader), ["decoy", "J", "J"], "J once per end: the decoy did not hide it, the repeat did not double it")
        // Found in an older segment too, after rotations.
        for i in 0..<50 { try log.append(event("x\(i)")) }
        try log.append(event("J"), unlessPresent: true)
        XCTAssertEqual(try ids(reader).filter { $0 == "J" }.count, 2)
    }

    func testAFIFOOrSymlinkAtASegmentsNameIsPassedOver() throws {
        let (log, reader) = try makeLog()
        try log.append(event("a"))
        // Planted where the next segment would be: a FIFO, then a symlink.
        XCTAssertEqual(mkfifo(EventLog.segmentPath(log.layout, 2).string, 0o644), 0)
        try log.append(event("b"))
        XCTAssertEqual(symlink("/etc/passwd", EventLog.segmentPath(log.layout, 4).string), 0)
        try log.append(event("c"))
        XCTAssertEqual(try ids(reader), ["a", "b", "c"], "every event written and read, none blocked")
        let passwd = try Sys.stat("/etc/passwd")
        XCTAssertEqual(try Sys.stat("/etc/passwd").st_size, passwd.st_size)
    }

    func testABusyLockDropsProgressAtOnce() throws {
        let (log, reader) = try makeLog()
        try log.append(event("before"))
        let fd = try Sys.open(log.layout.events.appending(".lock"), .readWrite)
        defer { try? fd.close() }
        XCTAssertTrue(try Sys.tryLockExclusive(fd))
        let t0 = Date()
        try log.append(event("p", .progress))
        XCTAssertLessThan(Date().timeIntervalSince(t0), 1, "a best-effort event does not wait")
        XCTAssertEqual(try ids(reader), ["before"], "and is not written without the lock")
    }

    func testRootWritesLeaveTheFilesToTheSpoolsOwner() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root") }
        let (log, _) = try makeLog()
        XCTAssertEqual(chown(log.layout.root.string, 4321, 4321), 0)
        try log.append(event("a"))
        for p in [log.layout.events.appending(".lock"), EventLog.segmentPath(log.layout, 1)] {
            let st = try Sys.stat(p)
            XCTAssertEqual([st.st_uid, st.st_gid], [4321, 4321], "\(p) belongs to the spool's owner, so the daemon can append")
        }
    }
}
