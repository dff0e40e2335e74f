import Foundation
import SystemPackage

/// `mediaspool cancel` (an extension of the v1 protocol, docs/spool-layout.md).
///
/// A waiting job (inbox/ or retry/) is cancelled by whoever holds its lock:
/// its error record (CANCELLED, not retryable), then the one rename to
/// failed/. A running job is asked through `control/cancel.<id>`, which every
/// daemon sees through inotify on control/: the one running it stops it the
/// way a timeout does (FFmpeg's interrupt callback), removes its partial
/// outputs and fails it CANCELLED. Replay works as on any failed job.
public enum CancelRequests {
    static let prefix = "cancel."

    public static func path(_ layout: SpoolLayout, _ id: String) -> FilePath { layout.control.appending(prefix + id) }

    /// Ids with a pending request.
    public static func pending(_ layout: SpoolLayout) -> [String] {
        ((try? Sys.entries(in: layout.control)) ?? []).compactMap { name in
            guard name.hasPrefix(prefix) else { return nil }
            let id = String(name.dropFirst(prefix.count))
            return JobID.isValid(id) ? id : nil
        }
    }

    public static func request(_ layout: SpoolLayout, _ id: String) throws(SpoolError) {
        do { try Sys.mkdir(layout.control) } catch { throw SpoolError.io(error, "creating \(layout.control)") }
        try Durable.write(Array(id.utf8), to: path(layout, id), step: "cancel")
    }

    public static func withdraw(_ layout: SpoolLayout, _ id: String) {
        try? Sys.unlink(path(layout, id))
        try? Sys.fsyncDirectory(layout.control)
    }
}

extension Finisher {
    /// Cancels a waiting job under its lock: true when it was in inbox/ or
    /// retry/ and is now in failed/ with CANCELLED; false when it is not
    /// waiting (running, being claimed, finished, unknown).
    public func cancelWaiting(_ id: String) throws(SpoolError) -> Bool {
        guard let lock = try JobLock.tryAcquire(id, layout: layout) else { return false }
        defer { lock.release() }
        for dir in [layout.retry, layout.inbox] where Sys.exists(layout.manifest(id, in: dir)) {
            let state = (try? Sys.readFile(layout.stateFile(id))).flatMap { $0 }.flatMap { RecordCoding.decode(JobState.self, $0) }
                ?? JobState(id: id)
            let now = RFC3339.string(Date())
            let err = SpoolError(.cancelled, "cancelled by an operator (mediaspool cancel) before it ran; `mediaspool replay \(id)` runs it", step: "cancel")
            var history = state.history
            history.append(HistoryEntry(attempt: state.attempts, startedAt: now, endedAt: now, code: err.code.rawValue, message: err.message))
            let manifest = manifest(id, in: dir)
            if Sys.exists(layout.manifest(id, in: layout.failed)) { try keepAside(id) }
            let record = ErrorRecord(id: id, type: manifest?.type.rawValue, code: err.code.rawValue, message: err.message, step: err.step,
                                     retryable: false, attempts: state.attempts, failedAt: now, tenant: manifest?.tenant,
                                     labels: manifest?.labels, history: history)
            try Durable.write(RecordCoding.encode(record), to: layout.errorRecord(id), step: "cancel")
            try events.append(.failed(record))
            try Durable.move(layout.manifest(id, in: dir), layout.manifest(id, in: layout.failed), step: "cancel")
            try? Sys.unlink(layout.stateFile(id))
            return true
        }
        return false
    }
}
