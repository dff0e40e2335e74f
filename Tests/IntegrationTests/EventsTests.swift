import Foundation
import SpoolKit
import Synchronization
import SystemPackage
import XCTest

/// Issue 17: the events log and `mediaspool events`, end to end.
final class EventsTests: XCTestCase {
    /// `mediaspool events --follow` as a consumer runs it: lines collected
    /// as they come, the cursor of the last complete one remembered.
    final class Consumer: Sendable {
        let process = Process()
        private let lines = Mutex<[String]>([])
        private let partial = Mutex<[UInt8]>([])

        init(spool: FilePath, since: String?, extra: [String] = []) throws {
            process.executableURL = URL(fileURLWithPath: mediaspoolBinary)
            process.arguments = ["events", "--follow", "--spool", spool.string] + (since.map { ["--since", $0] } ?? []) + extra
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            pipe.fileHandleForReading.readabilityHandler = { [self] h in
                let data = h.availableData
                guard !data.isEmpty else { h.readabilityHandler = nil; return }
                let complete: [String] = partial.withLock { buf in
                    buf += data
                    guard let last = buf.lastIndex(of: 0x0A) else { return [] }
                    let text = String(decoding: buf[...last], as: UTF8.self)
                    buf.removeSubrange(...last)
                    return text.split(separator: "\n").map(String.init)
                }
                lines.withLock { $0 += complete }
            }
            try process.run()
        }

        var received: [String] { lines.withLock { $0 } }

        func kill() { Foundation.kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    struct Seen: Decodable { var cursor: String; var event: String; var id: String; var tenant: String? }

    static func decode(_ lines: [String]) -> [Seen] {
        lines.compactMap { try? JSONDecoder().decode(Seen.self, from: Data($0.utf8)) }
    }

    func testEveryTerminalEventExactlyOnceThroughKillsOfTheDaemonAndTheConsumer() throws {
        let h = SpoolHarness(self)
        let n = 500
        h.start(workers: 2)
        var consumer = try Consumer(spool: h.root, since: nil)
        var seen: [Seen] = []
        defer { consumer.kill() }
        // Some jobs fail (a missing input), most are done.
        for i in 0..<n { h.submit("e\(i)", probeManifest(i % 10 == 0 ? "clips/missing.mp4" : "clips/v1.mp4", extra: #","tenant":"t\#(i % 3)""#)) }
        // kill -9 of the daemon twice, each time restarted (systemd's part),
        // and the consumer killed once and restarted from its last cursor.
        var killedConsumer = false
        for threshold in [n / 5, n / 2] {
            eventually(stall: 60, "\(threshold) jobs finished", progress: { h.finishedCount }) { h.finishedCount >= threshold }
            kill(h.daemons.last!.processIdentifier, SIGKILL)
            waitForExit(h.daemons.last!)
            if !killedConsumer {
                consumer.kill()
                seen += Self.decode(consumer.received)
                let cursor = try XCTUnwrap(seen.last?.cursor, "the consumer saw events before it was killed")
                consumer = try Consumer(spool: h.root, since: cursor)
                killedConsumer = true
            }
            h.start(workers: 2)
        }
        eventually(stall: 60, "all \(n) jobs finished", progress: { h.finishedCount }) { h.finishedCount == n }
        eventually(60, "the consumer saw every job end") {
            Set((seen + Self.decode(consumer.received)).filter { ["done", "failed", "cancelled"].contains($0.event) }.map(\.id)).count == n
        }
        h.stopAll()
        // Whatever came after: a fresh reader from the consumer's last cursor.
        consumer.kill()
        seen += Self.decode(consumer.received)
        let tail = runCLI(["events", "--spool", h.root.string, "--since", try XCTUnwrap(seen.last?.cursor)])
        seen += Self.decode(tail.split(separator: "\n").map(String.init))

        let terminal = seen.filter { ["done", "failed", "cancelled"].contains($0.event) }
        var count: [String: Int] = [:]
        for e in terminal { count[e.id, default: 0] += 1 }
        XCTAssertEqual(count.count, n, "every job's end was seen")
        XCTAssertEqual(count.filter { $0.value != 1 }.map(\.key).sorted(), [], "each exactly once")
        for i in 0..<n {
            let e = terminal.first { $0.id == "e\(i)" }
            XCTAssertEqual(e?.event, i % 10 == 0 ? "failed" : "done", "e\(i)")
            XCTAssertEqual(e?.tenant, "t\(i % 3)")
            XCTAssertEqual(h.result("e\(i)") != nil, i % 10 != 0, "the record agrees with the event")
        }
        // The cursors only go forward.
        let cursors = seen.compactMap { EventCursor($0.cursor) }
        XCTAssertEqual(cursors, cursors.sorted())
        print("events: \(seen.count) lines read, \(terminal.count) terminal for \(n) jobs through 2 kill -9 of the daemon and 1 of the consumer")
    }

    /// A crash between the event and the rename, and one between the record
    /// and the event: recovery finishes the job with its event exactly once.
    func testACrashAroundTheEventNeitherLosesNorRepeatsIt() throws {
        let h = SpoolHarness(self)
        for point in ["after-event", "after-result"] {
            let id = "crash-\(point)"
            h.submit(id, probeManifest("clips/v1.mp4"))
            let d = h.start(workers: 1, env: ["MEDIASPOOL_FAULTS": "crash:\(point)"])
            waitForExit(d)
            XCTAssertEqual(exitCode(d), 128 + SIGABRT, "aborted at \(point)")
            XCTAssertTrue(h.ids(in: h.layout.processing).contains(id))
            h.start(workers: 1)
            eventually(20, "\(id) finished by recovery") { h.ids(in: h.layout.done).contains(id) }
            h.stopAll()
            let events = Self.decode(runCLI(["events", "--spool", h.root.string, "--only", "done"]).split(separator: "\n").map(String.init))
            XCTAssertEqual(events.filter { $0.id == id }.count, 1, "\(id): one done event")
        }
    }

    /// Hold, release and cancel are told too; filters; an expired cursor.
    func testOperatorTransitionsFiltersAndRetention() throws {
        let h = SpoolHarness(self)
        // Small segments, two kept: retention is seen within a few jobs.
        try Data(#"{"eventsSegmentBytes":4096,"eventsKeepSegments":2}"#.utf8).write(to: URL(fileURLWithPath: h.root.appending("config.json").string))
        let config = ["--config", h.root.appending("config.json").string]
        h.submit("held", probeManifest("clips/v1.mp4", extra: #","tenant":"acme""#))
        _ = runCLI(["hold", "--spool", h.root.string] + config + ["held"])
        h.submit("gone", probeManifest("clips/v1.mp4"))
        _ = runCLI(["cancel", "--spool", h.root.string] + config + ["gone"])
        _ = runCLI(["release", "--spool", h.root.string] + config + ["held"])
        h.start(workers: 1, args: config)
        // done/ holds the manifest once the `done` event is appended (the result record comes before it).
        eventually(20, "held ran after its release") { h.ids(in: h.layout.done).contains("held") }
        let all = Self.decode(runCLI(["events", "--spool", h.root.string] + config).split(separator: "\n").map(String.init))
        XCTAssertEqual(all.filter { $0.id == "held" }.map(\.event), ["held", "released", "claimed", "done"])
        XCTAssertEqual(all.filter { $0.id == "gone" }.map(\.event), ["cancelled"])
        let acme = Self.decode(runCLI(["events", "--spool", h.root.string, "--tenant", "acme"] + config).split(separator: "\n").map(String.init))
        XCTAssertEqual(Set(acme.map(\.id)), ["held"])
        let first = try XCTUnwrap(all.first?.cursor)
        // Enough jobs to rotate past two 4 KiB segments.
        for i in 0..<40 { h.submit("r\(i)", probeManifest("clips/v1.mp4")) }
        eventually(60, "40 more jobs done") { (0..<40).allSatisfy { h.result("r\($0)") != nil } }
        h.stopAll()
        XCTAssertLessThanOrEqual(EventLog.segments(h.layout).count, 2, "only two segments kept")
        let expired = runProcess(mediaspoolBinary, ["events", "--spool", h.root.string, "--since", first] + config)
        XCTAssertEqual(expired.code, 3, "a cursor into a removed segment is refused")
    }
}

/// Runs mediaspool to its end; its stdout (a non-zero exit fails the test).
func runCLI(_ args: [String], file: StaticString = #filePath, line: UInt = #line) -> String {
    let r = runProcess(mediaspoolBinary, args)
    XCTAssertEqual(r.code, 0, "mediaspool \(args.joined(separator: " "))", file: file, line: line)
    return r.out
}
