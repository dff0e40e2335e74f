import Foundation
import Logging
import SystemPackage

/// Retention, run by `mediaspool sweep`: done and failed jobs whose record is
/// older than `retainDoneDays` / `retainFailedDays` are purged; their
/// outputs too when `retentionPurgesOutputs` is set. The age is the record's
/// mtime (written once, when the job ended).
///
/// Order, so a crash at any point leaves nothing a later sweep cannot finish:
/// under the job's lock (a claim of the same id waits for it), the manifest
/// goes first: from then on the id is free, a new submission of it runs
/// again instead of being deduplicated. Then the outputs, then the record
/// (and the job's side files) last; an orphan record of a purge that died half way is old
/// enough to be purged by the next sweep.
struct Retention {
    let config: Config
    let logger: Logger
    let layout: SpoolLayout

    init(config: Config, logger: Logger) { self.config = config; self.logger = logger; layout = config.layout }

    func run(_ report: inout Recovery.Report) {
        let now = Date().timeIntervalSince1970
        if let days = config.retainDoneDays { purge(in: layout.done, record: layout.result, olderThan: now - days * 86400, report: &report) }
        if let days = config.retainFailedDays { purge(in: layout.failed, record: layout.errorRecord, olderThan: now - days * 86400, report: &report) }
    }

    private func purge(in dir: FilePath, record: (String) -> FilePath, olderThan cutoff: Double, report: inout Recovery.Report) {
        var candidates: [String] = []
        // Every side file of the job goes with it, listed by its record or not
        // (one a crashed attempt left, that the next did not write again).
        var sideFiles: [String: [String]] = [:]
        try? Sys.forEachEntry(in: dir) { name in
            if let (id, side) = SpoolName.parseSideFile(name) { sideFiles[id, default: []].append(side); return }
            guard name.hasSuffix(".json"), !name.hasPrefix(".") else { return }
            var id = String(name.dropLast(5))
            for suffix in [".result", ".error"] where id.hasSuffix(suffix) { id = String(id.dropLast(suffix.count)) }
            guard JobID.isValid(id) else { return }
            let p = dir.appending(name)
            guard let st = try? Sys.stat(p, followSymlinks: false), st.mtimeSeconds < cutoff else { return }
            candidates.append(id)
        }
        for id in Set(candidates).sorted() {
            do throws(SpoolError) {
                guard let lock = try JobLock.tryAcquire(id, layout: layout) else { continue }
                defer { lock.release() }
                // The record decides the age; without one (a purge died
                // after the manifest) the manifest does.
                let rec = record(id), manifest = layout.manifest(id, in: dir)
                let ageOf = Sys.exists(rec) ? rec : manifest
                guard let st = try? Sys.stat(ageOf, followSymlinks: false), st.mtimeSeconds < cutoff else { continue }
                let outputs = config.retentionPurgesOutputs ? outputPaths(rec) : []
                try remove(manifest)
                try syncDirectory(dir)
                for o in outputs { if removeOutput(o, of: id, tenant: tenant(rec)) { report.outputsPurged += 1 } }
                for name in sideFiles[id] ?? [] { try remove(layout.sideFile(id, name)) }
                try remove(rec)
                try syncDirectory(dir)
                report.purged += 1
                logger.info("purged \(id) (retention)", metadata: ["JOB_ID": "\(id)", "STATUS": "purged"])
            } catch {
                logger.error("purging \(id) failed: \(error)", metadata: ["JOB_ID": "\(id)", "ERROR_CODE": "\(error.code.rawValue)"])
            }
        }
    }

    private func syncDirectory(_ d: FilePath) throws(SpoolError) {
        do { try Sys.fsyncDirectory(d) } catch { throw SpoolError.io(error, "syncing \(d)", step: "sweep") }
    }

    /// Removes `p`; one already gone is fine (a purge that died half way).
    private func remove(_ p: FilePath) throws(SpoolError) {
        do { try Sys.unlink(p) } catch {
            if error != .noSuchFileOrDirectory { throw SpoolError.io(error, "removing \(p)", step: "sweep") }
        }
    }

    private func outputPaths(_ rec: FilePath) -> [String] {
        guard let b = try? Sys.readFile(rec), let r = RecordCoding.decode(ResultRecord.self, b) else { return [] }
        return r.outputs.map(\.path)
    }

    private func tenant(_ rec: FilePath) -> String? {
        (try? Sys.readFile(rec)).flatMap { $0 }.flatMap { RecordCoding.decode(ResultRecord.self, $0) }?.tenant
    }

    /// Removes one output of job `id`, only if it still passes the job's
    /// output path checks (under its roots, no symlink out of them) and the
    /// file is still this job's: its owner attribute names `id` (a later
    /// job that replaced it, with `overwrite`, owns it now; a file without
    /// the attribute, written before there was one, is left alone).
    private func removeOutput(_ raw: String, of id: String, tenant: String?) -> Bool {
        guard let target = try? config.pathPolicy(tenant: tenant).openOutput(raw, field: "output", create: false, kind: .either) else { return false }
        // A package's old directory its job could not remove after a replace.
        _ = target.removeDeadTemporaries(prefix: "." + target.name + ".tmp-", of: id)
        return target.removeIfOwned(by: id)
    }
}
