import Foundation
import SystemPackage

/// Turns directory entries of inbox/ and retry/ into queue entries. Reads a
/// manifest once, when its name is first seen (for priority and tenant),
/// and keeps only the small `QueueEntry`.
public struct Scanner: Sendable {
    public let layout: SpoolLayout
    public let queue: JobQueue

    public init(layout: SpoolLayout, queue: JobQueue) { self.layout = layout; self.queue = queue }

    /// Looks at one entry name in `source`.
    public func consider(_ source: Source, name: String) {
        guard let id = JobID.fromManifestName(name) else { return }
        let dir = source == .inbox ? layout.inbox : layout.retry
        let path = dir.appending(name)
        guard let st = try? Sys.stat(path, followSymlinks: false) else { return }
        let arrival = st.ctimeNanoseconds
        if let known = queue.entry(id), known.source == source, known.arrival == arrival { return }
        var priority = 0, tenant = ""
        if st.isRegular, Int(st.st_size) <= Manifest.maxBytes, let bytes = try? Sys.readFile(path),
           let m = try? Manifest.parse(bytes, fileID: JobID.isValid(id) ? id : nil) {
            priority = m.priority
            tenant = m.tenant ?? ""
        }
        var notBefore = 0.0
        if source == .retry, let b = try? Sys.readFile(layout.stateFile(id)),
           let s = RecordCoding.decode(JobState.self, b), let nb = s.notBefore, let d = RFC3339.date(nb) {
            notBefore = d.timeIntervalSince1970
        }
        queue.upsert(QueueEntry(id: id, source: source, priority: priority, tenant: tenant, arrival: arrival, notBefore: notBefore))
    }

    /// Reads both directories entry by entry.
    public func fullScan() {
        try? Sys.forEachEntry(in: layout.retry) { consider(.retry, name: $0) }
        try? Sys.forEachEntry(in: layout.inbox) { consider(.inbox, name: $0) }
    }
}
