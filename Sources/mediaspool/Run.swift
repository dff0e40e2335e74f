import ArgumentParser
import Foundation
import Jobs
import Logging
import MediaKit
import ServiceLifecycle
import SpoolKit
import SystemPackage
import SystemdSupport
import UnixSignals

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon in the foreground (systemd Type=notify).")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Worker threads (default: the number of cores).")
    var workers: Int?

    @Option(help: "Where relative manifest paths resolve (default: media/ in the spool).")
    var mediaRoot: String?

    @Option(help: "A further directory absolute manifest paths may point into (repeatable).")
    var allowRoot: [String] = []

    @Option(help: "This host's id in records, events, the journal and hosts/ (a-z 0-9 . -, 1-64 bytes; default: config hostId, else the host name).")
    var hostId: String?

    @Flag(help: "In shared mode, start even on a file system known not to fence (GlusterFS, JuiceFS): jobs may run twice (config allowUnfencedShared).")
    var allowUnfencedShared = false

    func config() throws -> Config {
        var c = try global.load()
        if let w = workers {
            guard (1...256).contains(w) else { throw ValidationError("--workers must be 1 to 256") }
            c.workers = w
        }
        if let m = mediaRoot { c.mediaRoot = absolute(FilePath(m)) }
        if !allowRoot.isEmpty { c.allowRoots = allowRoot.map { absolute(FilePath($0)) } }
        if let h = hostId {
            guard HostID.isValid(h) else { throw ValidationError("--host-id must be 1-64 bytes of a-z 0-9 . - starting with a letter or digit") }
            c.hostId = h
            HostID.current = h
        }
        if allowUnfencedShared { c.allowUnfencedShared = true }
        return c
    }

    func run() async throws {
        let level = ProcessInfo.processInfo.environment["MEDIASPOOL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let cfg = try config()
        HostID.pin(cfg.effectiveHostId)
        // MEDIASPOOL_HOST in every journal entry, the libav lines' too.
        LoggingSystem.bootstrapForDaemon(level: level, host: cfg.effectiveHostId)
        let logger = Logger(label: "mediaspool")
        // FFmpeg's warnings and errors go through the logger, with the job's
        // id; its info lines (encoder statistics) only at debug.
        FFmpegLog.install(threshold: level <= .debug ? .info : .warning, sink: libavLogSink)
        Jobs.applyProcessLimits(cfg.limits)
        let registry = MetricsService.bootstrap()
        let engine = Engine(config: cfg, runners: JobTypes.all, logger: logger)
        let service = DaemonService(engine: engine, notifier: Notifier(), logger: logger, reloadConfig: { try self.config() })
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: service)]
        if cfg.metricsTextfile != nil || cfg.metricsListen != nil {
            // Ends with the daemon, never ends it.
            services.append(.init(service: MetricsService(engine: engine, registry: registry, logger: logger),
                                  successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore))
        }
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            // Fenced off (Fencing.swift): EX_TEMPFAIL, after the message was logged.
            if engine.fencedOff != nil { throw ExitCode(fencedOffExitCode) }
            throw error
        }
    }
}

/// Ends the service group when the spool's file system fenced this host off.
struct FencedOff: Error {}

/// The daemon as one swift-service-lifecycle Service: start the engine
/// (recovery first), READY=1, then once a second the supervisor tick
/// (timeouts, WATCHDOG=1 while workers progress, STATUS=), SIGHUP reloads,
/// and on SIGTERM STOPPING=1 and a graceful drain.
struct DaemonService: Service {
    let engine: Engine
    let notifier: Notifier
    let logger: Logger
    let reloadConfig: @Sendable () throws -> Config

    func run() async throws {
        try await blocking { try engine.start() }
        notifier.ready(status: engine.tick().statusText)
        logger.notice("ready: spool \(engine.config.spool), \(engine.config.workers) workers, media root \(engine.config.effectiveMediaRoot)", metadata: ["STEP": "ready"])

        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await reloadOnSIGHUP() }
                group.addTask { try await supervise() }
                try await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            notifier.stopping(status: "stopping: draining \(engine.runningJobs.count) running jobs")
        }
        // A SIGTERM that came after a fence: no drain (nothing may be
        // published), a bounded wait, and the fenced exit status.
        if engine.fencedOff != nil {
            await blocking { engine.waitForWorkers(seconds: 10) }
            throw FencedOff()
        }
        let grace = engine.config.shutdownGraceSeconds
        logger.notice("stopping: letting running jobs finish (up to \(Int(grace)) s)", metadata: ["STEP": "shutdown"])
        await blocking { engine.shutdown(grace: grace) }
        logger.notice("stopped", metadata: ["STEP": "shutdown"])
    }

    func supervise() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if engine.fencedOff != nil {
                // Nothing is drained or requeued: another host owns the jobs.
                notifier.stopping(status: "fenced off from the spool: exiting")
                await blocking { engine.waitForWorkers(seconds: 10) }
                throw FencedOff()
            }
            let h = engine.tick()
            notifier.status(h.statusText)
            if h.progressing { notifier.watchdog() }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    func reloadOnSIGHUP() async {
        for await _ in await UnixSignalsSequence(trapping: .sighup) {
            notifier.reloading()
            do {
                engine.reload(try reloadConfig())
            } catch {
                logger.error("reload failed, keeping the old configuration: \(error)", metadata: ["STEP": "reload"])
            }
            notifier.ready(status: engine.tick().statusText)
        }
    }
}

/// Runs blocking work (fsync, joining threads) off the cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { cont in
        Thread.detachNewThread { cont.resume(with: Result { try body() }) }
    }
}

func blocking(_ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { cont in
        Thread.detachNewThread { body(); cont.resume() }
    }
}

/// FFmpeg's lines as log entries: FFmpeg calls this from any thread, so it
/// captures nothing and logs through a global logger (Logger is Sendable;
/// it is made on the first line, after the logging system is bootstrapped).
private let libavLogger = Logger(label: "libav")

private let libavLogSink: FFmpegLog.Sink = { level, job, line in
    guard let l = FFmpegLog.decode(level, job, line) else { return }
    var metadata: Logger.Metadata = ["STEP": "libav"]
    if let j = l.job { metadata["JOB_ID"] = "\(j)" }
    let lvl: Logger.Level = switch l.level {
    case .error: .error
    case .warning: .warning
    case .info: .info
    case .verbose, .debug: .debug
    }
    libavLogger.log(level: lvl, "\(l.line)", metadata: metadata)
}
