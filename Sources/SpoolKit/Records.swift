import Foundation
import JobSchema

/// One attempt of a job, as kept in the records' `history`.
public struct HistoryEntry: Codable, Sendable, Equatable {
    public var attempt: Int
    public var startedAt: String
    public var endedAt: String?
    public var code: String?
    public var message: String?

    public init(attempt: Int, startedAt: String, endedAt: String? = nil, code: String? = nil, message: String? = nil) {
        self.attempt = attempt; self.startedAt = startedAt; self.endedAt = endedAt; self.code = code; self.message = message
    }
}

public struct StepTiming: Codable, Sendable, Equatable {
    public var name: String
    public var durationMs: Int
    public init(name: String, durationMs: Int) { self.name = name; self.durationMs = durationMs }
}

/// `done/<id>.result.json`.
public struct ResultRecord: Codable, Sendable {
    public var id: String
    public var type: String
    public var status: String = "done"
    public var attempts: Int
    public var startedAt: String
    public var completedAt: String
    public var durationMs: Int
    public var tenant: String?
    public var labels: [String: String]
    public var steps: [StepTiming]
    public var outputs: [OutputRecord]
    public var probe: ProbeRecord?
    public var history: [HistoryEntry]
    /// Lower-case SHA-256 of the manifest this run ran (an extension of
    /// spool v1): recovery trusts a record beside a job in processing/ only
    /// when it names this manifest and this attempt (Recovery.swift).
    public var manifestSHA256: String? = nil
    /// The side files kept beside the record (`done/<id>+<name>`), by
    /// name (an extension of spool v1): retention removes them with the job.
    public var sideFiles: [String]? = nil
    /// The host id of the daemon that wrote the record (an extension of
    /// spool v1; Hosts.swift): with several hosts on one spool, which one
    /// ran the job. Absent in records of older versions.
    public var host: String? = HostID.current
}

/// `failed/<id>.error.json`.
public struct ErrorRecord: Codable, Sendable {
    public var id: String
    public var type: String?
    public var status: String = "failed"
    public var code: String
    public var message: String
    public var step: String?
    public var retryable: Bool
    public var attempts: Int
    public var failedAt: String
    public var tenant: String?
    public var labels: [String: String]?
    public var history: [HistoryEntry]
    /// As in `ResultRecord`: the manifest this run ran (nil when it could
    /// not be read, or the job was refused before it was claimed).
    public var manifestSHA256: String? = nil
    /// As in `ResultRecord`: the host whose daemon (or command) wrote it.
    public var host: String? = HostID.current
}

/// `state/<id>.json`: what the daemon must remember about a job between
/// attempts and across crashes (mediaspool's own file, see docs/spool-layout.md).
/// Written durably before each attempt starts, so a job that kills the daemon
/// every time still runs out of attempts.
public struct JobState: Codable, Sendable {
    public var id: String
    /// Attempts of the current run (replay starts a new run at 0).
    public var attempts: Int
    /// Attempts of this run and of earlier runs (kept across replays).
    public var history: [HistoryEntry]
    /// When the job in retry/ may run again (RFC 3339).
    public var notBefore: String?

    public init(id: String, attempts: Int = 0, history: [HistoryEntry] = [], notBefore: String? = nil) {
        self.id = id; self.attempts = attempts; self.history = history; self.notBefore = notBefore
    }
}

/// `processing/<id>.progress`: written while a job runs, read by `status`.
public struct ProgressRecord: Codable, Sendable {
    public var id: String
    public var type: String
    public var step: String
    public var fraction: Double
    public var attempt: Int
    public var startedAt: String
    public var pid: Int32
    public var updatedAt: String
    /// The host running it (Hosts.swift); absent from older versions' files.
    public var host: String? = HostID.current
}

public enum RecordCoding {
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        // Records are plain structs of strings and numbers: encoding cannot fail.
        return Array(try! e.encode(value)) + [0x0A]
    }

    public static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> T? {
        try? JSONDecoder().decode(T.self, from: Data(bytes))
    }
}
