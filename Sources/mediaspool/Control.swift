import ArgumentParser
import Foundation
import SpoolKit
import SystemPackage

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
        let layout = try global.load().layout
        var p = PauseState.read(layout)
        if tenant.isEmpty && type.isEmpty { p.all = true }
        p.tenants += tenant
        p.types += type.map(\.rawValue)
        try p.write(layout)
        say(PauseState.read(layout).summary)
    }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start jobs again after `pause`.",
        discussion: "Without options everything is resumed; --tenant and --type resume only those (what else was paused stays paused).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Resume this tenant's jobs (repeatable).") var tenant: [String] = []
    @Option(help: "Resume jobs of this type (repeatable).") var type: [JobType] = []

    func run() throws {
        let layout = try global.load().layout
        var p = PauseState.read(layout)
        if tenant.isEmpty && type.isEmpty { p = PauseState() }
        p.tenants.removeAll { tenant.contains($0) }
        p.types.removeAll { t in type.contains { $0.rawValue == t } }
        try p.write(layout)
        say(PauseState.read(layout).summary)
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
