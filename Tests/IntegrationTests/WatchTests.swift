import Foundation
import SpoolKit
import XCTest

/// `mediaspool watch` driven in a real terminal (tmux, 80x30) and read back.
final class WatchTests: XCTestCase {
    func tmux(_ args: [String]) -> String { runProcess("/usr/bin/tmux", args).out }

    func percent(of id: String, in screen: String) -> Int? {
        guard let line = screen.split(separator: "\n").first(where: { $0.contains(id) && $0.contains("eta") }),
              let r = line.range(of: #"\d+%"#, options: .regularExpression) else { return nil }
        return Int(line[r].dropLast())
    }

    func testLiveViewInAnEightyColumnTerminal() throws {
        let h = SpoolHarness(self)
        h.start(workers: 1, env: ["MEDIASPOOL_FAULTS": "delay:long:9000"])
        h.submit("broken1", probeManifest("clips/missing.mp4"))
        eventually(10, "broken1 failed") { h.error("broken1") != nil }
        h.submit("long1", probeManifest("clips/v1.mp4"))
        eventually(5, "long1 running") { h.names(h.layout.processing).contains("long1.json") }
        h.submit("urgent", probeManifest("clips/v1.mp4", extra: #","priority":5"#))
        h.submit("normal", probeManifest("clips/v1.mp4"))
        h.submit("later", probeManifest("clips/v1.mp4", extra: #","priority":-2"#))

        let socket = "mediaspool-test-\(UUID().uuidString.prefix(8))"
        addTeardownBlock { _ = self.tmux(["-L", socket, "kill-server"]) }
        _ = tmux(["-L", socket, "new-session", "-d", "-s", "w", "-x", "80", "-y", "30",
                  "env SWIFT_BACKTRACE=enable=no '\(mediaspoolBinary)' watch --spool '\(h.root.string)'"])
        var screen = ""
        eventually(10, "the view shows long1 with progress") {
            screen = tmux(["-L", socket, "capture-pane", "-p", "-t", "w"])
            return percent(of: "long1", in: screen) != nil
        }
        let lines = screen.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertTrue(lines.allSatisfy { $0.count <= 80 }, "fits 80 columns:\n\(screen)")
        XCTAssertTrue(screen.contains("daemon running"), screen)
        XCTAssertTrue(screen.contains("RUNNING (1)"), screen)
        let running = try XCTUnwrap(lines.first { $0.contains("long1") }, screen)
        XCTAssertTrue(running.contains("probe") && running.contains("injected-del") && running.contains("["), String(running))
        XCTAssertTrue(screen.contains("inbox 3"), screen)
        XCTAssertTrue(screen.contains("p+5: 1") && screen.contains("p0: 1") && screen.contains("p-2: 1"), screen)
        XCTAssertTrue(screen.contains("broken1") && screen.contains("INPUT_NOT_FOUND"), screen)
        let first = try XCTUnwrap(percent(of: "long1", in: screen))

        // It moves on its own: progress grows, then the queue drains.
        eventually(6, "progress advances") {
            screen = tmux(["-L", socket, "capture-pane", "-p", "-t", "w"])
            return (percent(of: "long1", in: screen) ?? 0) >= first + 20
        }
        eventually(20, "all done, shown without a keypress") {
            screen = tmux(["-L", socket, "capture-pane", "-p", "-t", "w"])
            return screen.contains("done 4") && screen.contains("RUNNING (0)")
        }
        XCTAssertTrue(screen.contains("inbox 0"), screen)

        // Ctrl-C leaves the terminal as it was (the session's only program ends).
        _ = tmux(["-L", socket, "send-keys", "-t", "w", "C-c"])
        eventually(5, "watch exited") { !tmux(["-L", socket, "list-sessions"]).contains("w:") }
        h.stopAll()
    }

    func testOnceForScripts() {
        let h = SpoolHarness(self)
        h.submit("a", probeManifest("clips/v1.mp4"))
        let (code, out) = h.cli(["watch", "--once", "--width", "80"])
        XCTAssertEqual(code, 0)
        XCTAssertTrue(out.contains("NO DAEMON"))
        XCTAssertTrue(out.contains("inbox 1"))
        XCTAssertTrue(out.contains("RUNNING (0)"))
        XCTAssertTrue(out.split(separator: "\n").allSatisfy { $0.count <= 80 })
        XCTAssertFalse(out.contains("\u{1B}"), "no terminal escapes in --once output")
    }
}
