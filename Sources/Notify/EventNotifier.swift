// mediaspool-notify: completion hooks for people who want them, outside the
// daemon (which keeps PrivateNetwork=yes). It follows the events log
// (SpoolKit/Events.swift) from a cursor it stores, and for each terminal
// event (done, failed, cancelled) POSTs the event's JSON line to each
// configured webhook with an HMAC-SHA256 signature, and/or runs a command
// with the line on stdin. A delivery that keeps failing is retried with
// backoff, then written to a dead-letter file; the cursor moves on only
// after every hook has its delivery or its dead letter, so a restart
// resumes where it stopped (at least once; `X-Mediaspool-Delivery` is the
// idempotency key for receivers).
import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import SpoolKit
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// /etc/mediaspool/notify.json.
public struct NotifyConfig: Decodable, Sendable {
    public struct Webhook: Decodable, Sendable {
        /// http(s) URL the events are POSTed to.
        public var url: String
        /// A file holding the HMAC key (its bytes, a trailing newline dropped).
        public var secretFile: String?
        /// Only these events (default: done, failed, cancelled).
        public var events: [EventKind]?
        /// Only this tenant's jobs.
        public var tenant: String?
    }
    public var webhooks: [Webhook] = []
    /// argv of a command run per event, the event's JSON line on stdin,
    /// MEDIASPOOL_EVENT, MEDIASPOOL_JOB_ID and MEDIASPOOL_CURSOR in its environment.
    public var command: [String]?
    public var commandEvents: [EventKind]?
    public var maxAttempts: Int = 5
    public var backoffInitialSeconds: Double = 1
    public var backoffMaxSeconds: Double = 60
    public var timeoutSeconds: Double = 10

    enum CodingKeys: String, CodingKey {
        case webhooks, command, commandEvents, maxAttempts, backoffInitialSeconds, backoffMaxSeconds, timeoutSeconds
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        webhooks = try c.decodeIfPresent([Webhook].self, forKey: .webhooks) ?? []
        command = try c.decodeIfPresent([String].self, forKey: .command)
        commandEvents = try c.decodeIfPresent([EventKind].self, forKey: .commandEvents)
        maxAttempts = min(100, max(1, try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? 5))
        backoffInitialSeconds = min(3600, max(0.01, try c.decodeIfPresent(Double.self, forKey: .backoffInitialSeconds) ?? 1))
        backoffMaxSeconds = min(86400, max(backoffInitialSeconds, try c.decodeIfPresent(Double.self, forKey: .backoffMaxSeconds) ?? 60))
        timeoutSeconds = min(600, max(0.1, try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? 10))
        for w in webhooks {
            guard let u = URL(string: w.url), ["http", "https"].contains(u.scheme ?? ""), u.host != nil else {
                throw DecodingError.dataCorruptedError(forKey: .webhooks, in: c, debugDescription: "webhook url \(w.url) is not an http(s) URL")
            }
        }
        if let command, command.isEmpty || !command[0].hasPrefix("/") {
            throw DecodingError.dataCorruptedError(forKey: .command, in: c, debugDescription: "command must be an argv whose first element is an absolute path")
        }
    }

    public static let terminal: [EventKind] = [.done, .failed, .cancelled]
}

/// The notifier's own files: `cursor` (the last event handled) and
/// `dead-letters.jsonl`, in its state directory (StateDirectory= in the unit).
public struct NotifyState: Sendable {
    public let dir: FilePath
    public init(dir: FilePath) { self.dir = dir }

    var cursorPath: FilePath { dir.appending("cursor") }
    public var deadLetters: FilePath { dir.appending("dead-letters.jsonl") }

    public func cursor() -> EventCursor? {
        (try? Sys.readFile(cursorPath, limit: 256)).flatMap { $0 }.flatMap { EventCursor(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Durable: a restart never goes back before a delivered event.
    public func store(_ c: EventCursor) throws(SpoolError) {
        try Durable.write(Array("\(c)\n".utf8), to: cursorPath, step: "store-cursor")
    }

    /// An event a stop interrupted: its cursor and the hooks (by number:
    /// the webhooks in order, then the command) that already have it, so a
    /// restart delivers it only to the others.
    var partialPath: FilePath { dir.appending("partial") }

    func partial(for c: EventCursor) -> Set<Int> {
        guard let bytes = (try? Sys.readFile(partialPath, limit: 4096)).flatMap({ $0 }) else { return [] }
        let parts = String(decoding: bytes, as: UTF8.self).split(separator: " ").map(String.init)
        guard parts.first.flatMap(EventCursor.init) == c else { return [] }
        return Set(parts.dropFirst().compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
    }

    func savePartial(_ c: EventCursor, done: Set<Int>) throws(SpoolError) {
        try Durable.write(Array(([c.description] + done.sorted().map(String.init)).joined(separator: " ").utf8 + [0x0A]), to: partialPath, step: "store-partial")
    }

    func clearPartial() {
        if Sys.exists(partialPath) { try? Sys.unlink(partialPath) }
    }

    func deadLetter(_ line: [UInt8]) {
        guard let fd = try? Sys.open(deadLetters, .writeOnly, options: [.create, .append, .noFollow], permissions: [.ownerReadWrite, .groupRead]) else { return }
        defer { try? fd.close() }
        try? Sys.writeAll(fd, line + [0x0A])
        try? Sys.fsync(fd)
    }
}

public final class EventNotifier: Sendable {
    let config: NotifyConfig
    let layout: SpoolLayout
    let state: NotifyState
    let logger: Logger
    let secrets: [Int: [UInt8]]
    private let stopping = Atomic<Bool>(false)

    public init(config: NotifyConfig, layout: SpoolLayout, state: NotifyState, logger: Logger) throws {
        self.config = config; self.layout = layout; self.state = state; self.logger = logger
        var s: [Int: [UInt8]] = [:]
        for (i, w) in config.webhooks.enumerated() {
            guard let f = w.secretFile else { continue }
            guard var bytes = try Sys.readFile(FilePath(f), limit: 4096, followSymlinks: true) else {
                throw SpoolError(.manifestInvalid, "secretFile \(f) is not a regular file of at most 4096 bytes")
            }
            while bytes.last == 0x0A || bytes.last == 0x0D { bytes.removeLast() }
            s[i] = bytes
        }
        secrets = s
    }

    /// Asks the loop to stop after the delivery in progress.
    public func stop() { stopping.store(true, ordering: .relaxed) }
    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// HMAC-SHA256 of the body, hex: the `X-Mediaspool-Signature` value after `sha256=`.
    public static func signature(_ body: [UInt8], key: [UInt8]) -> String {
        HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: key)).map { String(format: "%02x", $0) }.joined()
    }

    /// Follows the log until `stop()`: from the stored cursor, or `start`
    /// on a first run.
    public func run(start: EventCursor, follow: Bool = true) async throws {
        let reader = EventReader(layout: layout)
        var cursor = state.cursor() ?? start
        logger.info("following \(layout.events) from \(cursor)")
        let watcher = try Sys.Inotify()
        var watching = false
        while !isStopping {
            if !watching, Sys.exists(layout.events) {
                try watcher.watch(layout.events, UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO))
                watching = true
            }
            let batch: [EventLine]
            do { batch = try reader.read(after: cursor, limit: 1 << 20) } catch {
                switch error {
                case .expired:
                    // Retention removed what was not delivered: a dead letter
                    // says so (the operator resyncs from done/ and failed/).
                    logger.error("events after \(cursor) were removed by retention before they were delivered; going on from the oldest kept")
                    state.deadLetter(Array(#"{"error":"events after \#(cursor) were removed by retention before they were delivered","time":"\#(RFC3339.string(Date()))"}"#.utf8))
                    cursor = reader.start
                    try state.store(cursor)
                    continue
                case .invalid(let why):
                    // Not this log's cursor (the log was re-created?): no guessing.
                    logger.critical("the stored cursor is not valid for \(layout.events): \(why); remove \(state.dir)/cursor to start again from the end")
                    throw error
                }
            }
            var unsaved = false
            for e in batch {
                if isStopping { break }
                guard await handle(e) else { break } // stopped mid-delivery: this event again next time
                cursor = e.cursor
                unsaved = true
                if e.event.event.isTerminal { try state.store(e.cursor); unsaved = false }
            }
            if unsaved { try state.store(cursor) }
            if batch.isEmpty {
                if !follow { return }
                // Woken by a write to events/; the timeout only bounds how
                // long a stop request waits.
                _ = watcher.waitAndDrain(timeout: 1)
            }
        }
    }

    /// Delivers one event to every hook that wants it; false when a stop
    /// interrupted a delivery (the event is handled again after the restart).
    func handle(_ e: EventLine) async -> Bool {
        let event = e.event, cursor = e.cursor
        let body = EventReader.withCursor(e.line, cursor)
        // Hooks that got it before a stop interrupted this event.
        var done = state.partial(for: cursor)
        for (i, w) in config.webhooks.enumerated() where !done.contains(i) {
            guard (w.events ?? NotifyConfig.terminal).contains(event.event), w.tenant == nil || w.tenant == event.tenant else { continue }
            guard await deliver(what: "webhook \(w.url)", event: event, body: body, cursor: cursor, { [self] in
                try await post(w.url, body: body, event: event, cursor: cursor, key: secrets[i])
            }) else { try? state.savePartial(cursor, done: done); return false }
            done.insert(i)
        }
        let commandHook = config.webhooks.count
        if let argv = config.command, !done.contains(commandHook), (config.commandEvents ?? NotifyConfig.terminal).contains(event.event) {
            guard await deliver(what: "command \(argv[0])", event: event, body: body, cursor: cursor, { [self] in
                try await runCommand(argv, body: body, event: event, cursor: cursor)
            }) else { try? state.savePartial(cursor, done: done); return false }
        }
        state.clearPartial()
        return true
    }

    struct DeliveryError: Error, CustomStringConvertible { var description: String }

    /// Tries `attempt` up to maxAttempts times with exponential backoff; a
    /// dead letter when all fail. False when a stop came first (no dead
    /// letter: the event is delivered after the restart).
    func deliver(what: String, event: JobEvent, body: [UInt8], cursor: EventCursor, _ attempt: () async throws -> Void) async -> Bool {
        var delay = config.backoffInitialSeconds
        var lastError = ""
        for n in 1...config.maxAttempts {
            do {
                try await attempt()
                logger.debug("delivered \(event.event.rawValue) of \(event.id) to \(what)", metadata: ["JOB_ID": "\(event.id)", "ATTEMPT": "\(n)"])
                return true
            } catch {
                lastError = "\(error)"
                logger.warning("delivering \(event.event.rawValue) of \(event.id) to \(what) failed (attempt \(n) of \(config.maxAttempts)): \(lastError)",
                               metadata: ["JOB_ID": "\(event.id)", "ATTEMPT": "\(n)"])
            }
            if n < config.maxAttempts {
                // The backoff, in slices: a stop does not wait for it.
                let until = ContinuousClock.now + .seconds(delay)
                while ContinuousClock.now < until {
                    if isStopping { return false }
                    try? await Task.sleep(for: .milliseconds(100))
                }
                delay = min(config.backoffMaxSeconds, delay * 2)
            }
        }
        if isStopping { return false }
        struct Dead: Encodable { var time: String; var target: String; var cursor: String; var error: String; var event: JobEvent }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let data = try? enc.encode(Dead(time: RFC3339.string(Date()), target: what, cursor: "\(cursor)", error: lastError, event: event)) {
            state.deadLetter(Array(data))
        }
        logger.error("gave up delivering \(event.event.rawValue) of \(event.id) to \(what): \(lastError); written to \(state.deadLetters)", metadata: ["JOB_ID": "\(event.id)"])
        return true
    }

    func post(_ url: String, body: [UInt8], event: JobEvent, cursor: EventCursor, key: [UInt8]?) async throws {
        var req = HTTPClientRequest(url: url)
        req.method = .POST
        req.headers.add(name: "Content-Type", value: "application/json")
        req.headers.add(name: "User-Agent", value: "mediaspool-notify")
        req.headers.add(name: "X-Mediaspool-Event", value: event.event.rawValue)
        req.headers.add(name: "X-Mediaspool-Delivery", value: "\(cursor)")
        // Signed with the time, so a captured request cannot be replayed
        // later: HMAC-SHA256 of "<unix seconds>.<body>" (as Stripe does).
        let t = Int(Date().timeIntervalSince1970)
        req.headers.add(name: "X-Mediaspool-Timestamp", value: "\(t)")
        if let key { req.headers.add(name: "X-Mediaspool-Signature", value: "sha256=" + Self.signature(Array("\(t).".utf8) + body, key: key)) }
        req.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(req, timeout: .milliseconds(Int64(config.timeoutSeconds * 1000)))
        // Drain the body (small; at most 64 KiB read) so the connection is reused.
        _ = try? await response.body.collect(upTo: 64 * 1024)
        guard (200..<300).contains(response.status.code) else { throw DeliveryError(description: "HTTP \(response.status.code)") }
    }

    func runCommand(_ argv: [String], body: [UInt8], event: JobEvent, cursor: EventCursor) async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        var env = ProcessInfo.processInfo.environment
        env["MEDIASPOOL_EVENT"] = event.event.rawValue
        env["MEDIASPOOL_JOB_ID"] = event.id
        env["MEDIASPOOL_CURSOR"] = "\(cursor)"
        p.environment = env
        let input = Pipe()
        p.standardInput = input
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        // Written beside the wait, so a command that does not read its
        // stdin cannot block the notifier; a command that exits early gets
        // EPIPE, not a SIGPIPE (ignored at start), and the error is dropped.
        let writer = input.fileHandleForWriting
        let data = Data(body + [0x0A])
        DispatchQueue.global().async {
            try? writer.write(contentsOf: data)
            try? writer.close()
        }
        let deadline = Date().addingTimeInterval(config.timeoutSeconds)
        while p.isRunning {
            if Date() > deadline { p.terminate(); p.waitUntilExit(); throw DeliveryError(description: "timed out after \(config.timeoutSeconds) s") }
            try? await Task.sleep(for: .milliseconds(10))
        }
        guard p.terminationStatus == 0 else { throw DeliveryError(description: "exit status \(p.terminationStatus)") }
    }
}
