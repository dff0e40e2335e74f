import Foundation
import Metrics

/// The daemon's metrics, through swift-metrics: the executable bootstraps
/// swift-prometheus as the backend (docs/metrics.md lists every name). Only
/// names and label values from our own enums go here, never a job id or a
/// manifest string, so the series stay few.
public enum SpoolMetrics {
    static func jobEnded(type: String, outcome: String, code: ErrorCode?) {
        Counter(label: "mediaspool_jobs_total",
                dimensions: [("type", type), ("outcome", outcome), ("code", code?.rawValue ?? "")]).increment()
    }

    static func jobDuration(type: String, seconds: Double) {
        Metrics.Timer(label: "mediaspool_job_duration_seconds", dimensions: [("type", type)])
            .recordNanoseconds(Int64(max(0, seconds) * 1e9))
    }

    static func queueWait(type: String, seconds: Double) {
        Metrics.Timer(label: "mediaspool_queue_wait_seconds", dimensions: [("type", type)])
            .recordNanoseconds(Int64(max(0, seconds) * 1e9))
    }

    static func gauges(inbox: Int, retry: Int, processing: Int, oldestWaiting: Double, busy: Int, workers: Int, paused: Bool = false) {
        Gauge(label: "mediaspool_paused").record(paused ? 1 : 0)
        for (state, n) in [("inbox", inbox), ("retry", retry), ("processing", processing)] {
            Gauge(label: "mediaspool_queue_depth", dimensions: [("state", state)]).record(n)
        }
        Gauge(label: "mediaspool_oldest_waiting_seconds").record(oldestWaiting)
        Gauge(label: "mediaspool_busy_workers").record(busy)
        Gauge(label: "mediaspool_workers").record(workers)
    }

    /// Bucket bounds for the duration histograms: media jobs run from
    /// milliseconds (a probe) to an hour (a long transcode).
    public static let durationBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]
    public static let histogramNames = ["mediaspool_job_duration_seconds", "mediaspool_queue_wait_seconds"]
}
