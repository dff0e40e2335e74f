import ArgumentParser
import Foundation
import SpoolKit
import SpoolOps
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A live view: running jobs with progress, queue counts, latest failures.",
        discussion: "Redraws when the spool changes (inotify) and once a second for the clocks; Ctrl-C quits. --once prints one frame and exits, for scripts.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print one frame and exit.") var once = false
    @Option(help: "Columns (default: the terminal's width, else 80).") var width: Int?

    func run() throws {
        let cfg = try global.load()
        let view = WatchView(inspector: Inspector(layout: cfg.layout), health: Inspector.HealthPolicy(cfg))
        if once {
            print(view.frame(width: width ?? terminalWidth() ?? 80).joined(separator: "\n"))
            return
        }
        let l = cfg.layout
        let events = try DirectoryEventsOrThrow([l.inbox, l.retry, l.processing, l.done, l.failed])
        signal(SIGINT) { _ in
            let restore = "\u{1B}[?25h\u{1B}[?1049l"
            _ = restore.withCString { write(1, $0, strlen($0)) }
            _exit(0)
        }
        signal(SIGTERM, SIG_DFL)
        let stdout = FileDescriptor.standardOutput
        _ = try? Sys.writeAll(stdout, Array("\u{1B}[?1049h\u{1B}[?25l".utf8))   // alternate screen, cursor hidden
        while true {
            let lines = view.frame(width: width ?? terminalWidth() ?? 80)
            let out = "\u{1B}[H" + lines.map { $0 + "\u{1B}[K" }.joined(separator: "\n") + "\u{1B}[J"
            _ = try? Sys.writeAll(stdout, Array(out.utf8))
            // Redraw on a change, at most 5 times a second; else each second.
            if events.waitAndDrain(timeout: 1) { usleep(200_000); _ = events.waitAndDrain(timeout: 0) }
        }
    }

    private func DirectoryEventsOrThrow(_ dirs: [FilePath]) throws -> Sys.Inotify {
        do {
            let events = try Sys.Inotify()
            for d in dirs { try events.watch(d, Sys.Inotify.anyChange) }
            return events
        } catch { throw ValidationError("cannot watch the spool: \(error) (is it a spool?)") }
    }

    private func terminalWidth() -> Int? {
        var ws = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 else { return nil }
        return Int(ws.ws_col)
    }
}
