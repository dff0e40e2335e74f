import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import SpoolKit
import SystemPackage

/// Exports the swift-metrics the engine records, through swift-prometheus:
/// every `metricsIntervalSeconds` into the node_exporter textfile (written
/// atomically: temporary file, fsync, rename), and on request over HTTP on a
/// loopback port or Unix socket when `metricsListen` is set. docs/metrics.md.
struct MetricsService: Service {
    let engine: Engine
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    /// swift-metrics' backend for the process, once, before the engine runs.
    static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let buckets = SpoolMetrics.durationBuckets.map { Duration.milliseconds(Int64($0 * 1000)) }
        factory.defaultDurationHistogramBuckets = buckets
        for name in SpoolMetrics.histogramNames { factory.durationHistogramBuckets[name] = buckets }
        MetricsSystem.bootstrap(factory)
        return registry
    }

    func exposition() -> [UInt8] {
        engine.updateGauges()
        return registry.emitToBuffer()
    }

    func run() async throws {
        let cfg = engine.config
        var server: MetricsServer?
        if let listen = cfg.metricsListen, let endpoint = MetricsEndpoint(listen) {
            do {
                server = try MetricsServer(endpoint: endpoint, logger: logger) { exposition() }
                logger.notice("metrics served on \(listen)", metadata: ["STEP": "metrics"])
            } catch {
                logger.error("cannot listen on \(listen) for metrics: \(error); metrics go to the textfile only", metadata: ["STEP": "metrics"])
            }
        }
        defer { server?.stop() }
        guard let textfile = cfg.metricsTextfile else {
            if server != nil { try? await gracefulShutdown() }
            return
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            write(textfile)
            try? await Task.sleep(for: .seconds(cfg.metricsIntervalSeconds))
        }
        write(textfile)   // the last counts, after the drain
    }

    func write(_ path: FilePath) {
        do { try Durable.write(exposition(), to: path, step: "metrics") } catch {
            logger.warning("cannot write the metrics file \(path): \(error.message)", metadata: ["STEP": "metrics"])
        }
    }
}

/// A minimal HTTP/1.1 responder for GET /metrics on its own thread, one
/// connection at a time. Written by hand because the one need, a text body
/// for a scraper on loopback, does not justify pulling SwiftNIO into the daemon.
final class MetricsServer: @unchecked Sendable {
    private let listener: FileDescriptor
    private let endpoint: MetricsEndpoint
    private let body: @Sendable () -> [UInt8]
    private let stopped = NSLock()
    private var isStopped = false

    init(endpoint: MetricsEndpoint, logger: Logger, body: @escaping @Sendable () -> [UInt8]) throws {
        self.endpoint = endpoint
        self.body = body
        listener = try Sys.listen(endpoint)
        let t = Thread { [self] in serve() }
        t.name = "metrics"
        t.start()
    }

    private func serve() {
        while true {
            guard let conn = try? Sys.accept(listener) else {
                stopped.lock(); let done = isStopped; stopped.unlock()
                if done { return }
                continue
            }
            respond(conn)
            try? conn.close()
        }
    }

    private func respond(_ conn: FileDescriptor) {
        guard let req = try? Sys.read(conn, until: Array("\r\n\r\n".utf8), limit: 8192) else { return }
        let line = String(decoding: req.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let status: String, payload: [UInt8], type: String
        if line.count >= 2, line[0] == "GET", line[1] == "/metrics" || line[1].hasPrefix("/metrics?") {
            (status, payload, type) = ("200 OK", body(), "text/plain; version=0.0.4; charset=utf-8")
        } else {
            (status, payload, type) = ("404 Not Found", Array("GET /metrics\n".utf8), "text/plain")
        }
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n"
        try? Sys.writeAll(conn, Array(head.utf8) + payload)
    }

    func stop() {
        stopped.lock(); isStopped = true; stopped.unlock()
        Sys.shutdownSocket(listener)
        try? listener.close()
        if case .unix(let p) = endpoint { try? Sys.unlink(p) }
    }
}
