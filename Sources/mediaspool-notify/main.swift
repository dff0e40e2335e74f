import ArgumentParser
import Foundation
import Logging
import Notify
import SpoolKit
import SystemdSupport
import SystemPackage

/// The optional completion-hook service (systemd/mediaspool-notify.service):
/// follows the spool's events log and delivers terminal events to webhooks
/// and/or a command (Sources/Notify/EventNotifier.swift).
@main
struct MediaspoolNotify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mediaspool-notify",
        abstract: "Deliver mediaspool's job events to webhooks (HMAC-signed POSTs) and/or a command.",
        discussion: """
        Reads the events log of the spool from the cursor stored in the state directory (a first run starts \
        at --from) and, for each done, failed or cancelled event, POSTs its JSON line to every configured \
        webhook (headers X-Mediaspool-Event, X-Mediaspool-Delivery: the event's cursor, an idempotency key, \
        and X-Mediaspool-Signature: sha256=HMAC-SHA256 of the body with the webhook's secret) and runs the \
        configured command with the line on stdin. Failed deliveries are retried with backoff, then written \
        to dead-letters.jsonl in the state directory. SIGTERM stops after the delivery in progress.
        """)

    @Option(help: "The spool root.") var spool: String = "/var/spool/mediaspool"
    @Option(help: "The notifier's config (JSON: webhooks, command, retries).") var config: String = "/etc/mediaspool/notify.json"
    @Option(help: "Where the cursor and the dead letters are kept (default $STATE_DIRECTORY, else /var/lib/mediaspool-notify).")
    var stateDirectory: String?
    @Option(help: "Where a first run starts: end (only new events) or start (every event kept).") var from: String = "end"
    @Flag(help: "Deliver what is in the log now, then exit (no --follow).") var once = false

    func run() async throws {
        let level = ProcessInfo.processInfo.environment["MEDIASPOOL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrapForDaemon(level: level)
        let logger = Logger(label: "mediaspool-notify")
        guard from == "end" || from == "start" else { throw ValidationError("--from must be end or start") }
        let cfg: NotifyConfig
        do {
            guard let bytes = try Sys.readFile(FilePath(config), limit: 1 << 20, followSymlinks: true) else { throw ValidationError("\(config) is not a regular file") }
            cfg = try JSONDecoder().decode(NotifyConfig.self, from: Data(bytes))
        } catch {
            logger.critical("cannot read the config \(config): \(error)")
            throw ExitCode(78) // EX_CONFIG
        }
        let stateDir = FilePath(stateDirectory ?? ProcessInfo.processInfo.environment["STATE_DIRECTORY"] ?? "/var/lib/mediaspool-notify")
        try? Sys.mkdirs(stateDir)
        let layout = SpoolLayout(root: FilePath(spool))
        let notifier = try EventNotifier(config: cfg, layout: layout, state: NotifyState(dir: stateDir), logger: logger)
        signal(SIGTERM, SIG_IGN); signal(SIGINT, SIG_IGN)
        // A command hook that exits without reading its stdin: EPIPE, not death.
        signal(SIGPIPE, SIG_IGN)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            let s = DispatchSource.makeSignalSource(signal: sig)
            s.setEventHandler { logger.info("stopping after the delivery in progress"); notifier.stop() }
            s.resume()
            sources.append(s)
        }
        let reader = EventReader(layout: layout)
        SystemdSupport.Notifier().ready(status: "following \(layout.events)")
        try await notifier.run(start: from == "start" ? reader.start : reader.end, follow: !once)
        _ = sources
        logger.info("stopped")
    }
}
