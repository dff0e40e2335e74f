import Foundation
import SystemPackage

/// `mediaspool hold` / `release` (an extension of the v1 protocol, like
/// Postfix's hold queue; docs/spool-layout.md). A waiting job (inbox/ or
/// retry/) is moved to hold/ under its lock and is never claimed there;
/// `release` moves it back where it was: to retry/ when it has a state file
/// (a retry keeps its attempts and backoff), else to inbox/. One rename
/// each way, durable in both directories.
extension Finisher {
    public enum HoldOutcome: Sendable, Equatable { case moved(from: String, to: String), notWaiting, busy }

    public func hold(_ id: String) throws(SpoolError) -> HoldOutcome {
        guard let lock = try JobLock.tryAcquire(id, layout: layout) else { return .busy }
        defer { lock.release() }
        do { try Sys.mkdir(layout.hold) } catch { throw SpoolError.io(error, "creating \(layout.hold)") }
        for (dir, name) in [(layout.retry, "retry"), (layout.inbox, "inbox")] where Sys.exists(layout.manifest(id, in: dir)) {
            guard !Sys.exists(layout.manifest(id, in: layout.hold)) else { return .notWaiting }
            try Durable.move(layout.manifest(id, in: dir), layout.manifest(id, in: layout.hold), step: "hold")
            try? events.append(JobEvent(.held, id: id, state: "hold").with(manifest(id, in: layout.hold)))
            return .moved(from: name, to: "hold")
        }
        return .notWaiting
    }

    public func release(_ id: String) throws(SpoolError) -> HoldOutcome {
        guard let lock = try JobLock.tryAcquire(id, layout: layout) else { return .busy }
        defer { lock.release() }
        guard Sys.exists(layout.manifest(id, in: layout.hold)) else { return .notWaiting }
        let toRetry = Sys.exists(layout.stateFile(id))
        let dst = toRetry ? layout.retry : layout.inbox
        // An inbox/ manifest of the same id that arrived meanwhile is newer: it is not replaced.
        do { try Sys.renameNoReplace(layout.manifest(id, in: layout.hold), layout.manifest(id, in: dst)) } catch {
            if error == .fileExists { throw SpoolError(.idConflict, "\(dst.lastComponent!.string)/\(id).json exists (a newer submission): it runs; the held one stays in hold/", step: "release") }
            throw SpoolError.io(error, "releasing \(id)", step: "release")
        }
        do {
            try Sys.fsyncDirectory(dst)
            try Sys.fsyncDirectory(layout.hold)
        } catch { throw SpoolError.io(error, "syncing the release of \(id)", step: "release") }
        try? events.append(JobEvent(.released, id: id, state: toRetry ? "retry" : "inbox").with(manifest(id, in: dst)))
        return .moved(from: "hold", to: toRetry ? "retry" : "inbox")
    }
}
