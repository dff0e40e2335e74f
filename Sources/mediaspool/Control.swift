import JobSchema
import ArgumentParser
import Foundation
import SpoolKit
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// `pause`, `resume` and `drain`: they write control/pause.json, which every
/// daemon on the spool follows (Pause.swift). A paused job is not claimed;
/// running jobs go on.
struct Pause: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop starting new jobs (running ones go on); survives a restart.",
        discussion: "Without options everything is paused; --tenant and --type pause only those jobs (repeatable). `mediaspool resume` undoes it.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Pause only this tenant's jobs (repeatable).") var tenant: [String] = []
    @Option(help: "Pause only jobs of this type (repeatable).") var type: [JobType] = []

    func run() throws {
        try changePause(global) { p in
            if tenant.isEmpty && type.isEmpty { p.all = true }
            p.tenants += tenant
            p.types += type.map(\.rawValue)
        }
    }
}

/// Reads control/pause.json, changes it, writes it back, and says what is paused now.
private func changePause(_ global: GlobalOptions, _ change: (inout PauseState) -> Void) throws {
    let layout = try global.load().layout
    var p = PauseState.read(layout)
    change(&p)
    try p.write(layout)
    say(PauseState.read(layout).summary)
}

/// Runs `body` for each valid job id; exit status 1 when an id is not
/// valid or `body` says it could not do its part.
private func eachJob(_ ids: [String], _ body: (String) throws -> Bool) throws {
    var bad = 0
    for id in ids {
        guard JobID.isValid(id) else { warn("\(id): not a valid job id"); bad += 1; continue }
        if try !body(id) { bad += 1 }
    }
    if bad > 0 { throw ExitCode(1) }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start jobs again after `pause`.",
        discussion: "Without options everything is resumed; --tenant and --type resume only those (what else was paused stays paused).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Resume this tenant's jobs (repeatable).") var tenant: [String] = []
    @Option(help: "Resume jobs of this type (repeatable).") var type: [JobType] = []

    func run() throws {
        try changePause(global) { p in
            if tenant.isEmpty && type.isEmpty { p = PauseState() }
            p.tenants.removeAll { tenant.contains($0) }
            p.types.removeAll { t in type.contains { $0.rawValue == t } }
        }
    }
}

struct Drain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pause, then wait until no job runs (before maintenance).",
        discussion: "Exit status: 0 when nothing runs any more; 2 when --timeout passed first (the pause stays). Waits on inotify events of processing/, not by polling.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Give up after this many seconds (exit 2).") var timeout: Double?

    func run() throws {
        let layout = try global.load().layout
        var p = PauseState.read(layout)
        p.all = true
        try p.write(layout)
        let events = try Sys.Inotify()
        try events.watch(layout.processing, Sys.Inotify.anyChange)
        let end = timeout.map { ContinuousClock.now + .seconds($0) }
        func running() -> Int {
            var n = 0
            try? Sys.forEachEntry(in: layout.processing) { if JobID.fromManifestName($0) != nil { n += 1 } }
            return n
        }
        var n = running()
        if n > 0 { say("paused; waiting for \(n) running job(s)") }
        while n > 0 {
            let left = end.map { ($0 - ContinuousClock.now).seconds } ?? 3600
            if left <= 0 {
                say("timed out with \(n) job(s) still running (the queue stays paused)")
                throw ExitCode(2)
            }
            _ = events.waitAndDrain(timeout: min(left, 3600))
            n = running()
        }
        say("drained: paused, nothing runs")
    }
}

extension JobType: ExpressibleByArgument {}

/// `wait`: the synchronous path of a producer's script
/// (`mediaspool submit x.json && mediaspool wait x`).
struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Block until each job is in done/ or failed/.",
        discussion: """
        Exit status: 0 when every job is done; 1 when any failed (its code is printed); 2 when --timeout \
        passed first. Waits on inotify events of done/ and failed/, not by polling. A job still waiting or \
        running (in inbox/, retry/ or processing/) is waited for even when an earlier run of its id is in \
        done/ or failed/; an id not (yet) in the spool is waited for too.
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Job ids.") var ids: [String]
    @Option(help: "Give up after this many seconds (exit 2).") var timeout: Double?
    @Flag(help: "Print each job's record (result or error) as JSON.") var json = false

    enum Outcome { case done, failed }

    func run() throws {
        let layout = try global.load().layout
        for id in ids where !JobID.isValid(id) { throw ValidationError("\"\(field(id))\" is not a valid job id") }
        let events = try Sys.Inotify()
        // A job ends with the rename of its manifest into done/ or failed/,
        // or (a duplicate of a done job) with its removal from inbox/:
        // nothing else wakes this process (not the progress files).
        for dir in [layout.done, layout.failed] { try events.watch(dir, UInt32(IN_MOVED_TO)) }
        try events.watch(layout.inbox, UInt32(IN_DELETE))
        let end = timeout.map { ContinuousClock.now + .seconds($0) }
        func outcome(_ id: String) -> Outcome? {
            for dir in [layout.inbox, layout.retry, layout.processing] where Sys.exists(layout.manifest(id, in: dir)) { return nil }
            if Sys.exists(layout.manifest(id, in: layout.done)) { return .done }
            if Sys.exists(layout.manifest(id, in: layout.failed)) { return .failed }
            return nil
        }
        var outcomes: [String: Outcome] = [:]
        while true {
            for id in ids where outcomes[id] == nil { outcomes[id] = outcome(id) }
            if outcomes.count == ids.count { break }
            let left = end.map { ($0 - ContinuousClock.now).seconds } ?? 3600
            if left <= 0 {
                for id in ids where outcomes[id] == nil { say("\(field(id)): not finished") }
                throw ExitCode(2)
            }
            _ = events.waitAndDrain(timeout: min(left, 3600))
        }
        let inspector = Inspector(layout: layout)
        var anyFailed = false
        for id in ids {
            if outcomes[id] == .done {
                if json, let r = inspector.result(id) { printJSON(r) } else if !json { say("\(field(id)): done") }
            } else {
                anyFailed = true
                let e = inspector.errorRecord(id)
                if json, let e { printJSON(e) } else if !json { say("\(field(id)): failed \(e?.code ?? "?"): \(field(e?.message ?? ""))") }
            }
        }
        if anyFailed { throw ExitCode(1) }
    }
}

/// `cancel`: a waiting job goes to failed/ at once; a running one is stopped
/// by the daemon running it (Cancel.swift). Both end CANCELLED (not retried);
/// `mediaspool replay ID` runs them again.
struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel waiting or running jobs: they end in failed/ with CANCELLED.",
        discussion: "Exit status: 0 when every job ended cancelled (or had already ended: said so); 1 when one could not be cancelled within --timeout, or is unknown.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Job ids.") var ids: [String]
    @Option(help: "How long to wait for a running job to stop (seconds).") var timeout: Double = 30

    func run() throws {
        let config = try global.load()
        let layout = config.layout
        try eachJob(ids) { id in
            if try config.finisher.cancelWaiting(id) { say("\(id): cancelled (it was waiting)"); return true }
            // Running (or being claimed): ask the daemon, and wait for the end.
            let running = Sys.exists(layout.manifest(id, in: layout.processing))
            guard running || Sys.exists(layout.manifest(id, in: layout.inbox)) || Sys.exists(layout.manifest(id, in: layout.retry)) else {
                if Sys.exists(layout.manifest(id, in: layout.done)) || Sys.exists(layout.manifest(id, in: layout.failed)) {
                    say("\(id): already ended; nothing to cancel")
                    return true
                }
                warn("\(id): no such job waiting or running")
                return false
            }
            try CancelRequests.request(layout, id)
            defer { CancelRequests.withdraw(layout, id) }
            let events = try Sys.Inotify()
            for dir in [layout.done, layout.failed] { try events.watch(dir, UInt32(IN_MOVED_TO)) }
            let end = ContinuousClock.now + .seconds(timeout)
            func ended() -> Bool {
                !Sys.exists(layout.manifest(id, in: layout.processing)) && !Sys.exists(layout.manifest(id, in: layout.inbox))
                    && !Sys.exists(layout.manifest(id, in: layout.retry))
            }
            while !ended() {
                let left = (end - ContinuousClock.now).seconds
                if left <= 0 { break }
                _ = events.waitAndDrain(timeout: left)
            }
            if !ended() { warn("\(id): still running after \(Int(timeout)) s; is a daemon running on this spool?"); return false }
            let code = Inspector(layout: layout).errorRecord(id)?.code
            say(code == "CANCELLED" ? "\(id): cancelled (it was running)" : "\(id): ended before the cancel reached it (\(code ?? "done"))")
            return true
        }
    }
}

/// `hold` and `release` (Hold.swift).
struct Hold: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hold waiting jobs aside (hold/): never started until released.",
        discussion: "Exit status 1 when a job is not waiting (running, finished or unknown).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Job ids.") var ids: [String]

    func run() throws {
        let f = try global.load().finisher
        try eachJob(ids) { id in
            switch try f.hold(id) {
            case .moved(let from, _): say("\(id): held (was in \(from)/)"); return true
            case .notWaiting: warn("\(id): not waiting (in neither inbox/ nor retry/)"); return false
            case .busy: warn("\(id): being claimed or running; cancel it instead (mediaspool cancel)"); return false
            }
        }
    }
}

struct Release: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put held jobs back where they were (inbox/, or retry/ with their attempts).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Job ids.") var ids: [String]

    func run() throws {
        let f = try global.load().finisher
        try eachJob(ids) { id in
            switch try f.release(id) {
            case .moved(_, let to): say("\(id): released to \(to)/"); return true
            case .notWaiting: warn("\(id): not held"); return false
            case .busy: warn("\(id): its lock is held; try again"); return false
            }
        }
    }
}
