import ArgumentParser
import Foundation
import Logging
import SpoolKit
import SystemPackage
import SystemdSupport

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate manifests, then enqueue them atomically; prints their ids.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Manifest files (the id is the `id` field, else the file name without .json).") var files: [String]

    func run() throws {
        let layout = try global.load().layout
        if let problem = layout.check().first { throw ValidationError("\(problem): is \(layout.root) a spool? (the daemon creates it on start)") }
        var failures = 0
        for f in files {
            do {
                let (bytes, manifest) = try readManifest(f)
                let id = Producer.id(for: FilePath(f), manifest: manifest)
                if manifest.id == nil, !JobID.isValid(id) {
                    throw SpoolError(.idInvalid, "the file name gives the id \"\(id)\", which is not valid; rename the file or add an \"id\" field")
                }
                try Producer(layout: layout).submit(bytes, id: id)
                say(field(id))
            } catch {
                failures += 1
                warn("\(f): \(error)")
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}

/// Reads and validates a manifest file. `fileID`: the id its name gives,
/// checked against an `id` field by the manifest's own rules (ID_MISMATCH).
func readManifest(_ f: String, fileID: String? = nil) throws -> ([UInt8], Manifest) {
    switch Sys.readRegularFile(absolute(FilePath(f)), limit: Manifest.maxBytes, followSymlinks: true) {
    case .success(let bytes): return (bytes, try Manifest.parse(bytes, fileID: fileID))
    case .failure(.tooLarge(let size)): throw SpoolError(.manifestTooLarge, "manifest is \(size) bytes; at most \(Manifest.maxBytes) are accepted")
    case .failure(.notRegular(let kind)): throw SpoolError(.manifestInvalid, "not a regular file but a \(kind)")
    case .failure(.error(let e)): throw SpoolError(.ioError, "cannot read: \(e)")
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check manifests without enqueuing; exit 1 with the errors.")
    @OptionGroup var global: GlobalOptions
    @Argument var files: [String]
    @Flag(help: "One JSON object per file on stdout.") var json = false

    struct Verdict: Codable { var file: String; var valid: Bool; var code: String?; var message: String? }

    func run() throws {
        var bad = 0
        for f in files {
            do {
                let name = FilePath(f).lastComponent?.string ?? f
                let (_, m) = try readManifest(f, fileID: JobID.fromManifestName(name))
                if json { printJSON(Verdict(file: f, valid: true)) } else { say("\(field(f)): ok (\(m.type.rawValue))") }
            } catch let e as SpoolError {
                bad += 1
                if json { printJSON(Verdict(file: f, valid: false, code: e.code.rawValue, message: e.message)) } else { say("\(field(f)): \(e.code.rawValue): \(field(e.message))") }
            }
        }
        if bad > 0 { throw ExitCode(1) }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Counts per state, oldest waiting age, running jobs, daemon liveness: a health check.",
        discussion: """
        Exit status: 0 healthy; 3 no daemon holds the spool; 4 the oldest waiting job is older \
        than healthMaxWaitingSeconds; 5 more than healthMaxFailureRate of the jobs that ended \
        in the last healthWindowSeconds failed. When several apply, the lowest code wins.
        """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "Unhealthy (exit 4) when a job has waited longer (seconds; config healthMaxWaitingSeconds).") var maxWaiting: Double?
    @Option(help: "Unhealthy (exit 5) above this failed share, 0-1 (config healthMaxFailureRate).") var maxFailureRate: Double?
    @Flag(help: "One JSON object (exitCode, problems, counts, running...).") var json = false

    func run() throws {
        let cfg = try global.load()
        var policy = Inspector.HealthPolicy(cfg)
        if let maxWaiting { policy.maxWaitingSeconds = maxWaiting }
        if let maxFailureRate {
            guard (0...1).contains(maxFailureRate) else { throw ValidationError("--max-failure-rate is a share between 0 and 1") }
            policy.maxFailureRate = maxFailureRate
        }
        let s = Inspector(layout: cfg.layout).status(health: policy)
        if json { printJSON(s) } else {
            say("spool \(s.spool): daemon \(s.daemonAlive ? "running" : "NOT running"), \(s.healthy ? "healthy" : "UNHEALTHY")")
            if let p = s.paused { say("  \(field(p.summary)) (mediaspool resume)") }
            for k in ["inbox", "retry", "processing", "done", "failed"] + ((s.counts["held"] ?? 0) > 0 ? ["held"] : []) { say("  \(k.padding(toLength: 11, withPad: " ", startingAt: 0)) \(s.counts[k] ?? 0)") }
            if let o = s.oldestWaitingSeconds { say("  oldest waiting \(Int(o)) s") }
            if let r = s.failureRate { say("  last \(Int(policy.windowSeconds)) s: \(s.recentDone) done, \(s.recentFailed) failed (\(Int((r * 100).rounded()))%)") }
            for r in s.running {
                let pct = r.fraction.map { "\(Int($0 * 100))%" } ?? "?"
                say("  running \(field(r.id)) \(r.type ?? "?") step \(r.step ?? "?") \(pct) attempt \(r.attempt ?? 0) \(r.elapsedSeconds.map { "\(Int($0)) s" } ?? "")\(r.host.map { " host \($0)" } ?? "")")
            }
            for h in s.hosts {
                let state = h.gone ? "GONE (last beat \(Int(h.ageSeconds)) s ago)" : "up (beat \(Int(h.ageSeconds)) s ago)"
                say("  host \(field(h.host)) pid \(h.pid) \(state), \(h.running)/\(h.workers) running\(h.jobs.isEmpty ? "" : ": " + h.jobs.map(field).joined(separator: " "))")
            }
            for p in s.problems { say("problem: \(field(p))") }
        }
        if s.exitCode != 0 { throw ExitCode(s.exitCode) }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List jobs, newest first, paginated.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only jobs in this state (default: all).") var state: Inspector.State?
    @Option(help: "Only jobs with this label (K=V).") var label: String?
    @Option var tenant: String?
    @Option var limit: Int = 50
    @Option(help: "The nextCursor of the previous page.") var cursor: String?
    @Flag var json = false

    func run() throws {
        let states = state.map { [$0] } ?? Inspector.State.allCases
        let lbl = try parseLabel(label)
        let page = Inspector(layout: try global.load().layout).list(states: states, label: lbl, tenant: tenant, limit: max(1, limit), cursor: cursor)
        if json { printJSON(page); return }
        for i in page.items {
            say("\(i.time)  \(i.state.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(field(i.id))  \(i.type ?? "-")\(i.code.map { "  \(field($0))" } ?? "")")
        }
        if let c = page.nextCursor { say("more: --cursor \(c)") }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manifest, record and history of one job.")
    @OptionGroup var global: GlobalOptions
    @Argument var id: String
    @Flag var json = false

    func run() throws {
        guard let v = Inspector(layout: try global.load().layout).show(id) else {
            warn("no job \(id) in this spool")
            throw ExitCode(1)
        }
        if json { printJSON(v); return }
        say("job \(field(v.id)): \(v.state.rawValue)")
        say("manifest:\n\(v.manifest)")
        if let r = v.result { say("result:\n" + String(decoding: RecordCoding.encode(r), as: UTF8.self)) }
        if let e = v.error { say("error:\n" + String(decoding: RecordCoding.encode(e), as: UTF8.self)) }
        if let s = v.jobState { say("state:\n" + String(decoding: RecordCoding.encode(s), as: UTF8.self)) }
    }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Move failed jobs back to the inbox (same as `mv failed/ID.json inbox/`).")
    @OptionGroup var global: GlobalOptions
    @Argument var ids: [String] = []
    @Flag(help: "Every failed job.") var allFailed = false
    @Option(help: "With --all-failed: only those that failed with this code.") var code: String?

    func validate() throws {
        if ids.isEmpty == !allFailed { throw ValidationError("give job ids or --all-failed") }
    }

    func run() throws {
        let layout = try global.load().layout
        var todo = ids
        if allFailed {
            todo = Inspector(layout: layout).list(states: [.failed], label: nil, tenant: nil, limit: Int.max, cursor: nil).items
                .filter { code == nil || $0.code == code }.map(\.id)
        }
        var bad = 0
        for id in todo {
            do { try Producer(layout: layout).replay(id); say(field(id)) } catch { bad += 1; warn("\(id): \(error)") }
        }
        if bad > 0 { throw ExitCode(1) }
    }
}

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Recover stale jobs, remove temporary and old tmp/ files, purge jobs past retention (the timer runs this).")
    @OptionGroup var global: GlobalOptions
    @Flag var json = false

    func run() throws {
        let cfg = try global.load()
        LoggingSystem.bootstrapForDaemon(host: cfg.effectiveHostId)
        if let problem = cfg.layout.check().first { throw ValidationError("\(problem): is \(cfg.spool) a spool?") }
        let r = Recovery(config: cfg, logger: Logger(label: "mediaspool.sweep")).run(retention: true)
        if json { printJSON(r) } else {
            say("sweep: \(r.recovered) stale jobs requeued, \(r.finished) finished, \(r.failed) failed, \(r.tempFilesRemoved) temporary files, \(r.producerFilesRemoved) old tmp/ files, \(r.strayFilesRemoved) stray files removed, \(r.purged) old jobs purged (\(r.outputsPurged) outputs)")
        }
    }
}

/// `--label K=V` as a key and a value (list, gallery).
func parseLabel(_ label: String?) throws -> (String, String)? {
    guard let label else { return nil }
    let p = label.split(separator: "=", maxSplits: 1)
    guard p.count == 2 else { throw ValidationError("--label takes K=V") }
    return (String(p[0]), String(p[1]))
}

/// --state takes (and completes) inbox, retry, processing, done, failed.
extension Inspector.State: ExpressibleByArgument {}
