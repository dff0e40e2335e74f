import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The producer's side of spool-v1.md: write to tmp/, fsync, rename into
/// inbox/, fsync inbox/. Also replay (failed/ back to inbox/).
public struct Producer: Sendable {
    public let layout: SpoolLayout
    public init(layout: SpoolLayout) { self.layout = layout }

    /// The id a manifest file will be submitted under: its `id` field, else
    /// the file name without `.json`.
    public static func id(for path: FilePath, manifest: Manifest) -> String {
        if let id = manifest.id { return id }
        let name = path.lastComponent?.string ?? ""
        return name.hasSuffix(".json") ? String(name.dropLast(5)) : (path.lastComponent?.stem ?? name)
    }

    /// Submits manifest bytes unchanged under `id`.
    public func submit(_ bytes: [UInt8], id: String) throws(SpoolError) {
        guard JobID.isValid(id) else { throw SpoolError(.idInvalid, "\"\(id)\" is not a valid job id") }
        try Durable.write(bytes, to: layout.manifest(id, in: layout.inbox), step: "submit",
                          permissions: [.ownerReadWrite, .groupReadWrite, .otherRead], staging: layout.tmp)
    }

    /// Moves failed/<id>.json back to inbox/ (its error record stays, and
    /// its history is carried into the next record).
    public func replay(_ id: String) throws(SpoolError) {
        guard JobID.isValid(id) else { throw SpoolError(.idInvalid, "\(Escaping.quoted(id)) is not a valid job id") }
        let src = layout.manifest(id, in: layout.failed)
        guard Sys.exists(src) else { throw SpoolError(.inputNotFound, "no failed job \(id) (looked for \(src))") }
        // Never over a newer manifest of the id waiting in inbox/.
        if Sys.exists(layout.manifest(id, in: layout.inbox)) {
            throw SpoolError(.idConflict, "a newer manifest of \(id) waits in inbox/: replay it after that one has run, or remove one of them")
        }
        try Durable.move(src, layout.manifest(id, in: layout.inbox), step: "replay", replace: false)
    }
}
