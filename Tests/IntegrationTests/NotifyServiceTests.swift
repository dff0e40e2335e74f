import Foundation
import SpoolKit
import SystemPackage
import XCTest

/// Issue 17: mediaspool-notify against a webhook receiver on loopback that
/// refuses its first two deliveries, across a restart of the notifier.
final class NotifyServiceTests: XCTestCase {
    var notifyBinary: String { URL(fileURLWithPath: mediaspoolBinary).deletingLastPathComponent().appendingPathComponent("mediaspool-notify").path }

    /// A receiver on 127.0.0.1 (the peer, so Python's http.server): fails the
    /// first `failFirst` requests with 500, checks each signature with the
    /// secret, and writes one JSON line per request it accepts.
    static let receiver = #"""
    import hashlib, hmac, http.server, json, sys
    secret, log, fail_first = open(sys.argv[1], 'rb').read().strip(), sys.argv[2], int(sys.argv[3])
    seen = {'n': 0}
    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers['Content-Length']))
            seen['n'] += 1
            if seen['n'] <= fail_first:
                self.send_response(500); self.end_headers(); return
            sig = self.headers.get('X-Mediaspool-Signature', '')
            t = self.headers.get('X-Mediaspool-Timestamp', '')
            good = 'sha256=' + hmac.new(secret, t.encode() + b'.' + body, hashlib.sha256).hexdigest()
            e = json.loads(body)
            with open(log, 'a') as f:
                f.write(json.dumps({'id': e['id'], 'event': e['event'], 'valid': hmac.compare_digest(sig, good),
                                    'delivery': self.headers.get('X-Mediaspool-Delivery'), 'kind': self.headers.get('X-Mediaspool-Event')}) + '\n')
            self.send_response(204); self.end_headers()
        def log_message(self, *a): pass
    s = http.server.HTTPServer(('127.0.0.1', 0), H)
    print(s.server_address[1], flush=True)
    s.serve_forever()
    """#

    func testEveryEventDeliveredOnceSignedThroughFailuresAndARestart() throws {
        let h = SpoolHarness(self)
        let dir = h.root.appending("notify")
        try FileManager.default.createDirectory(atPath: dir.appending("state").string, withIntermediateDirectories: true)
        try Data("s3cret-key\n".utf8).write(to: URL(fileURLWithPath: dir.appending("secret").string))
        try Data(Self.receiver.utf8).write(to: URL(fileURLWithPath: dir.appending("receiver.py").string))
        let received = dir.appending("received.jsonl").string
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", dir.appending("receiver.py").string, dir.appending("secret").string, received, "2"]
        let portPipe = Pipe()
        server.standardOutput = portPipe
        try server.run()
        addTeardownBlock { server.terminate(); server.waitUntilExit() }
        let port = try XCTUnwrap(Int(String(decoding: portPipe.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        // A second hook that can never be reached (nothing listens on port 1),
        // and a command that appends what it gets.
        let commandOut = dir.appending("command.jsonl").string
        let config = #"""
        {"webhooks": [{"url": "http://127.0.0.1:\#(port)/hook", "secretFile": "\#(dir.appending("secret").string)"},
                      {"url": "http://127.0.0.1:1/nobody", "events": ["failed"]}],
         "command": ["/bin/sh", "-c", "cat >> \#(commandOut)"],
         "maxAttempts": 3, "backoffInitialSeconds": 0.1, "timeoutSeconds": 5}
        """#
        try Data(config.utf8).write(to: URL(fileURLWithPath: dir.appending("notify.json").string))

        func startNotifier() throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: notifyBinary)
            p.arguments = ["--spool", h.root.string, "--config", dir.appending("notify.json").string,
                           "--state-directory", dir.appending("state").string, "--from", "start"]
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            return p
        }
        func lines(_ path: String) -> [[String: Any]] {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        h.start(workers: 2)
        var notifier = try startNotifier()
        for i in 0..<10 { h.submit("n\(i)", probeManifest(i == 3 ? "clips/missing.mp4" : "clips/v1.mp4")) }
        eventually(60, "the first deliveries") { lines(received).count >= 5 }
        // A graceful restart: SIGTERM, after the delivery in progress.
        notifier.terminate(); notifier.waitUntilExit()
        XCTAssertEqual(notifier.terminationStatus, 0)
        for i in 10..<20 { h.submit("n\(i)", probeManifest("clips/v1.mp4")) }
        notifier = try startNotifier()
        eventually(90, "every terminal event delivered") { Set(lines(received).compactMap { $0["id"] as? String }).count == 20 }
        eventually(30, "every event handed to the command") { lines(commandOut).count >= 20 }
        notifier.terminate(); notifier.waitUntilExit()
        h.stopAll()

        let got = lines(received)
        var count: [String: Int] = [:]
        for l in got { count[l["id"] as! String, default: 0] += 1 }
        XCTAssertEqual(count.count, 20)
        XCTAssertEqual(count.filter { $0.value != 1 }.map(\.key), [], "each delivered once")
        XCTAssertTrue(got.allSatisfy { $0["valid"] as? Bool == true }, "every signature checks out")
        XCTAssertEqual(got.first { $0["id"] as? String == "n3" }?["event"] as? String, "failed")
        XCTAssertTrue(got.allSatisfy { ($0["delivery"] as? String).flatMap(EventCursor.init) != nil }, "the delivery id is the event's cursor")
        XCTAssertEqual(Set(lines(commandOut).compactMap { $0["id"] as? String }).count, 20)
        // The unreachable hook: its one event (n3 failed) is a dead letter after 3 attempts.
        let dead = lines(dir.appending("state/dead-letters.jsonl").string)
        XCTAssertEqual(dead.count, 1)
        XCTAssertEqual((dead.first?["event"] as? [String: Any])?["id"] as? String, "n3")
        XCTAssertTrue((dead.first?["target"] as? String ?? "").contains("127.0.0.1:1"))
        // The stored cursor is where the log ends: nothing left behind.
        let stored = try String(contentsOfFile: dir.appending("state/cursor").string, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(EventCursor(stored), EventReader(layout: h.layout).end)
    }
}
