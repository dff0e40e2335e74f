import ArgumentParser
import Foundation
import SpoolKit
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// `events`: the job events log (SpoolKit/Events.swift) as JSON lines, each
/// with the cursor to resume after it.
struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print job events (claimed, progress, retrying, done, failed, cancelled, held, released) as JSON lines.",
        discussion: """
        Each line starts with "cursor"; store the cursor of the last line you handled and pass it to --since \
        after a restart: nothing is missed and nothing is repeated. Terminal events (done, failed, cancelled) \
        are in the log exactly once, durable before the job's manifest moves to done/ or failed/ (its record is \
        there when you see the event). --follow waits for new events (inotify; every 2 s a look for writes \
        from other hosts of a shared file system). \
        Exit status: 0; 3 when --since names events that retention already removed (resync from done/ and \
        failed/, then start from `--since end`).
        """)
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Keep printing new events as they come.") var follow = false
    @Option(help: "Start after this cursor (N:OFFSET from an earlier line), or `start` (default) or `end`.") var since: String?
    @Option(help: "Only this tenant's events.") var tenant: String?
    @Option(help: "Only these events (comma-separated: done,failed,cancelled, …).") var only: String?

    func run() throws {
        let layout = try global.load().layout
        let reader = EventReader(layout: layout)
        var cursor: EventCursor
        switch since {
        case nil, "start": cursor = reader.start
        case "end": cursor = reader.end
        case let text?:
            guard let c = EventCursor(text) else { throw ValidationError("--since \(field(text)) is not a cursor (N:OFFSET), start or end") }
            cursor = c
        }
        var kinds: Set<EventKind>?
        if let only {
            kinds = []
            for k in only.split(separator: ",") {
                guard let kind = EventKind(rawValue: String(k)) else { throw ValidationError("--only: unknown event \(field(String(k))); one of \(EventKind.allCases.map(\.rawValue).joined(separator: ", "))") }
                kinds?.insert(kind)
            }
        }
        let watcher = follow ? try Sys.Inotify() : nil
        var watching = false
        let out = FileHandle.standardOutput
        while true {
            if let watcher, !watching, Sys.exists(layout.events) {
                // A write or a new segment wakes us; nothing else.
                try watcher.watch(layout.events, UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO))
                watching = true
            }
            let batch: [EventLine]
            do { batch = try reader.read(after: cursor) } catch {
                switch error {
                case .expired(let oldest):
                    warn("events after \(cursor) were removed by retention (oldest kept: segment \(oldest.map(String.init) ?? "none")); resync from done/ and failed/, then use --since end")
                    throw ExitCode(3)
                case .invalid(let why):
                    throw ValidationError("--since: \(why)")
                }
            }
            var text: [UInt8] = []
            for e in batch {
                cursor = e.cursor
                if let tenant, e.event.tenant != tenant { continue }
                if let kinds, !kinds.contains(e.event.event) { continue }
                text += EventReader.withCursor(e.line, e.cursor) + [0x0A]
            }
            if !text.isEmpty { out.write(Data(Escaping.jsonTerminalSafe(text))) }
            guard let watcher else { return }
            // More may be waiting already (a batch is at most 4 MiB).
            if !batch.isEmpty { continue }
            // inotify wakes us for writes on this host; writes by daemons on
            // other hosts of a shared file system (CephFS) send none, and are
            // seen at the next 2 s check.
            _ = watcher.waitAndDrain(timeout: 2)
        }
    }
}
