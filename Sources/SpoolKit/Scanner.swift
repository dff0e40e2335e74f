import Foundation
import SystemPackage

/// Turns directory entries of inbox/ and retry/ into queue entries. Reads a
/// manifest once, when its name is first seen (for priority and tenant),
/// and keeps only the small `QueueEntry`.
public struct Scanner: Sendable {
    public let layout: SpoolLayout
    public let queue: JobQueue

    public init(layout: SpoolLayout, queue: JobQueue) { self.layout = layout; self.queue = queue }

    /// Looks at one entry name in `source`; `rawName` are its bytes when
    /// they are not valid UTF-8 (such an entry is queued to be refused).
    public func consider(_ source: Source, name: String, rawName: [UInt8]? = nil) {
        guard var id = JobID.fromManifestName(name) else { return }
        // A name that is not UTF-8 gets an id of its own that names no job
        // (it is refused at the claim), so two such names never share an entry.
        if let rawName { id = SpoolName.forInvalid(rawName) }
        let dir = layout.directory(source.queue)
        let component: FilePath.Component
        if let rawName {
            guard let c = SpoolName.component(rawName) else { return }
            component = c
        } else {
            guard let c = FilePath.Component(name) else { return }
            component = c
        }
        let path = dir.appending(component)
        guard let st = try? Sys.stat(path, followSymlinks: false) else { return }
        let arrival = st.ctimeNanoseconds
        if let known = queue.entry(id), known.source == source, known.arrival == arrival { return }
        var priority = 0, tenant = "", type = ""
        if st.isRegular, Int(st.st_size) <= Manifest.maxBytes, let bytes = try? Sys.readFile(path) {
            (priority, tenant, type) = Manifest.schedulingFields(bytes)
        }
        var notBefore = 0.0
        if source == .retry, JobID.isValid(id), let b = try? Sys.readFile(layout.stateFile(id)),
           let s = RecordCoding.decode(JobState.self, b), let nb = s.notBefore, let d = RFC3339.date(nb) {
            notBefore = d.timeIntervalSince1970
        }
        var entry = QueueEntry(id: id, source: source, priority: priority, tenant: tenant, arrival: arrival, notBefore: notBefore, rawName: rawName)
        entry.type = type
        queue.upsert(entry)
    }

    /// `priority` and `tenant` only, for ordering, read with the same parser
    /// the validation uses (a manifest the claim will refuse, for a duplicate
    /// key say, orders as 0 / none). Out-of-range values order as 0 / none.
    static func orderingFields(_ bytes: [UInt8]) -> (Int, String) {
        let f = Manifest.schedulingFields(bytes)
        return (f.priority, f.tenant)
    }

    /// Reads both directories entry by entry.
    public func fullScan() {
        try? Sys.forEachRawEntry(in: layout.retry) { consider(.retry, name: $0, rawName: $1) }
        try? Sys.forEachRawEntry(in: layout.inbox) { consider(.inbox, name: $0, rawName: $1) }
    }
}
