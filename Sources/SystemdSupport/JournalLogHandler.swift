import CSystemd
import Foundation
import Logging

/// A swift-log handler that writes to journald through sd_journal_sendv(3)
/// (sd_journal_send is variadic and cannot be imported). Every metadata key
/// becomes a journal field: the engine uses JOB_ID, JOB_TYPE, STEP, STATUS,
/// ATTEMPT, DURATION_MS and ERROR_CODE, so `journalctl -u mediaspool
/// JOB_ID=clip-42` tells one job's story.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = [
            "MESSAGE=\(event.message)",
            "PRIORITY=\(Self.syslogPriority(event.level))",
            "SYSLOG_IDENTIFIER=mediaspool",
            "CODE_FILE=\(event.file)", "CODE_LINE=\(event.line)", "CODE_FUNC=\(event.function)",
            "LOGGER=\(label)",
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for (k, v) in merged { fields.append("\(Self.fieldName(k))=\(v)") }
        Self.send(fields)
    }

    /// Sends one entry of FIELD=value strings.
    static func send(_ fields: [String]) {
        let cstrs = fields.map { strdup($0)! }
        defer { cstrs.forEach { free($0) } }
        var iov = cstrs.map { iovec(iov_base: UnsafeMutableRawPointer($0), iov_len: strlen($0)) }
        _ = sd_journal_sendv(&iov, Int32(iov.count))
    }

    /// Journal field names: upper case letters, digits and underscores, not
    /// starting with an underscore.
    static func fieldName(_ key: String) -> String {
        var s = String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
        while s.hasPrefix("_") { s.removeFirst() }
        return s.isEmpty ? "FIELD" : s
    }

    static func syslogPriority(_ l: Logger.Level) -> Int {
        switch l {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Whether stderr is connected to the journal (JOURNAL_STREAM matches
    /// stderr's device and inode), as systemd.exec(5) describes.
    public static var stderrIsJournal: Bool {
        guard let v = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return false }
        let parts = v.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }
}

/// Readable lines on stderr when not under journald:
/// `2026-11-22T10:00:01.123Z warning [JOB_ID=clip-42 STEP=probe] message`.
public struct StderrLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public init() {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let meta = merged.isEmpty ? "" : " [" + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + "]"
        let line = "\(Self.timestamp()) \(event.level)\(meta) \(event.message)\n"
        FileHandle.standardError.write(line.data(using: .utf8)!)
    }
}

extension StderrLogHandler {
    /// UTC with milliseconds, from gmtime_r: a DateFormatter per line cost
    /// 7% of a trivial job's CPU (perf).
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday),
                      Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec), ts.tv_nsec / 1_000_000)
    }
}

extension LoggingSystem {
    /// journald when stderr is the journal, readable stderr lines otherwise.
    /// `host`: the host id, as the field MEDIASPOOL_HOST of every journal
    /// entry (`journalctl MEDIASPOOL_HOST=node-b`); stderr lines leave it
    /// out (the daemon's start line names it).
    public static func bootstrapForDaemon(level: Logger.Level = .info, host: String? = nil) {
        let journal = JournalLogHandler.stderrIsJournal || ProcessInfo.processInfo.environment["MEDIASPOOL_LOG"] == "journal"
        bootstrap { label in
            var h: any LogHandler = journal ? JournalLogHandler(label: label) : StderrLogHandler()
            if journal, let host { h[metadataKey: "MEDIASPOOL_HOST"] = "\(host)" }
            h.logLevel = level
            return h
        }
    }
}
