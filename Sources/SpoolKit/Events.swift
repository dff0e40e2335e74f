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
    /// Labels and outputs left out: the line would have passed 64 KiB.
    public var truncated: Bool?
    /// The host id of the writer (Hosts.swift), set by `EventLog.append`.
    public var host: String?

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
    /// recovery); other events are best effort: dropped when the lock is
    /// busy or the write fails. With `unlessPresent`, a terminal event
    /// already in the log (same id, event and time) is not written again.
    public func append(_ event: JobEvent, unlessPresent: Bool = false) throws(SpoolError) {
        try Fence.check("event")
        do {
            try appendLocked(event, unlessPresent: unlessPresent)
        } catch {
            if event.event.isTerminal { throw SpoolError.io(error, "appending the \(event.event.rawValue) event of \(event.id) to events/", step: "event") }
        }
    }

    /// The longest line written; longer ones lose their labels and outputs
    /// (`truncated`), so that every reader's window holds a whole line.
    static let maxLineBytes = 64 * 1024

    private func appendLocked(_ event: JobEvent, unlessPresent: Bool) throws(Errno) {
        if !Sys.exists(dir) {
            try? Sys.mkdir(dir, permissions: [.ownerReadWriteExecute, .groupReadExecute])
            adoptOwnership(of: dir)
        }
        let lockFD = try LockFile.open(dir.appending(".lock"))
        defer { try? lockFD.close() }
        adoptOwnership(lockFD)
        // Never written without the lock: a line after a rotation another
        // writer made would go to a segment readers have left. The lock is
        // the daemon user's (0600): only that user or root can hold it. A
        // terminal event waits up to 30 s, then fails (recovery retries the
        // job's publish); any other event gets one short try and is dropped.
        let tries = event.event.isTerminal ? 3000 : 5
        var locked = false
        for _ in 0..<tries {
            if try Sys.tryLockExclusive(lockFD) { locked = true; break }
            Sys.sleep(milliseconds: 10)
        }
        guard locked else { throw Errno.resourceTemporarilyUnavailable }
        var event = event
        if event.host == nil { event.host = HostID.current }
        var line = event.line
        if line.count > Self.maxLineBytes {
            var short = event
            short.labels = nil; short.outputs = nil; short.truncated = true
            short.message = short.message.map { String(decoding: $0.utf8.prefix(1024), as: UTF8.self) }
            line = short.line
        }
        var segs = Self.segments(layout)
        if unlessPresent, event.event.isTerminal, contains(event, in: segs) { return }
        if segs.isEmpty { segs = [1] }
        var current = segs.last!
        // One descriptor for the newest segment: its size, its last byte, the append.
        // A symlink, FIFO or directory planted at the newest segment's name
        // is passed over as a full segment would be (readers pass over it
        // too), so it cannot stop every job from finishing.
        var rotated = false
        var fd: FileDescriptor
        while true {
            if let opened = try? openSegment(current) {
                if let s = try? Sys.fstat(opened), s.isRegular { fd = opened; break }
                try? opened.close()
            }
            guard !rotated else { throw Errno.notPermitted }
            current += 1
            rotated = true
        }
        defer { try? fd.close() }
        var st = try Sys.fstat(fd)
        var size = Int64(st.st_size)
        // A line torn by a crash or a full disk is ended here, so that it
        // never joins the next line (readers skip what does not parse).
        let torn = size > 0 && lastByte(fd, size: size) != 0x0A
        if size > 0 && size + Int64(line.count) > segmentBytes {
            if torn { try? Sys.writeAll(fd, [0x0A]); try? Sys.fdatasync(fd) }
            try? fd.close()
            current += 1
            rotated = true
            fd = try openSegment(current)
            st = try Sys.fstat(fd)
            guard st.isRegular else { throw Errno.notPermitted }
            size = Int64(st.st_size)
        } else if torn {
            line = [0x0A] + line
        }
        if rotated || size == 0 { try? Sys.fsyncDirectory(dir) }
        do {
            try Sys.writeAll(fd, line)
        } catch {
            // Nothing half-written stays: back to the size before this line.
            Sys.truncate(fd, size: Int64(size))
            throw error
        }
        if rotated && prunes {
            for old in (segs + [current]).dropLast(keepSegments) { try? Sys.unlink(Self.segmentPath(layout, old)) }
        }
        // The line is in place: other writers may go on while this one
        // makes it durable (the workers' syncs overlap, as their record
        // syncs do). The caller publishes only after this returns.
        Sys.unlock(lockFD)
        if event.event.isTerminal { try Sys.fdatasync(fd) }
    }

    /// The segment opened to append (and read its last byte), created if
    /// missing, never through a symlink or a FIFO; given to the spool's owner.
    private func openSegment(_ n: UInt64) throws(Errno) -> FileDescriptor {
        let fd = try Sys.open(Self.segmentPath(layout, n), .readWrite, options: [.create, .append, .noFollow, .nonBlocking], permissions: [.ownerReadWrite, .groupRead])
        adoptOwnership(fd)
        return fd
    }

    private func lastByte(_ fd: FileDescriptor, size: Int64) -> UInt8? {
        var b: UInt8 = 0
        let n = (try? withUnsafeMutableBytes(of: &b) { try fd.read(fromAbsoluteOffset: size - 1, into: $0) }) ?? 0
        return n == 1 ? b : nil
    }

    /// Root (an operator's CLI) creating the directory, the lock or a
    /// segment gives it to the owner of the spool, as the job locks do:
    /// a root-owned segment would lock the daemon out of the log.
    private func adoptOwnership(_ fd: FileDescriptor) {
        guard Sys.isRoot, let owner = try? Sys.stat(layout.root), let mine = try? Sys.fstat(fd),
              mine.st_uid != owner.st_uid || mine.st_gid != owner.st_gid else { return }
        Sys.chown(fd, uid: owner.st_uid, gid: owner.st_gid)
    }

    private func adoptOwnership(of path: FilePath) {
        guard Sys.isRoot, let fd = try? Sys.open(path, .readOnly, options: [.directory, .noFollow]) else { return }
        defer { try? fd.close() }
        adoptOwnership(fd)
    }

    /// Whether a terminal event with this id, kind and time is in the log:
    /// newest segment first, in bounded chunks, comparing decoded fields
    /// (a label cannot pass for them).
    func contains(_ event: JobEvent, in segs: [UInt64]) -> Bool {
        let idNeedle = Array(#""id":"\#(event.id)""#.utf8)
        for s in segs.reversed() {
            guard let fd = try? Sys.open(Self.segmentPath(layout, s), .readOnly, options: [.noFollow, .nonBlocking]),
                  let st = try? Sys.fstat(fd), st.isRegular else { continue }
            defer { try? fd.close() }
            var offset: Int64 = 0
            var carry: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            while offset < Int64(st.st_size) {
                let n = (try? chunk.withUnsafeMutableBytes { try fd.read(fromAbsoluteOffset: offset, into: $0) }) ?? 0
                if n <= 0 { break }
                offset += Int64(n)
                carry += chunk[0..<n]
                guard let last = carry.lastIndex(of: 0x0A) else { continue }
                for line in carry[...last].split(separator: 0x0A) where line.firstRange(of: idNeedle) != nil {
                    if let e = try? JSONDecoder().decode(JobEvent.self, from: Data(line)), e.id == event.id, e.event == event.event, e.time == event.time { return true }
                }
                carry.removeSubrange(...last)
                if carry.count > Self.maxLineBytes * 2 { carry.removeAll() }
            }
        }
        return false
    }
}

/// One line of the log as read: where it ends, its bytes as stored, and
/// the event (decoded once, by the reader that checked it is one).
public struct EventLine: Sendable {
    public let cursor: EventCursor
    public let line: [UInt8]
    public let event: JobEvent
}

/// Reads events after a cursor, segment by segment.
public struct EventReader: Sendable {
    public let layout: SpoolLayout
    public init(layout: SpoolLayout) { self.layout = layout }

    public enum ReadError: Error, Equatable {
        /// Retention removed events after the cursor.
        case expired(oldest: UInt64?)
        /// The cursor is not one this log gave (past its end, inside a line).
        case invalid(String)
    }

    /// The cursor before the first event kept.
    public var start: EventCursor { EventCursor(segment: EventLog.segments(layout).first ?? 1, offset: 0) }

    /// The cursor after the last complete line written so far.
    public var end: EventCursor {
        guard let last = EventLog.segments(layout).last else { return EventCursor(segment: 1, offset: 0) }
        var c = EventCursor(segment: last, offset: 0)
        // Read forward to the last newline (a line being written is not a place to start).
        while let (_, next, _) = try? readSegment(c, limit: 1 << 20), next != c { c = next }
        return c
    }

    /// The complete lines after `cursor` written so far (at most `limit`
    /// bytes of them), each with the cursor after it. Lines handed out are
    /// durable first (fdatasync), so a cursor stored after them never
    /// points past what a power cut could take back.
    public func read(after cursor: EventCursor, limit: Int = 4 << 20) throws(ReadError) -> [EventLine] {
        let segs = EventLog.segments(layout)
        if let oldest = segs.first, cursor.segment < oldest { throw .expired(oldest: oldest) }
        let newest = segs.last ?? 1
        guard cursor.segment <= newest else { throw .invalid("cursor \(cursor) is past the newest segment (\(newest))") }
        var out: [EventLine] = []
        var pos = cursor
        var budget = limit
        var first = true
        while budget > 0 {
            let (lines, next, final) = try readSegment(pos, limit: budget, checkBoundary: first)
            first = false
            out += lines
            budget -= Int(next.offset - pos.offset)
            pos = next
            // Move on only when this segment is final (a newer one exists)
            // and read to its end (a torn last line skipped).
            guard final, pos.segment < UInt64.max else { break }
            pos = EventCursor(segment: pos.segment + 1, offset: 0)
        }
        return out
    }

    /// Complete lines of one segment from an offset; the cursor after the
    /// last; and whether the segment is final and was read to its end.
    private func readSegment(_ from: EventCursor, limit: Int, checkBoundary: Bool = false) throws(ReadError) -> ([EventLine], EventCursor, Bool) {
        // A newer segment first: then this one is final, and its size below is its last.
        let final = from.segment < UInt64.max && Sys.exists(EventLog.segmentPath(layout, from.segment + 1))
        let fd: FileDescriptor
        do { fd = try Sys.open(EventLog.segmentPath(layout, from.segment), .readOnly, options: [.noFollow, .nonBlocking]) } catch {
            if error == .noSuchFileOrDirectory {
                // Removed by retention under the reader, or never written.
                if let oldest = EventLog.segments(layout).first, from.segment < oldest { throw .expired(oldest: oldest) }
                return ([], from, false)
            }
            // Not a file one can read (a planted symlink): passed over once a newer one exists.
            return ([], from, final)
        }
        defer { try? fd.close() }
        // A FIFO or directory planted at a segment's name: passed over the same way.
        guard let st = try? Sys.fstat(fd), st.isRegular else { return ([], from, final) }
        let size = Int64(st.st_size)
        if from.offset > size { throw .invalid("cursor \(from) is past the end of its segment (\(size) bytes)") }
        if checkBoundary && from.offset > 0 {
            var b: UInt8 = 0
            let n = (try? withUnsafeMutableBytes(of: &b) { try fd.read(fromAbsoluteOffset: from.offset - 1, into: $0) }) ?? 0
            if n != 1 || b != 0x0A { throw .invalid("cursor \(from) is not at the end of a line") }
        }
        guard size > from.offset else { return ([], from, final) }
        let want = Int(min(Int64(limit), size - from.offset))
        var buf = [UInt8](repeating: 0, count: want)
        let n = (try? buf.withUnsafeMutableBytes { try fd.read(fromAbsoluteOffset: from.offset, into: $0) }) ?? 0
        var out: [EventLine] = []
        var lineStart = 0
        for i in 0..<n where buf[i] == 0x0A {
            let line = Array(buf[lineStart..<i])
            lineStart = i + 1
            // Only lines that are events (a torn fragment ended by a later writer is not).
            if line.first == UInt8(ascii: "{"), let event = try? JSONDecoder().decode(JobEvent.self, from: Data(line)) {
                out.append(EventLine(cursor: EventCursor(segment: from.segment, offset: from.offset + Int64(lineStart)), line: line, event: event))
            }
        }
        var next = EventCursor(segment: from.segment, offset: from.offset + Int64(lineStart))
        if !out.isEmpty { try? Sys.fdatasync(fd) }
        // The rest of a final segment has no newline: a line torn by a
        // crash that no writer ended. Skip it.
        if final && lineStart < n && !buf[lineStart..<n].contains(0x0A) && Int64(n) == size - from.offset {
            next.offset = size
        }
        return (out, next, final && next.offset >= size)
    }

    /// A stored line with its cursor first: what `mediaspool events` prints.
    public static func withCursor(_ line: [UInt8], _ cursor: EventCursor) -> [UInt8] {
        guard line.first == UInt8(ascii: "{") else { return line }
        return Array(#"{"cursor":"\#(cursor)","#.utf8) + line.dropFirst()
    }
}
