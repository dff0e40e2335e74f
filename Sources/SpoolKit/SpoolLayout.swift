import SystemPackage

/// Where everything lives in one spool root (spool-v1.md "Directories").
///
/// The spec's directories: tmp/ inbox/ processing/ done/ failed/ locks/.
/// mediaspool's own (documented in docs/spool-layout.md):
/// - retry/  : `<id>.json` of jobs waiting for their backoff to expire.
/// - state/  : `<id>.json`, the attempt history of a job in processing/ or retry/.
/// - media/  : the default media root (relative manifest paths resolve here).
/// - control/: operators' switches (`pause.json`, `cancel.<id>`).
/// - hold/   : `<id>.json` of jobs an operator holds aside.
/// - events/ : the events log's segments.
/// - index/  : `finished.tsv`, the list command's cache of done/ and failed/.
/// - hosts/  : `<host-id>.json`, the heartbeats of shared mode's daemons.
///
/// Every path of the spool is made here, and every spool name's reverse
/// parse is in `JobID` and `SpoolName` (SpoolNames.swift), as Postfix keeps
/// them in mail_queue_path(): no other file builds one by hand.
public struct SpoolLayout: Sendable {
    public let root: FilePath

    // Every directory is made once here: the job path appends one name to a
    // stored path instead of rebuilding the directory for each file.
    public let tmp, inbox, processing, done, failed, locks, retry, state: FilePath
    /// The default media root (relative manifest paths resolve here).
    public let defaultMediaRoot: FilePath
    /// Jobs held aside by an operator (Hold.swift): never claimed.
    public let hold: FilePath
    /// Operators' switches: `pause.json` (Pause.swift).
    public let control: FilePath
    /// The events log's segments (Events.swift).
    public let events: FilePath
    /// The list command's cache (ListIndex.swift).
    public let index: FilePath
    /// Heartbeats of the hosts' daemons in shared mode (Hosts.swift):
    /// made by the first beat, not by `create()`.
    public let hosts: FilePath

    public init(root: FilePath) {
        self.root = root
        tmp = root.appending("tmp"); inbox = root.appending("inbox")
        processing = root.appending("processing"); done = root.appending("done")
        failed = root.appending("failed"); locks = root.appending("locks")
        retry = root.appending("retry"); state = root.appending("state")
        defaultMediaRoot = root.appending("media"); hold = root.appending("hold")
        control = root.appending("control"); events = root.appending("events")
        index = root.appending("index"); hosts = root.appending("hosts")
    }

    public var pauseFile: FilePath { control.appending("pause.json") }
    public var finishedIndex: FilePath { index.appending("finished.tsv") }
    /// Held by the running daemon (DaemonLock.swift), and its settings.
    public var daemonLock: FilePath { locks.appending(".daemon") }
    public var daemonSettings: FilePath { locks.appending(".daemon.settings") }

    /// The one mapping from a queue to its directory.
    public func directory(_ queue: SpoolQueue) -> FilePath {
        switch queue {
        case .inbox: inbox; case .retry: retry; case .processing: processing
        case .done: done; case .failed: failed; case .held: hold
        }
    }

    public var allDirectories: [FilePath] { [tmp, inbox, processing, done, failed, locks, retry, state, control, hold, events] }

    public func manifest(_ id: String, in dir: FilePath) -> FilePath { dir.appending(id + ".json") }
    public func lock(_ id: String) -> FilePath { locks.appending(id + ".lock") }
    public func result(_ id: String) -> FilePath { done.appending(id + ".result.json") }
    public func errorRecord(_ id: String) -> FilePath { failed.appending(id + ".error.json") }
    /// A file a done job keeps beside its result (`SideFile`): `<id>+<name>`.
    public func sideFile(_ id: String, _ name: String) -> FilePath { done.appending(id + SpoolName.sideSeparator + name) }
    public func stateFile(_ id: String) -> FilePath { state.appending(id + ".json") }
    public func progress(_ id: String) -> FilePath { processing.appending(id + ".progress") }
    /// A host's heartbeat in shared mode (Heartbeats.swift).
    public func heartbeat(_ host: String) -> FilePath { hosts.appending(SpoolName.heartbeat(host)) }

    /// Creates the directories that are missing.
    public func create() throws(Errno) {
        try Sys.mkdirs(root)
        for d in allDirectories { try Sys.mkdir(d) }
    }

    /// Whether this looks like a spool root (used by read-only commands).
    public func check() -> [String] {
        // control/ is made by the daemon's start: an older spool may lack it.
        allDirectories.filter { $0 != control && $0 != hold && $0 != events && !Sys.exists($0) }.map { "missing directory \($0)" }
    }
}

/// The queues a job's manifest moves through, each one directory of the
/// spool (`SpoolLayout.directory(_:)`).
public enum SpoolQueue: String, Sendable, CaseIterable, Codable { case inbox, retry, processing, done, failed, held }

/// The job id rules of spool-v1.md, plus mediaspool's extension: an id may
/// not end in `.result` or `.error`, whose manifests would share a name with
/// another job's record in done/ and failed/.
public enum JobID {
    public static func isValid(_ id: String) -> Bool {
        let u = Array(id.utf8)
        guard (1...128).contains(u.count) else { return false }
        func ok(_ c: UInt8, first: Bool) -> Bool {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
            case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): return !first
            default: return false
            }
        }
        for (i, c) in u.enumerated() where !ok(c, first: i == 0) { return false }
        return !(id.hasSuffix(".result") || id.hasSuffix(".error"))
    }

    /// The id of an inbox entry name, or nil when the daemon must ignore the
    /// entry (dot files, names not ending in .json).
    public static func fromManifestName(_ name: String) -> String? {
        guard !name.hasPrefix("."), name.hasSuffix(".json"), name.count > 5 else { return nil }
        return String(name.dropLast(5))
    }
}
