import Foundation
import JobSchema
import SystemPackage

/// Daemon settings. Sources, weakest first: defaults, the config file (JSON,
/// keys as below), the environment (MEDIASPOOL_<KEY in upper snake case>),
/// command-line flags. docs/configuration.md lists every key.
public struct Config: Sendable, Equatable {
    public var spool: FilePath = "/var/spool/mediaspool"
    public var mediaRoot: FilePath?
    public var allowRoots: [FilePath] = []
    /// Per-tenant roots (config `tenants`): a job whose `tenant` is listed
    /// reads and writes only under that tenant's media root and allowed
    /// roots; jobs of other tenants, or of none, use `mediaRoot`/`allowRoots`.
    public var tenants: [String: TenantRoots] = [:]
    /// This host's mount point of a logical root (config `localRoots`,
    /// docs/scale-out.md "Media roots"): the media roots, allowed roots and
    /// manifests name logical paths, equal on every host of a shared spool;
    /// a path under a logical root listed here is opened under its local
    /// mount point instead. Host-local: not in `locks/.daemon.settings`.
    public var localRoots: [FilePath: FilePath] = [:]
    public var workers: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    public var maxAttempts: Int = 3
    public var timeoutSeconds: Double = 1800
    public var backoffInitialSeconds: Double = 30
    public var backoffMaxSeconds: Double = 600
    public var backoffMultiplier: Double = 2
    /// Full rescan of inbox/ and retry/, the safety net behind inotify (and
    /// in shared mode the pickup of jobs dropped through another host):
    /// 10 s, 1 s in shared mode, unless set.
    public var rescanSeconds: Double {
        get { rescanSecondsSet ?? (hosts == .shared ? 1 : 10) }
        set { rescanSecondsSet = newValue }
    }
    /// `rescanSeconds` as configured; nil for the mode's default.
    public var rescanSecondsSet: Double?
    /// One host, or several over a shared file system (Hosts.swift, docs/scale-out.md).
    public var hosts: HostMode = .single
    /// This host's id in records, events, the journal and hosts/; nil for
    /// the machine's host name, sanitised (`HostID.machine`).
    public var hostId: String?
    /// A host whose heartbeat is older than this is shown as gone.
    public var hostTimeoutSeconds: Double = 60
    /// Shared mode on a file system known not to fence (GlusterFS, JuiceFS):
    /// refused unless this is set.
    public var allowUnfencedShared = false
    /// SIGTERM: how long running jobs may finish before they are requeued.
    public var shutdownGraceSeconds: Double = 20
    /// A job still running this long past its timeout stops the watchdog.
    public var stuckGraceSeconds: Double = 30
    /// Producers' half-written files in tmp/ older than this are removed by sweep.
    public var tmpMaxAgeHours: Double = 24
    /// Threads each job's decoders, encoders and filter graphs use; 0 picks
    /// per job from the load (`JobThreads.perJob`).
    public var codecThreads: Int = 0
    public var limits = MediaLimits()

    /// `status` health: the oldest waiting job may wait this long (exit 4 past it).
    public var healthMaxWaitingSeconds: Double = 900
    /// `status` health: the share of failures among the jobs that ended in
    /// the last `healthWindowSeconds` (exit 5 above it), counted once at
    /// least `healthMinJobs` ended in the window.
    public var healthMaxFailureRate: Double = 0.5
    public var healthWindowSeconds: Double = 3600
    public var healthMinJobs: Int = 10

    /// Retention (sweep): done/failed jobs whose record is older are purged;
    /// nil keeps them forever. Outputs stay unless `retentionPurgesOutputs`.
    public var retainDoneDays: Double?
    public var retainFailedDays: Double?
    public var retentionPurgesOutputs = false

    /// Metrics: a node_exporter textfile-collector file rewritten atomically
    /// every `metricsIntervalSeconds`, and/or an HTTP listener
    /// ("127.0.0.1:9464", "[::1]:9464" or "unix:/run/mediaspool/metrics.sock").
    public var metricsTextfile: FilePath?
    public var metricsListen: String?
    public var metricsIntervalSeconds: Double = 15
    /// The events log (Events.swift): a segment's size before the next one
    /// starts, and how many segments are kept.
    public var eventsSegmentBytes: Int = Int(EventLog.defaultSegmentBytes)
    public var eventsKeepSegments: Int = EventLog.defaultKeepSegments
    /// For the CLI's transitions (cancel, hold): appends and rotates, never
    /// removes segments (the daemon's retention does).
    public var finisher: Finisher {
        var log = eventLog
        log.prunes = false
        return Finisher(layout: layout, events: log)
    }
    public var eventLog: EventLog {
        EventLog(layout: layout, segmentBytes: Int64(eventsSegmentBytes), keepSegments: eventsKeepSegments, prunes: true)
    }

    public init() {}

    public var effectiveMediaRoot: FilePath { mediaRoot ?? spool.appending("media") }
    public var effectiveHostId: String { hostId ?? HostID.machine }
    /// How often a daemon in shared mode writes its heartbeat: a quarter of
    /// the host timeout, between 0.5 and 5 s.
    public var heartbeatSeconds: Double { min(5, max(0.5, hostTimeoutSeconds / 4)) }
    public var layout: SpoolLayout { SpoolLayout(root: spool) }
    public var pathPolicy: PathPolicy { PathPolicy(mediaRoot: effectiveMediaRoot, allowedRoots: allowRoots, localRoots: localRoots) }

    /// Why `localRoots` cannot be used, or nil: each logical root listed must
    /// be a configured root (media root, allowed root, a tenant's) or above
    /// one, or a path would be mapped on opening an input and not on
    /// making an output's directory; and no local mount point may be `/`
    /// (every symlink would then stay "under a root").
    public var localRootsProblem: String? {
        let roots = ([effectiveMediaRoot] + allowRoots + tenants.values.flatMap { [$0.mediaRoot] + $0.allowRoots }).map { $0.lexicallyNormalized() }
        for (logical, local) in localRoots.sorted(by: { $0.key.string < $1.key.string }) {
            if local.components.isEmpty { return "localRoots maps \(logical) to /: give the mount point of that root" }
            if !roots.contains(where: { PathPolicy.isUnder($0, logical) }) {
                return "localRoots names \(logical), which is neither a configured root (mediaRoot, allowRoots, tenants) nor above one: map a root itself (or a directory above it)"
            }
        }
        return nil
    }

    /// The path checks of one tenant's jobs.
    public func pathPolicy(tenant: String?) -> PathPolicy {
        guard let tenant, let t = tenants[tenant] else { return pathPolicy }
        return PathPolicy(mediaRoot: t.mediaRoot, allowedRoots: t.allowRoots, localRoots: localRoots)
    }

    /// Backoff before attempt `attempt + 1`, after `attempt` attempts failed.
    public func backoff(afterAttempt attempt: Int) -> Double {
        min(backoffMaxSeconds, backoffInitialSeconds * pow(backoffMultiplier, Double(max(0, attempt - 1))))
    }

    public static let defaultPath: FilePath = "/etc/mediaspool/config.json"

    /// Applies a JSON config file on top of `self`. Unknown keys are errors.
    public mutating func apply(file: FilePath) throws(SpoolError) {
        let read: [UInt8]?
        do { read = try Sys.readFile(file, followSymlinks: true) } catch {
            throw SpoolError(.ioError, "cannot read config file \(file): \(error)")
        }
        guard let bytes = read else { throw SpoolError(.manifestTooLarge, "config \(file) is over 1 MiB or not a regular file") }
        let doc: JSONValue
        do { doc = try JSONValue.parse(bytes) } catch {
            throw SpoolError(.manifestInvalid, "config file \(file) is not valid JSON")
        }
        do {
            var r = try ObjectReader(doc, at: "$")
            try apply(&r)
            try r.finish()
        } catch {
            throw SpoolError(.manifestInvalid, "config file \(file): \(error.message)")
        }
    }

    mutating func apply(_ r: inout ObjectReader) throws(SchemaError) {
        if let v = try r.string("spool") { spool = FilePath(v) }
        if let v = try r.string("mediaRoot") { mediaRoot = FilePath(v) }
        if let a = try r.array("allowRoots", count: 0...64) {
            allowRoots = try a.enumerated().map { (i, v) throws(SchemaError) in
                guard case .string(let s) = v, s.hasPrefix("/") else { throw SchemaError.invalid("$.allowRoots[\(i)]", "must be an absolute path") }
                return FilePath(s)
            }
        }
        if var t = try r.object("tenants") {
            guard t.fields.count <= 1000 else { throw SchemaError.invalid("$.tenants", "must have at most 1000 entries") }
            var out: [String: TenantRoots] = [:]
            for name in t.fields.keys.sorted() {
                guard !name.isEmpty, name.utf8.count <= 128 else { throw SchemaError.invalid(t.sub(name), "tenant names must be 1-128 bytes") }
                guard var o = try t.object(name) else { continue }
                guard let root = try o.string("mediaRoot"), root.hasPrefix("/") else { throw SchemaError.invalid(o.sub("mediaRoot"), "is required and must be an absolute path") }
                var allow: [FilePath] = []
                if let a = try o.array("allowRoots", count: 0...64) {
                    allow = try a.enumerated().map { (i, v) throws(SchemaError) in
                        guard case .string(let s) = v, s.hasPrefix("/") else { throw SchemaError.invalid(o.sub("allowRoots[\(i)]"), "must be an absolute path") }
                        return FilePath(s)
                    }
                }
                try o.finish()
                out[name] = TenantRoots(mediaRoot: FilePath(root), allowRoots: allow)
            }
            try t.finish()
            tenants = out
        }
        if var o = try r.object("localRoots") {
            guard o.fields.count <= 64 else { throw SchemaError.invalid("$.localRoots", "must have at most 64 entries") }
            var out: [FilePath: FilePath] = [:]
            for logical in o.fields.keys.sorted() {
                guard logical.hasPrefix("/"), logical != "/" else { throw SchemaError.invalid(o.sub(logical), "the logical root must be an absolute path other than /") }
                guard let local = try o.string(logical), local.hasPrefix("/") else { throw SchemaError.invalid(o.sub(logical), "must be an absolute path: this host's mount point of \(logical)") }
                out[FilePath(logical).lexicallyNormalized()] = FilePath(local).lexicallyNormalized()
            }
            try o.finish()
            localRoots = out
        }
        if let v = try r.int("workers", 1...256) { workers = v }
        if let v = try r.int("maxAttempts", 1...10) { maxAttempts = v }
        if let v = try r.number("timeoutSeconds", 1...86400) { timeoutSeconds = v }
        if let v = try r.number("backoffInitialSeconds", 0...86400) { backoffInitialSeconds = v }
        if let v = try r.number("backoffMaxSeconds", 0...86400) { backoffMaxSeconds = v }
        if let v = try r.number("backoffMultiplier", 1...10) { backoffMultiplier = v }
        if let v = try r.number("rescanSeconds", 0.1...3600) { rescanSeconds = v }
        if let v = try r.string("hosts") {
            guard let m = HostMode(rawValue: v) else { throw SchemaError.invalid("$.hosts", "must be \"single\" or \"shared\"") }
            hosts = m
        }
        if let v = try r.string("hostId") {
            guard HostID.isValid(v) else { throw SchemaError.invalid("$.hostId", "must be 1-64 bytes of a-z 0-9 . - starting with a letter or digit") }
            hostId = v
        }
        if let v = try r.number("hostTimeoutSeconds", 1...3600) { hostTimeoutSeconds = v }
        if let v = try r.bool("allowUnfencedShared") { allowUnfencedShared = v }
        if let v = try r.number("shutdownGraceSeconds", 0...3600) { shutdownGraceSeconds = v }
        if let v = try r.number("stuckGraceSeconds", 1...3600) { stuckGraceSeconds = v }
        if let v = try r.number("tmpMaxAgeHours", 0...87600) { tmpMaxAgeHours = v }
        if let v = try r.int("codecThreads", 0...256) { codecThreads = v }
        if let v = try r.number("healthMaxWaitingSeconds", 1...31_536_000) { healthMaxWaitingSeconds = v }
        if let v = try r.number("healthMaxFailureRate", 0...1) { healthMaxFailureRate = v }
        if let v = try r.number("healthWindowSeconds", 60...31_536_000) { healthWindowSeconds = v }
        if let v = try r.int("healthMinJobs", 1...1_000_000) { healthMinJobs = v }
        if let v = try r.number("retainDoneDays", 0...36500) { retainDoneDays = v }
        if let v = try r.number("retainFailedDays", 0...36500) { retainFailedDays = v }
        if let v = try r.bool("retentionPurgesOutputs") { retentionPurgesOutputs = v }
        if let v = try r.string("metricsTextfile") {
            guard v.hasPrefix("/"), v.hasSuffix(".prom") else { throw SchemaError.invalid("$.metricsTextfile", "must be an absolute path ending in .prom (node_exporter reads only those)") }
            metricsTextfile = FilePath(v)
        }
        if let v = try r.string("metricsListen") {
            guard MetricsEndpoint(v) != nil else { throw SchemaError.invalid("$.metricsListen", "must be 127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/PATH") }
            metricsListen = v
        }
        if let v = try r.number("metricsIntervalSeconds", 1...3600) { metricsIntervalSeconds = v }
        if let v = try r.int("eventsSegmentBytes", 4096...(1 << 34)) { eventsSegmentBytes = v }
        if let v = try r.int("eventsKeepSegments", 1...100_000) { eventsKeepSegments = v }
        if var l = try r.object("limits") { try limits.read(&l) }
    }

    /// Applies MEDIASPOOL_* environment variables.
    public mutating func apply(environment env: [String: String]) throws(SpoolError) {
        var fields: [String: JSONValue] = [:]
        let keys: [(String, Bool)] = [("spool", false), ("mediaRoot", false), ("workers", true), ("maxAttempts", true),
                                      ("timeoutSeconds", true), ("backoffInitialSeconds", true), ("backoffMaxSeconds", true),
                                      ("backoffMultiplier", true), ("rescanSeconds", true), ("shutdownGraceSeconds", true),
                                      ("stuckGraceSeconds", true), ("tmpMaxAgeHours", true), ("codecThreads", true),
                                      ("healthMaxWaitingSeconds", true), ("healthMaxFailureRate", true), ("healthWindowSeconds", true),
                                      ("healthMinJobs", true), ("retainDoneDays", true), ("retainFailedDays", true),
                                      ("metricsTextfile", false), ("metricsListen", false), ("metricsIntervalSeconds", true),
                                      ("eventsSegmentBytes", true), ("eventsKeepSegments", true),
                                      ("hosts", false), ("hostId", false), ("hostTimeoutSeconds", true)]
        for (key, numeric) in keys {
            let envName = "MEDIASPOOL_" + key.reduce(into: "") { s, c in if c.isUppercase { s += "_" }; s += c.uppercased() }
            guard let v = env[envName] else { continue }
            if numeric {
                guard let d = Double(v) else { throw SpoolError(.manifestInvalid, "\(envName)=\(v) is not a number") }
                fields[key] = .number(d)
            } else { fields[key] = .string(v) }
        }
        if let v = env["MEDIASPOOL_RETENTION_PURGES_OUTPUTS"] {
            guard let b = Bool(v) else { throw SpoolError(.manifestInvalid, "MEDIASPOOL_RETENTION_PURGES_OUTPUTS=\(v) is not true or false") }
            fields["retentionPurgesOutputs"] = .bool(b)
        }
        if let v = env["MEDIASPOOL_ALLOW_UNFENCED_SHARED"] {
            guard let b = Bool(v) else { throw SpoolError(.manifestInvalid, "MEDIASPOOL_ALLOW_UNFENCED_SHARED=\(v) is not true or false") }
            fields["allowUnfencedShared"] = .bool(b)
        }
        if let v = env["MEDIASPOOL_LOCAL_ROOTS"] {  // LOGICAL=LOCAL:LOGICAL=LOCAL
            var o: [String: JSONValue] = [:]
            for pair in v.split(separator: ":") {
                let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { throw SpoolError(.manifestInvalid, "MEDIASPOOL_LOCAL_ROOTS: \(pair) is not LOGICAL=LOCAL") }
                o[kv[0]] = .string(kv[1])
            }
            fields["localRoots"] = .object(o)
        }
        if let v = env["MEDIASPOOL_ALLOW_ROOTS"] {
            fields["allowRoots"] = .array(v.split(separator: ":").map { .string(String($0)) })
        }
        guard !fields.isEmpty else { return }
        do {
            var r = try ObjectReader(.object(fields), at: "$")
            try apply(&r)
        } catch { throw SpoolError(.manifestInvalid, "environment: \(error.message)") }
    }
}

/// The roots of one tenant's jobs (config `tenants`).
public struct TenantRoots: Sendable, Equatable {
    public var mediaRoot: FilePath
    public var allowRoots: [FilePath]
    public init(mediaRoot: FilePath, allowRoots: [FilePath] = []) { self.mediaRoot = mediaRoot; self.allowRoots = allowRoots }
}

/// Where the metrics listener binds: loopback TCP only, or a Unix socket.
public enum MetricsEndpoint: Sendable, Equatable {
    case tcp(host: String, port: UInt16)
    case unix(FilePath)

    public init?(_ s: String) {
        if s.hasPrefix("unix:") {
            let p = String(s.dropFirst(5))
            guard p.hasPrefix("/"), p.utf8.count < 108 else { return nil }
            self = .unix(FilePath(p)); return
        }
        guard let colon = s.lastIndex(of: ":"), let port = UInt16(s[s.index(after: colon)...]), port > 0 else { return nil }
        let host = String(s[..<colon])
        switch host {
        case "127.0.0.1", "localhost": self = .tcp(host: "127.0.0.1", port: port)
        case "[::1]": self = .tcp(host: "::1", port: port)
        default: return nil
        }
    }
}
