import Foundation
import HeapModule
import SystemPackage

/// Where a waiting job sits: the producers' inbox or the retry waiting room.
public enum Source: String, Sendable {
    case inbox, retry
    public var queue: SpoolQueue { self == .inbox ? .inbox : .retry }
}

/// A job waiting to be claimed: only what ordering needs, so 100,000 waiting
/// jobs cost a few megabytes, never their manifests.
public struct QueueEntry: Sendable, Equatable {
    public var id: String
    public var source: Source
    public var priority: Int
    public var tenant: String
    /// The manifest's `type` ("" when unknown): for pauses of one type.
    public var type: String = ""
    /// Arrival order: the ctime of the inbox entry (set by the producer's rename).
    public var arrival: Int64
    /// Not before this time (seconds since the epoch); 0 for "now".
    public var notBefore: Double
    /// The entry's name as bytes, only when they are not valid UTF-8 (then
    /// `id` is a lossy rendering that names no file).
    public var rawName: [UInt8]?

    public init(id: String, source: Source, priority: Int, tenant: String, arrival: Int64, notBefore: Double, rawName: [UInt8]? = nil) {
        self.id = id; self.source = source; self.priority = priority; self.tenant = tenant
        self.arrival = arrival; self.notBefore = notBefore; self.rawName = rawName
    }

    /// The directory entry's name.
    public var name: FilePath.Component {
        if let rawName, let c = SpoolName.component(rawName) { return c }
        return FilePath.Component(id + ".json") ?? "invalid.json"
    }
}

/// The scheduler. Order: higher priority first; within a priority, the
/// tenant with the fewest running jobs (ties: the one served longest ago), so
/// no tenant can starve another of workers; within a tenant, arrival order.
/// Thread-safe: workers block in `next()`.
///
/// `@unchecked Sendable`: every stored property is read and written with
/// `cond` held; a `Mutex` would do but for the blocking, timed wait of
/// `next()`, which it does not have (Sys.Condition).
public final class JobQueue: @unchecked Sendable {
    private struct Ready: Comparable {
        var arrival: Int64; var id: String; var generation: UInt64
        static func < (a: Ready, b: Ready) -> Bool { (a.arrival, a.id) < (b.arrival, b.id) }
    }
    /// A waiting retry, due on the monotonic clock: its wall-clock
    /// `notBefore` is turned into a delay once, when it is scheduled, so a
    /// wall clock set back or forward afterwards neither stalls nor
    /// releases it.
    private struct Delayed: Comparable {
        var due: ContinuousClock.Instant; var id: String; var generation: UInt64
        static func < (a: Delayed, b: Delayed) -> Bool { (a.due, a.id) < (b.due, b.id) }
    }
    private struct TenantQueue { var heap = Heap<Ready>(); var lastServed: UInt64 = 0 }

    private let cond = Sys.Condition()
    private var pending: [String: (entry: QueueEntry, generation: UInt64)] = [:]
    private var ready: [Int: [String: TenantQueue]] = [:]   // priority -> tenant -> heap
    private var delayed = Heap<Delayed>()
    private var inFlight: Set<String> = []
    private var runningPerTenant: [String: Int] = [:]
    private var generation: UInt64 = 0
    private var serveCounter: UInt64 = 0
    private var closed = false
    private var pause = PauseState()

    /// The longest a retry may wait from now. A notBefore further out was
    /// written under a wall clock that has since jumped back: it is
    /// clamped, so a clock jump cannot stall retries forever.
    public let maxDelay: Double
    /// Shared mode (several hosts on one spool): each pick takes one of the
    /// first `headWindow` ready entries of the chosen tenant at random,
    /// instead of the oldest, so hosts scanning the same inbox do not all
    /// race for the same file (a contended rename on CephFS stalls for
    /// seconds). Priority and the tenants' fair share are kept exactly;
    /// arrival order only within the window. 1: strict arrival order.
    public let headWindow: Int

    public init(maxDelay: Double = 600, headWindow: Int = 1) { self.maxDelay = maxDelay; self.headWindow = max(1, headWindow) }

    /// The head window of shared mode: wide enough that two hosts with a
    /// few workers each rarely draw the same entry, narrow enough that an
    /// entry waits behind at most 15 later ones of its priority and tenant.
    public static let sharedHeadWindow = 16

    public var count: Int { cond.lock(); defer { cond.unlock() }; return pending.count }
    public var countsBySource: [Source: Int] {
        cond.lock(); defer { cond.unlock() }
        var c: [Source: Int] = [.inbox: 0, .retry: 0]
        for (_, p) in pending { c[p.entry.source, default: 0] += 1 }
        return c
    }
    /// Seconds since the longest-waiting inbox entry arrived (0 when none).
    public func oldestInboxWait(now: Double) -> Double {
        cond.lock(); defer { cond.unlock() }
        var oldest = Int64.max
        for (_, p) in pending where p.entry.source == .inbox { oldest = min(oldest, p.entry.arrival) }
        return oldest == .max ? 0 : max(0, now - Double(oldest) / 1e9)
    }

    /// Jobs handed out and not finished (being claimed or running), and
    /// waiting jobs whose time has come (counted up to `cap`: a queue of
    /// 100,000 is not walked), read together.
    public func load(now: Double, cap: Int) -> (inFlight: Int, ready: Int) {
        cond.lock(); defer { cond.unlock() }
        var ready = 0
        for (_, p) in pending where p.entry.notBefore <= now {
            ready += 1
            if ready >= cap { break }
        }
        return (inFlight.count, ready)
    }

    public func entry(_ id: String) -> QueueEntry? { cond.lock(); defer { cond.unlock() }; return pending[id]?.entry }

    /// Adds or replaces the waiting entry of an id. A retry/ entry wins over
    /// an inbox/ one of the same id (the inbox one waits until that run ends).
    public func upsert(_ e: QueueEntry) {
        cond.lock(); defer { cond.unlock() }
        if let old = pending[e.id]?.entry, old.source == .retry, e.source == .inbox { return }
        var e = e
        let now = Date().timeIntervalSince1970
        e.notBefore = min(e.notBefore, now + maxDelay)
        generation += 1
        pending[e.id] = (e, generation)
        schedule(e, generation, now: now)
        cond.broadcast()
    }

    /// Ready now, or delayed until its notBefore (the backoff is honoured
    /// however the entry comes back).
    private func schedule(_ e: QueueEntry, _ g: UInt64, now: Double) {
        if e.notBefore > now {
            let delay = min(e.notBefore - now, maxDelay)
            delayed.insert(Delayed(due: .now.advanced(by: .seconds(delay)), id: e.id, generation: g))
        } else {
            insertReady(e, g)
        }
    }

    public func remove(_ id: String) {
        cond.lock(); defer { cond.unlock() }
        pending[id] = nil
    }

    private func insertReady(_ e: QueueEntry, _ g: UInt64) {
        ready[e.priority, default: [:]][e.tenant, default: TenantQueue()].heap.insert(Ready(arrival: e.arrival, id: e.id, generation: g))
    }

    private func promoteDue() {
        let now = ContinuousClock.now
        while let d = delayed.min, d.due <= now {
            delayed.removeMin()
            if let p = pending[d.id], p.generation == d.generation { insertReady(p.entry, p.generation) }
        }
    }

    /// Picks the next entry under the lock, or nil. Paused tenants' queues
    /// are passed over and kept; entries of a paused type are set aside and
    /// put back.
    private func pick() -> QueueEntry? {
        if pause.all { return nil }
        promoteDue()
        var heldBack: [(tenant: String, ready: Ready, priority: Int)] = []
        defer { for h in heldBack { ready[h.priority, default: [:]][h.tenant, default: TenantQueue()].heap.insert(h.ready) } }
        for prio in ready.keys.sorted(by: >) {
            while let tenants = ready[prio] {
                // Fewest running first, then least recently served.
                let name = tenants.keys.filter { !pause.tenants.contains($0) }.min { a, b in
                    let ra = runningPerTenant[a, default: 0], rb = runningPerTenant[b, default: 0]
                    return ra != rb ? ra < rb : tenants[a]!.lastServed < tenants[b]!.lastServed
                }
                guard let name, var tq = tenants[name] else { break }
                var found: QueueEntry?
                var window: [Ready] = []
                while let r = tq.heap.popMin() {
                    guard let p = pending[r.id], p.generation == r.generation else { continue } // stale
                    if inFlight.contains(r.id) { continue } // re-added when that run ends
                    if !pause.types.isEmpty, pause.types.contains(p.entry.type) { heldBack.append((name, r, prio)); continue }
                    window.append(r)
                    if window.count >= headWindow { break }
                }
                if !window.isEmpty {
                    let chosen = window.remove(at: headWindow == 1 ? 0 : Int.random(in: 0..<window.count))
                    for r in window { tq.heap.insert(r) }
                    found = pending[chosen.id]?.entry
                }
                if found != nil {
                    serveCounter += 1
                    tq.lastServed = serveCounter
                }
                ready[prio]![name] = tq.heap.isEmpty ? nil : tq
                if ready[prio]!.isEmpty { ready[prio] = nil }
                if let found { return found }
            }
        }
        return nil
    }

    /// Blocks until an entry is ready (or the queue is closed: nil). The
    /// entry's id is in flight until `finished(_:)`.
    public func next(while keepGoing: () -> Bool = { true }) -> QueueEntry? {
        cond.lock(); defer { cond.unlock() }
        while true {
            if closed || !keepGoing() { return nil }
            if let e = pick() {
                pending[e.id] = nil
                inFlight.insert(e.id)
                runningPerTenant[e.tenant, default: 0] += 1
                return e
            }
            if pause.all {
                cond.wait()  // setPause broadcasts the resume
            } else if let d = delayed.min {
                let left = ContinuousClock.now.duration(to: d.due)
                cond.wait(seconds: max(0.001, Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18))
            } else {
                cond.wait()
            }
        }
    }

    /// The run of `entry.id` has ended (or its claim failed).
    public func finished(_ entry: QueueEntry) {
        cond.lock(); defer { cond.unlock() }
        inFlight.remove(entry.id)
        runningPerTenant[entry.tenant, default: 1] -= 1
        if runningPerTenant[entry.tenant] == 0 { runningPerTenant[entry.tenant] = nil }
        if let p = pending[entry.id] { schedule(p.entry, p.generation, now: Date().timeIntervalSince1970) }
        cond.broadcast()
    }

    /// No more entries are handed out; blocked workers return nil.
    public func close() { cond.lock(); closed = true; cond.broadcast(); cond.unlock() }
    /// What may not start (running jobs go on).
    public func setPause(_ p: PauseState) { cond.lock(); pause = p; cond.broadcast(); cond.unlock() }
    public var pauseState: PauseState { cond.lock(); defer { cond.unlock() }; return pause }
    public func wakeAll() { cond.lock(); cond.broadcast(); cond.unlock() }
}
