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
        if st.isRegular, Int(st.st_size) <= Manifest.maxBytes, let bytes = try? Sys.readFile(path) {
            (priority, tenant) = Scanner.orderingFields(bytes)
        }
        var notBefore = 0.0
        if source == .retry, let b = try? Sys.readFile(layout.stateFile(id)),
           let s = RecordCoding.decode(JobState.self, b), let nb = s.notBefore, let d = RFC3339.date(nb) {
            notBefore = d.timeIntervalSince1970
        }
        queue.upsert(QueueEntry(id: id, source: source, priority: priority, tenant: tenant, arrival: arrival, notBefore: notBefore))
    }

    /// `priority` and `tenant` only, for ordering. Full validation happens
    /// when the job is claimed; this runs for every waiting manifest at
    /// start, so it uses JSONSerialization (about 6x cheaper here than the
    /// validating JSONDecoder path). Out-of-range values order as 0 / none.
    static func orderingFields(_ bytes: [UInt8]) -> (Int, String) {
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else { return (0, "") }
        var prio = 0
        if let n = obj["priority"] as? NSNumber, String(cString: n.objCType) != "c",
           n.doubleValue == n.doubleValue.rounded(), (-10...10).contains(n.intValue) { prio = n.intValue }
        let tenant = (obj["tenant"] as? String).flatMap { $0.utf8.count <= 128 ? $0 : nil } ?? ""
        return (prio, tenant)
    }

    /// Reads both directories entry by entry.
    public func fullScan() {
        try? Sys.forEachEntry(in: layout.retry) { consider(.retry, name: $0) }
        try? Sys.forEachEntry(in: layout.inbox) { consider(.inbox, name: $0) }
    }
}
