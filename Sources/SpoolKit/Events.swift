// The events log: one JSON line per job transition, for producers that want
// to know when a job ends without polling done/ and failed/ (an extension of
// the v1 protocol; docs/spool-layout.md, "events/").
//
//   events/00000000000000000001.jsonl   segments, appended to, newest last
//   events/.lock                        flock(2) held while appending
//
// Appending (EventLog.append), by daemons and by the CLI (cancel, hold):
//   1. flock events/.lock LOCK_EX (non-blocking tries for up to 5 s: a lock
//      held by something hostile delays a line, never stops the daemon);
//   2. the newest segment is the highest number; when the line would take it
//      past `segmentBytes`, create the next one (O_EXCL) and fsync events/;
//   3. write the whole line with O_APPEND in one write(2); a terminal event
//      (done, failed, cancelled) is fdatasync'ed before the lock is dropped;
//   4. a daemon that rotated removes the segments beyond `keepSegments`.
// Writers append only to the newest segment, under the lock: once segment
// N+1 exists, N never grows again. That is what makes a cursor safe.
//
// A terminal event is appended after the job's record is durable and before
// the rename that publishes the manifest (Finisher.publish). A crash in
// between leaves both for recovery, which appends the event again only when
// the last two segments do not have it (same id, kind and time: the record's).
// So every terminal event is in the log exactly once; the transitions in
// between (claimed, progress, retrying, held, released) are best effort.
//
// Reading (EventReader): a cursor "N:OFFSET" names the byte after a line of
// segment N. Events after a cursor are the rest of N, then N+1 and on. A
// cursor into a segment that retention removed is refused (`expired`): the
// consumer lost events and must resync from done/ and failed/.
import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

public enum EventKind: String, Codable, Sendable, CaseIterable {
    case claimed, progress, retrying, done, failed, cancelled, held, released
    public var isTerminal: Bool { self == .done || self == .failed || self == .cancelled }
}

/// One line of the log. Terminal events carry the time of their record
/// (completedAt / failedAt), which makes them recognisable again.
public struct JobEvent: Codable, Sendable, Equatable {
    public var event: EventKind
    public var time: String
    public var id: String
    public var type: String?
    public var tenant: String?
    public var labels: [String: String]?
    /// Where the job is after the transition: inbox, processing, retry,
    /// hold, done, failed.
    public var state: String
    public var attempt: Int?
    public var code: String?
    public var message: String?
    public var step: String?
    public var fraction: Double?
    public var outputs: [String]?

    public init(_ event: EventKind, id: String, state: String, time: String = RFC3339.string(Date())) {
        self.event = event; self.id = id; self.state = state; self.time = time
    }

    public static func done(_ r: ResultRecord) -> JobEvent {
        var e = JobEvent(.done, id: r.id, state: "done", time: r.completedAt)
        e.type = r.type; e.tenant = r.tenant; e.labels = r.labels.isEmpty ? nil : r.labels; e.attempt = r.attempts
        e.outputs = r.outputs.map(\.path)
        return e
    }

    public static func failed(_ r: ErrorRecord) -> JobEvent {
        var e = JobEvent(r.code == ErrorCode.cancelled.rawValue ? .cancelled : .failed, id: r.id, state: "failed", time: r.failedAt)
        e.type = r.type; e.tenant = r.tenant; e.labels = r.labels?.isEmpty == false ? r.labels : nil; e.attempt = r.attempts
        e.code = r.code; e.message = r.message; e.step = r.step
        return e
    }

    public func with(_ manifest: Manifest?) -> JobEvent {
        var e = self
        if let m = manifest { e.type = m.type.rawValue; e.tenant = m.tenant; e.labels = m.labels.isEmpty ? nil : m.labels }
        return e
    }

    /// The line as stored: compact JSON, sorted keys, one newline.
    var line: [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Plain strings and numbers: encoding cannot fail.
        return Array(try! enc.encode(self)) + [0x0A]
    }
}

/// A position in the log: the byte after a line of segment `segment`.
public struct EventCursor: Sendable, Equatable, Comparable, CustomStringConvertible {
    public var segment: UInt64
    public var offset: Int64
    public init(segment: UInt64, offset: Int64) { self.segment = segment; self.offset = offset }

    /// "N:OFFSET".
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let s = UInt64(parts[0]), let o = Int64(parts[1]), s > 0, o >= 0 else { return nil }
        segment = s; offset = o
    }
    public var description: String { "\(segment):\(offset)" }
    public static func < (a: EventCursor, b: EventCursor) -> Bool { (a.segment, a.offset) < (b.segment, b.offset) }
}

public struct EventLog: Sendable {
    public let layout: SpoolLayout
    public var segmentBytes: Int64
    public var keepSegments: Int
    /// Only a daemon removes old segments (the CLI appends and rotates).
    public var prunes: Bool

    public static let defaultSegmentBytes: Int64 = 16 << 20
    public static let defaultKeepSegments = 8

    public init(layout: SpoolLayout, segmentBytes: Int64 = EventLog.defaultSegmentBytes, keepSegments: Int = EventLog.defaultKeepSegments, prunes: Bool = false) {
        self.layout = layout; self.segmentBytes = max(4096, segmentBytes); self.keepSegments = max(1, keepSegments); self.prunes = prunes
    }

    var dir: FilePath { layout.events }

    static func segmentName(_ n: UInt64) -> String {
        let digits = String(n)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".jsonl"
    }

    /// The segment numbers present, oldest first.
    public static func segments(_ layout: SpoolLayout) -> [UInt64] {
        let names = (try? Sys.entries(in: layout.events)) ?? []
        return names.compactMap { n -> UInt64? in
            guard n.count == 26, n.hasSuffix(".jsonl") else { return nil }
            return UInt64(n.prefix(20))
        }.sorted()
    }

    static func segmentPath(_ layout: SpoolLayout, _ n: UInt64) -> FilePath { layout.events.appending(segmentName(n)) }

    /// Appends one event. Terminal events are durable when this returns, and
    /// throw when they cannot be written (the caller then leaves the job to
    /// recovery); other events are best effort. With `unlessPresent`, a
    /// terminal event already in the last two segments is not written again.
    public func append(_ event: JobEvent, unlessPresent: Bool = false) throws(SpoolError) {
        do {
            try appendLocked(event, unlessPresent: unlessPresent)
        } catch {
            if event.event.isTerminal { throw SpoolError.io(error, "appending the \(event.event.rawValue) event of \(event.id) to events/", step: "event") }
        }
    }

    private func appendLocked(_ event: JobEvent, unlessPresent: Bool) throws(Errno) {
        if !Sys.exists(dir) { try? Sys.mkdir(dir, permissions: [.ownerReadWriteExecute, .groupReadExecute]) }
        let lockFD = try Sys.open(dir.appending(".lock"), .readWrite, options: [.create, .noFollow, .nonBlocking], permissions: [.ownerReadWrite])
        defer { try? lockFD.close() }
        var locked = false
        for _ in 0..<500 {
            if try Sys.tryLockExclusive(lockFD) { locked = true; break }
            usleep(10_000)
        }
        _ = locked // unlocked after 5 s: something holds it that should not; the line goes in all the same
        let line = event.line
        var segs = Self.segments(layout)
        if unlessPresent, event.event.isTerminal, contains(event, in: segs.suffix(2)) { return }
        var current = segs.last ?? 1
        var size: Int64 = 0
        if segs.isEmpty {
            segs = [current]
        } else if let st = try? Sys.stat(Self.segmentPath(layout, current), followSymlinks: false) {
            size = Int64(st.st_size)
        }
        var rotated = false
        if size > 0 && size + Int64(line.count) > segmentBytes {
            current += 1
            rotated = true
        }
        let path = Self.segmentPath(layout, current)
        let fd = try Sys.open(path, .writeOnly, options: [.create, .append, .noFollow, .nonBlocking], permissions: [.ownerReadWrite, .groupRead])
        defer { try? fd.close() }
        guard try Sys.fstat(fd).isRegular else { throw Errno.notPermitted }
        if rotated || segs.count == 1 && size == 0 { try? Sys.fsyncDirectory(dir) }
        try Sys.writeAll(fd, line)
        if event.event.isTerminal { try Sys.fdatasync(fd) }
        if rotated && prunes {
            for old in (segs + [current]).dropLast(keepSegments) { try? Sys.unlink(Self.segmentPath(layout, old)) }
        }
    }

    /// Whether a terminal event with this id, kind and time is in the segments.
    func contains(_ event: JobEvent, in segs: ArraySlice<UInt64>) -> Bool {
        let needles = [#""event":"\#(event.event.rawValue)""#, #""id":"\#(event.id)""#, #""time":"\#(event.time)""#].map { Array($0.utf8) }
        for s in segs {
            guard let bytes = try? Sys.readFile(Self.segmentPath(layout, s), limit: Int(max(segmentBytes, 1 << 20)) * 2) else { continue }
            for line in bytes.split(separator: 0x0A) where needles.allSatisfy({ line.firstRange(of: $0) != nil }) { return true }
        }
        return false
    }
}

/// Reads events after a cursor, segment by segment.
public struct EventReader: Sendable {
    public let layout: SpoolLayout
    public init(layout: SpoolLayout) { self.layout = layout }

    public enum ReadError: Error, Equatable { case expired(oldest: UInt64?) }

    /// The cursor before the first event kept.
    public var start: EventCursor { EventCursor(segment: EventLog.segments(layout).first ?? 1, offset: 0) }

    /// The cursor after the last event written so far.
    public var end: EventCursor {
        guard let last = EventLog.segments(layout).last else { return EventCursor(segment: 1, offset: 0) }
        let size = (try? Sys.stat(EventLog.segmentPath(layout, last), followSymlinks: false)).map { Int64($0.st_size) } ?? 0
        return EventCursor(segment: last, offset: size)
    }

    /// The complete lines after `cursor` written so far (at most `limit`
    /// bytes of them), each with the cursor after it.
    public func read(after cursor: EventCursor, limit: Int = 4 << 20) throws(ReadError) -> [(cursor: EventCursor, line: [UInt8])] {
        let segs = EventLog.segments(layout)
        // A cursor into a removed segment: its remaining lines are gone.
        if let oldest = segs.first, cursor.segment < oldest { throw .expired(oldest: oldest) }
        var out: [(EventCursor, [UInt8])] = []
        var pos = cursor
        var budget = limit
        while budget > 0 {
            let (lines, next) = readSegment(pos, limit: budget)
            out += lines
            budget -= Int(next.offset - pos.offset)
            pos = next
            // Move on only when this segment is final (a newer one exists)
            // and was read to its end.
            guard Sys.exists(EventLog.segmentPath(layout, pos.segment + 1)) else { break }
            let size = (try? Sys.stat(EventLog.segmentPath(layout, pos.segment), followSymlinks: false)).map { Int64($0.st_size) } ?? 0
            guard pos.offset >= size else { break }
            pos = EventCursor(segment: pos.segment + 1, offset: 0)
        }
        return out
    }

    /// Complete lines of one segment from an offset; the cursor after the last.
    private func readSegment(_ from: EventCursor, limit: Int) -> ([(EventCursor, [UInt8])], EventCursor) {
        guard let fd = try? Sys.open(EventLog.segmentPath(layout, from.segment), .readOnly, options: [.noFollow, .nonBlocking]) else { return ([], from) }
        defer { try? fd.close() }
        guard let st = try? Sys.fstat(fd), st.isRegular, Int64(st.st_size) > from.offset else { return ([], from) }
        let want = Int(min(Int64(limit), Int64(st.st_size) - from.offset))
        var buf = [UInt8](repeating: 0, count: want)
        let n = (try? buf.withUnsafeMutableBytes { try fd.read(fromAbsoluteOffset: from.offset, into: $0) }) ?? 0
        var out: [(EventCursor, [UInt8])] = []
        var lineStart = 0
        for i in 0..<n where buf[i] == 0x0A {
            let line = Array(buf[lineStart..<i])
            lineStart = i + 1
            if !line.isEmpty { out.append((EventCursor(segment: from.segment, offset: from.offset + Int64(lineStart)), line)) }
        }
        return (out, EventCursor(segment: from.segment, offset: from.offset + Int64(lineStart)))
    }

    /// A stored line with its cursor first: what `mediaspool events` prints.
    public static func withCursor(_ line: [UInt8], _ cursor: EventCursor) -> [UInt8] {
        guard line.first == UInt8(ascii: "{") else { return line }
        return Array(#"{"cursor":"\#(cursor)","#.utf8) + line.dropFirst()
    }
}
