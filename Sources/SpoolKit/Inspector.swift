import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Read-only views of a spool for `status`, `list` and `show`. The files
/// are the truth; nothing here writes.
public struct Inspector: Sendable {
    public let layout: SpoolLayout
    public init(layout: SpoolLayout) { self.layout = layout }

    public typealias State = SpoolQueue

    /// Calls `body` with the id and stat of every manifest in a state.
    func forEachJob(_ s: State, _ body: (String, stat) -> Void) {
        let d = layout.directory(s)
        // A name that is not UTF-8 is counted too (stat by its own bytes):
        // it waits to be refused.
        try? Sys.forEachRawEntry(in: d) { name, raw in
            guard let id = JobID.fromManifestName(name), !id.hasSuffix(".result"), !id.hasSuffix(".error"),
                  let component = raw.flatMap(SpoolName.component) ?? FilePath.Component(name),
                  let st = try? Sys.stat(d.appending(component), followSymlinks: false) else { return }
            body(id, st)
        }
    }

    public struct RunningJob: Codable, Sendable {
        public var id: String
        public var type: String?
        public var step: String?
        public var fraction: Double?
        public var attempt: Int?
        public var startedAt: String?
        public var elapsedSeconds: Double?
        /// The host running it (from its progress file; Hosts.swift).
        public var host: String?
    }

    public struct Status: Codable, Sendable {
        public var spool: String
        public var daemonAlive: Bool
        public var counts: [String: Int]
        public var oldestWaitingSeconds: Double?
        public var running: [RunningJob]
        /// Jobs that ended within the health window, and the failed share.
        public var recentDone: Int
        public var recentFailed: Int
        public var failureRate: Double?
        public var healthy: Bool
        /// What `status` exits with: see `Health`.
        public var exitCode: Int32
        public var problems: [String]
        /// What is paused (control/pause.json), nil when nothing is.
        public var paused: PauseState?
        /// Every host's daemon that beats in hosts/ (shared mode), by host
        /// id; those silent past hostTimeoutSeconds are `gone`.
        public var hosts: [HostStatus] = []
    }

    /// The health check's verdicts, as `mediaspool status` exit codes
    /// (docs/operations.md). When several apply, the lowest code wins.
    public enum Health: Int32, Sendable {
        case healthy = 0
        case noDaemon = 3
        case backlog = 4
        case failing = 5
    }

    public struct HealthPolicy: Sendable {
        public var maxWaitingSeconds: Double, maxFailureRate: Double, windowSeconds: Double, minJobs: Int
        /// A host whose heartbeat is older is shown as gone.
        public var hostTimeoutSeconds: Double
        public init(_ c: Config) {
            maxWaitingSeconds = c.healthMaxWaitingSeconds; maxFailureRate = c.healthMaxFailureRate
            windowSeconds = c.healthWindowSeconds; minJobs = c.healthMinJobs
            hostTimeoutSeconds = c.hostTimeoutSeconds
        }
    }

    /// Whether a daemon holds its shared lock on locks/.daemon.
    public var daemonAlive: Bool {
        let fd: FileDescriptor
        do { fd = try Sys.open(layout.daemonLock, .readOnly, options: [.noFollow, .nonBlocking]) } catch {
            // 0600: only the daemon's user and root can test it. A producer
            // running `status` cannot tell, and is not told of an outage.
            return error == .permissionDenied
        }
        defer { try? fd.close() }
        return !((try? Sys.tryLock(fd, LOCK_EX)) ?? false)  // an error counts as held
    }

    public func status(health policy: HealthPolicy) -> Status {
        var counts: [String: Int] = [:]
        var oldest: Double?
        var recent = [State.done: 0, .failed: 0]
        let now = Date().timeIntervalSince1970
        for s in [State.inbox, .retry, .processing, .held] {
            var n = 0
            forEachJob(s) { _, st in
                n += 1
                // ctime is when the manifest was renamed into inbox/.
                if s == .inbox { oldest = max(oldest ?? 0, now - Double(st.st_ctim.tv_sec)) }
            }
            counts[s.rawValue] = n
        }
        // Finished jobs from the index (no stat of 100,000 files), each
        // ended at its record's time.
        let (finished, recentEnded) = FinishedIndex(layout: layout).counts(since: Int64((now - policy.windowSeconds) * 1e9))
        recent = recentEnded
        counts["done"] = finished[.done]; counts["failed"] = finished[.failed]
        var running: [RunningJob] = []
        forEachJob(.processing) { id, _ in
            var r = RunningJob(id: id)
            if let b = try? Sys.readFile(layout.progress(id)), let p = RecordCoding.decode(ProgressRecord.self, b) {
                r.type = p.type; r.step = p.step; r.fraction = p.fraction.isFinite ? min(1, max(0, p.fraction)) : nil; r.attempt = p.attempt; r.startedAt = p.startedAt
                r.host = p.host.flatMap { HostID.isValid($0) ? $0 : nil }
                r.elapsedSeconds = RFC3339.date(p.startedAt).map { Date().timeIntervalSince($0) }
            }
            running.append(r)
        }
        let alive = daemonAlive
        var problems: [String] = []
        var verdicts: [Health] = []
        if !alive {
            verdicts.append(.noDaemon)
            problems.append("no daemon is running on this spool: systemctl status mediaspool; journalctl -u mediaspool -n 50")
        }
        let pause = PauseState.read(layout)
        // A backlog behind an operator's pause of everything is not a fault.
        if let oldest, oldest > policy.maxWaitingSeconds, !pause.all {
            verdicts.append(.backlog)
            problems.append("the oldest job has waited \(Int(oldest)) s in inbox/, over healthMaxWaitingSeconds (\(Int(policy.maxWaitingSeconds)) s): add workers or look for a stuck job (mediaspool watch)")
        }
        let ended = recent[.done, default: 0] + recent[.failed, default: 0]
        let rate = ended > 0 ? Double(recent[.failed, default: 0]) / Double(ended) : nil
        if let rate, ended >= policy.minJobs, rate > policy.maxFailureRate {
            verdicts.append(.failing)
            problems.append("\(recent[.failed, default: 0]) of the \(ended) jobs that ended in the last \(Int(policy.windowSeconds)) s failed (\(Int(rate * 100))%, over healthMaxFailureRate \(Int(policy.maxFailureRate * 100))%): mediaspool list --state failed")
        }
        let verdict = verdicts.map(\.rawValue).min() ?? Health.healthy.rawValue
        return Status(spool: layout.root.string, daemonAlive: alive, counts: counts, oldestWaitingSeconds: oldest,
                      running: running.sorted { $0.id < $1.id }, recentDone: recent[.done, default: 0],
                      recentFailed: recent[.failed, default: 0], failureRate: rate,
                      healthy: verdicts.isEmpty, exitCode: verdict, problems: problems, paused: pause.isEmpty ? nil : pause,
                      hosts: Heartbeats.read(layout, timeout: policy.hostTimeoutSeconds))
    }

    /// Waiting jobs (inbox/ and retry/) per priority, read from their
    /// manifests; nil when more than `limit` wait (too many files to read
    /// for a view that refreshes).
    public func waitingByPriority(limit: Int = 5000, cache: PriorityCache? = nil) -> [Int: Int]? {
        var out: [Int: Int] = [:], n = 0
        var seen: [String: PriorityCache.Entry] = [:]
        for s in [State.inbox, .retry] {
            var over = false
            forEachJob(s) { id, st in
                n += 1
                guard n <= limit else { over = true; return }
                let key = "\(s.rawValue)/\(id)"
                let prio: Int
                if let c = cache?.entries[key], c.inode == st.st_ino, c.mtime == st.mtimeNanoseconds, c.size == st.st_size {
                    prio = c.priority
                } else {
                    let bytes = st.isRegular ? (try? Sys.readFile(layout.manifest(id, in: layout.directory(s)))) ?? nil : nil
                    prio = bytes.map { Scanner.orderingFields($0).0 } ?? 0
                    cache?.reads += 1
                }
                if cache != nil { seen[key] = PriorityCache.Entry(inode: st.st_ino, mtime: st.mtimeNanoseconds, size: st.st_size, priority: prio) }
                out[prio, default: 0] += 1
            }
            if over { return nil }
        }
        cache?.entries = seen
        return out
    }

    /// Priorities of waiting manifests already read, by state/id, valid while
    /// the file keeps its inode, mtime and size (a producer's replacement is
    /// a new inode). `watch` redraws several times a second: with it, only
    /// new or replaced manifests are read again, not all of them each time.
    public final class PriorityCache {
        struct Entry { var inode: ino_t; var mtime: Int64; var size: off_t; var priority: Int }
        var entries: [String: Entry] = [:]
        /// Manifests read so far (for tests).
        public internal(set) var reads = 0
        public init() {}
    }

    public struct Item: Codable, Sendable {
        public var id: String
        public var state: State
        public var type: String?
        public var tenant: String?
        public var labels: [String: String]?
        public var code: String?
        public var time: String
        public var attempts: Int?
    }

    public struct Page: Codable, Sendable {
        public var items: [Item]
        public var nextCursor: String?
    }

    /// Jobs of some states, newest first, filtered, `limit` at a time. The
    /// cursor is the position after the last item given (time and id).
    public func list(states: [State], label: (String, String)?, tenant: String?, limit: Int, cursor: String?) -> Page {
        // Done and failed jobs come from the finished-jobs index (a cache of
        // the files, ListIndex.swift), newest first by their record's time;
        // the few waiting and running ones from their directories.
        typealias Candidate = (t: Int64, id: String, state: State, indexed: FinishedIndex.Entry?)
        var live: [Candidate] = []
        for s in states where s != .done && s != .failed {
            forEachJob(s) { id, st in
                live.append((st.mtimeNanoseconds, id, s, nil))
            }
        }
        live.sort { ($0.t, $0.id) > ($1.t, $1.id) }
        var after: (Int64, String)?
        if let cursor, let sep = cursor.firstIndex(of: ":"), let t = Int64(cursor[..<sep]) {
            after = (t, String(cursor[cursor.index(after: sep)...]))
        }
        let plainLabel = label.map { ($0.0 + $0.1).unicodeScalars.allSatisfy { $0.value >= 0x20 && $0 != "\"" && $0 != "\\" } } ?? false
        var items: [Item] = []
        var last: Candidate?
        var more = false
        // Takes candidates in order; false once the page is full and one more exists.
        func take(_ c: Candidate) -> Bool {
            if let after, (c.t, c.id) >= after { return true }
            if items.count == limit { more = true; return false }
            last = c
            // Cheap pre-filter: a label that JSON writes verbatim must appear verbatim in the line.
            if let (k, v) = label, plainLabel, let line = c.indexed?.line, !(line.contains(k) && line.contains(v)) { return true }
            let item = c.indexed.map(FinishedIndex.item) ?? liveItem(c.id, c.state, c.t)
            if let (k, v) = label, item.labels?[k] != v { return true }
            if let tenant, item.tenant != tenant { return true }
            items.append(item)
            return true
        }
        // Merge the live jobs with the index's stream, both newest first.
        var li = 0
        let finished = states.filter { $0 == .done || $0 == .failed }
        var going = true
        if !finished.isEmpty {
            FinishedIndex(layout: layout).forEachEntry(only: finished.count == 1 ? finished[0] : nil) { e in
                guard finished.contains(e.state) else { return true }
                while li < live.count, (live[li].t, live[li].id) > (e.t, e.id) {
                    guard take(live[li]) else { going = false; return false }
                    li += 1
                }
                going = take((e.t, e.id, e.state, e))
                return going
            }
        }
        while going, li < live.count { going = take(live[li]); li += 1 }
        let next = more ? last.map { "\($0.t):\($0.id)" } : nil
        return Page(items: items, nextCursor: next)
    }

    /// A waiting or running job's item, from its manifest.
    private func liveItem(_ id: String, _ state: State, _ t: Int64) -> Item {
        var item = Item(id: id, state: state, time: RFC3339.string(Date(timeIntervalSince1970: Double(t) / 1e9)))
        let m = (try? Sys.readFile(layout.manifest(id, in: layout.directory(state)))).flatMap { $0 }.flatMap { try? Manifest.parse($0, fileID: nil) }
        item.type = m?.type.rawValue; item.tenant = m?.tenant; item.labels = m?.labels
        return item
    }

    /// A done job's result record, or a failed (or replayed) job's error record.
    public func result(_ id: String) -> ResultRecord? { record(layout.result(id)) }
    public func errorRecord(_ id: String) -> ErrorRecord? { record(layout.errorRecord(id)) }

    private func record<R: Decodable>(_ p: FilePath) -> R? {
        (try? Sys.readFile(p)).flatMap { $0 }.flatMap { RecordCoding.decode(R.self, $0) }
    }

    public struct JobView: Codable, Sendable {
        public var id: String
        public var state: State
        public var manifest: String
        public var result: ResultRecord?
        public var error: ErrorRecord?
        public var jobState: JobState?
        public var progress: ProgressRecord?
    }

    public func show(_ id: String) -> JobView? {
        for s in [State.processing, .retry, .inbox, .held, .done, .failed] {
            guard let bytes = try? Sys.readFile(layout.manifest(id, in: layout.directory(s)), limit: Manifest.maxBytes) else { continue }
            var v = JobView(id: id, state: s, manifest: String(decoding: bytes, as: UTF8.self))
            if s == .done { v.result = result(id) }
            if s == .failed || s == .inbox { v.error = errorRecord(id) }
            v.jobState = record(layout.stateFile(id))
            v.progress = record(layout.progress(id))
            return v
        }
        return nil
    }
}
