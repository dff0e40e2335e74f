import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import SpoolKit
import SpoolOps
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
                server = try MetricsServer(endpoint: endpoint) { exposition() }
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
