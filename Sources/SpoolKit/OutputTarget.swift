import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Where one output goes: its directory, open, reached from the root it lies
/// under one component at a time with O_NOFOLLOW (missing directories made
/// on the way with mkdirat), and the name in it. Every later step (the
/// temporary file, the fsync, the rename that publishes, the clean-up) works
/// on that descriptor, so swapping a directory of the path for a symlink
/// after the check moves nothing outside the root (docs/security.md).
///
/// FFmpeg writes the temporary file through /proc/self/fd/N, the inode
/// opened here. Owned by one job's task; closed in deinit.
public final class OutputTarget {
    /// The lexical final path, for messages and records.
    public let finalPath: FilePath
    public let name: String
    var temporary: (name: String, fd: FileDescriptor)?
    /// The temporary is a directory (OutputTarget+Directory.swift).
    var temporaryIsDirectory = false
    var published = false
    /// The job whose output this is, written to the file as an extended
    /// attribute (`user.mediaspool.job`) so later jobs and retention know it.
    let owner: String?
    /// Set when another job's output may not be replaced (an owner, no
    /// `overwrite`): whether a job is still in done/. Asked again at the
    /// publish, for a file another job published after the check.
    let othersKept: ((String) -> Bool)?

    /// The extended attribute that names the job that wrote an output.
    public static let ownerAttribute = "user.mediaspool.job"

    let directory: FileDescriptor

    init(finalPath: FilePath, directory: FileDescriptor, name: String, owner: String?, othersKept: ((String) -> Bool)? = nil) {
        self.finalPath = finalPath; self.directory = directory; self.name = name; self.owner = owner; self.othersKept = othersKept
    }

    /// The job named in the owner attribute of the file at the final name.
    func currentWriter() -> String? {
        guard let existing = try? Sys.openAt(directory, name, O_RDONLY | O_NONBLOCK) else { return nil }
        defer { try? existing.close() }
        return Sys.getXattr(existing, OutputTarget.ownerAttribute)
    }

    deinit {
        discard()
        if let t = temporary { try? t.fd.close() }
        try? directory.close()
    }

    /// Creates the temporary file `.NAME.tmp-PID-RAND` beside the final name
    /// (the name recovery and the sweep know) and returns the URL FFmpeg
    /// writes it through. One per target.
    public func temporaryURL() throws(SpoolError) -> String {
        precondition(temporary == nil, "one temporary file per output")
        let tmp = SpoolName.temporary(for: name)
        do {
            let fd = try Sys.openAt(directory, tmp, O_RDWR | O_CREAT | O_EXCL, permissions: 0o664)
            // The owner is named on the temporary too: the recovery of this
            // job removes it by that name, whoever wrote it (on a shared
            // spool the pid in its name may be another host's).
            if let owner { Sys.setXattr(fd, OutputTarget.ownerAttribute, owner) }
            temporary = (tmp, fd)
            return "/proc/self/fd/\(fd.rawValue)"
        } catch { throw SpoolError.io(error, "creating a temporary file beside \(finalPath)", step: "write-output") }
    }

    /// The output's bytes to read back (the same inode, before and after the publish).
    public var readbackURL: String? { temporary.map { "/proc/self/fd/\($0.fd.rawValue)" } }

    /// fsync the file, rename it to its final name, fsync the directory.
    public func publish(manifestPath: String) throws(SpoolError) {
        guard let t = temporary else { preconditionFailure("publish before temporaryURL()") }
        try Fence.check("publish-output")
        if let owner { Sys.setXattr(t.fd, OutputTarget.ownerAttribute, owner) }  // best effort: not every file system has xattrs
        var refusedBy: String?
        do {
            try Sys.fsync(t.fd)
            if let othersKept {
                // Two jobs with one output path both passed the check: the
                // one that publishes second does not replace the first's
                // output while that job is kept in done/.
                do { try Sys.renameAtNoReplace(directory, t.name, name) } catch where error == .fileExists {
                    if let writer = currentWriter(), writer != owner, othersKept(writer) { refusedBy = writer } else {
                        try Sys.renameAt(directory, t.name, name)
                    }
                }
            } else {
                try Sys.renameAt(directory, t.name, name)
            }
            if refusedBy == nil {
                published = true
                try Sys.fsync(directory)
            }
        } catch { throw SpoolError.io(error, "publishing \(manifestPath)", step: "publish-output") }
        if let refusedBy { throw OutputTarget.publishedMeanwhile(manifestPath, by: refusedBy) }
    }

    /// The publish found another kept job's output at the final name.
    static func publishedMeanwhile(_ manifestPath: String, by writer: String) -> SpoolError {
        SpoolError(.outputNotAllowed, "\(manifestPath) was published by job \(Escaping.quoted(writer)) while this one ran, and that job is still in done/: pick another path, or set \"overwrite\": true in the output to replace it", step: "publish-output")
    }

    /// Writes `bytes` whole under the temporary name, then publishes them.
    public func write(_ bytes: [UInt8], manifestPath: String) throws(SpoolError) {
        _ = try temporaryURL()
        do { try Sys.writeAll(temporary!.fd, bytes) } catch { throw SpoolError.io(error, "writing \(manifestPath)", step: "write-output") }
        try publish(manifestPath: manifestPath)
    }

    /// Removes the temporary files (`.NAME.tmp-PID-RAND`) of dead writers in
    /// this output's directory whose name starts with `prefix`, through the
    /// directory's descriptor (recovery's clean-up of a dead run).
    ///
    /// A temporary with an owner attribute is judged by it alone: removed
    /// when it names `job`, whatever its pid (the caller holds that job's
    /// lock, so no run of it is alive; another host's writer, fenced off,
    /// cannot be told by its pid), kept when it names another job (which may
    /// be running on another host, whose pids mean nothing here). One
    /// without (a file system without user xattrs, an older version) is
    /// judged by its pid, and on a shared spool (`shared`) only once it is
    /// also `Recovery.sharedTemporaryAgeSeconds` old.
    func removeDeadTemporaries(prefix: String, of job: String? = nil, shared: Bool = false) -> Int {
        var removed = 0
        let cutoff = Date().timeIntervalSince1970 - Recovery.sharedTemporaryAgeSeconds
        for name in (try? Sys.entries(of: directory)) ?? [] where name.hasPrefix(prefix) && SpoolName.isTemporary(name) {
            guard let st = try? Sys.lstatAt(directory, name) else { continue }
            if st.isDirectory {
                // A package's temporary: removed with what it holds only
                // when its owner attribute names this job, never by pid or
                // name alone (a directory is too much to remove on a guess).
                guard let job else { continue }
                let ours: (FileDescriptor) -> Bool = {
                    Sys.getXattr($0, OutputTarget.ownerAttribute) == job || Sys.getXattr($0, OutputTarget.replacedByAttribute) == job
                }
                if (try? Sys.removeDirectory(directory, name, if: ours)) == true { removed += 1 }
                continue
            }
            guard let fd = try? Sys.openAt(directory, name, O_RDONLY | O_NONBLOCK) else { continue }
            let writer = Sys.getXattr(fd, OutputTarget.ownerAttribute)
            let mtime = (try? Sys.fstat(fd))?.mtimeSeconds ?? .infinity
            try? fd.close()
            if let writer {
                guard writer == job else { continue }
            } else {
                guard !SpoolName.isWriterAlive(ofTemporary: name), !shared || mtime < cutoff else { continue }
            }
            if (try? Sys.unlinkAt(directory, name)) != nil { removed += 1 }
        }
        return removed
    }

    /// Removes the final file if it is a regular file whose owner attribute
    /// names `id` (retention).
    func removeIfOwned(by id: String) -> Bool {
        guard let fd = try? Sys.openAt(directory, name, O_RDONLY | O_NONBLOCK) else { return false }
        let writer = Sys.getXattr(fd, OutputTarget.ownerAttribute)
        let st = try? Sys.fstat(fd)
        try? fd.close()
        guard let st, writer == id else { return false }
        if st.isDirectory {  // a package: judged again on the descriptor that empties it
            return (try? Sys.removeDirectory(directory, name, if: { Sys.getXattr($0, OutputTarget.ownerAttribute) == id })) == true
        }
        guard st.isRegular else { return false }
        return (try? Sys.unlinkAt(directory, name)) != nil
    }

    /// Removes the temporary file unless it was published (no partial output under any name).
    public func discard() {
        guard !published, let t = temporary else { return }
        if temporaryIsDirectory {
            // Only the directory this target made (the name could have been
            // swapped in a group-writable parent).
            let made = try? Sys.fstat(t.fd)
            _ = try? Sys.removeDirectory(directory, t.name, if: { fd in
                guard let made, let st = try? Sys.fstat(fd) else { return false }
                return st.st_dev == made.st_dev && st.st_ino == made.st_ino
            })
        } else { try? Sys.unlinkAt(directory, t.name) }
        published = true  // once
    }
}

/// What an output is (PathPolicy.openOutput).
public enum OutputKind: Sendable { case file, directory, either }

extension PathPolicy {
    /// Checks an output path and opens its directory (creating the missing
    /// ones) without following a symlink anywhere below the root it lies
    /// under. Throws OUTPUT_NOT_ALLOWED.
    ///
    /// With an `owner` (a job id): a regular file already at the path whose
    /// owner attribute names another job for which `isRetained` holds is
    /// refused (OUTPUT_NOT_ALLOWED) unless `overwrite`.
    ///
    /// `create: false` (retention, recovery's clean-up) makes no directory:
    /// a missing one throws.
    ///
    /// `kind`: what may already be at the path: a regular file, or for a
    /// package a directory (never a symlink); `.either` for the clean-ups
    /// (retention, recovery), which go by the record's outputs.
    public func openOutput(_ raw: String, field: String = "output.path", owner: String? = nil, overwrite: Bool = false,
                           create: Bool = true, kind: OutputKind = .file,
                           isRetained: @escaping (String) -> Bool = { _ in false }) throws(SpoolError) -> OutputTarget {
        let p = try lexical(raw, notAllowed: .outputNotAllowed, field: field)
        guard let name = p.lastComponent?.string,
              let root = ([mediaRoot] + allowedRoots).map({ $0.lexicallyNormalized() }).filter({ PathPolicy.isUnder(p, $0) && p != $0 })
                  .max(by: { $0.components.count < $1.components.count }) else {
            throw SpoolError(.outputNotAllowed, "\(field) \"\(raw)\" is outside the allowed roots", step: "check-paths")
        }
        let escape = SpoolError(.outputNotAllowed, "\(field) \"\(raw)\" leaves the allowed roots through a symlink", step: "check-paths")
        var dir: FileDescriptor
        do {
            if create { try Sys.mkdirs(local(root)) }
            dir = try Sys.open(local(root), .readOnly, options: [.directory])
        } catch { throw SpoolError.io(error, "opening the root of \(field) \"\(raw)\"", step: "check-paths") }
        let between = Array(p.removingLastComponent().components.dropFirst(root.components.count))
        for component in between {
            let c = component.string
            do {
                let made = create ? try Sys.mkdirAt(dir, c) : false
                // A directory made here is made durable in its parent, so a
                // published output never hangs off a directory a power cut forgot.
                if made { try Sys.fsync(dir) }
                let next = try Sys.openAt(dir, c, O_RDONLY | O_DIRECTORY)
                try? dir.close()
                dir = next
            } catch {
                try? dir.close()
                if error == .tooManySymbolicLinkLevels || error == .notDirectory { throw escape }
                if error == .permissionDenied || error == .readOnlyFileSystem || error == .notPermitted {
                    throw SpoolError(.outputNotAllowed, "\(field) \"\(raw)\": the daemon may not create or enter its directory (\(error)); make it writable by the mediaspool user, or pick another path", step: "check-paths")
                }
                throw SpoolError.io(error, "creating the directory of \(field) \"\(raw)\"", step: "check-paths")
            }
        }
        if let st = try? Sys.lstatAt(dir, name) {
            guard (kind != .directory && st.isRegular) || (kind != .file && st.isDirectory) else {
                try? dir.close()
                throw SpoolError(.outputNotAllowed, kind == .directory
                    ? "\(field) \"\(raw)\" exists and is not a directory (a file or symlink); remove it or pick another name"
                    : "\(field) \"\(raw)\" exists and is not a regular file (a symlink or directory); remove it or pick another name", step: "check-paths")
            }
            if kind == .directory, owner != nil, st.isDirectory {
                let existing = try? Sys.openAt(dir, name, O_RDONLY | O_DIRECTORY)
                let writer = existing.flatMap { Sys.getXattr($0, OutputTarget.ownerAttribute) }
                try? existing?.close()
                if writer == nil {
                    try? dir.close()
                    throw SpoolError(.outputNotAllowed, "\(field) \"\(raw)\" is a directory mediaspool did not write (no owner attribute): a package replaces only an older package; remove it or pick another path", step: "check-paths")
                }
            }
            if let owner, !overwrite, let existing = try? Sys.openAt(dir, name, O_RDONLY | O_NONBLOCK) {
                let writer = Sys.getXattr(existing, OutputTarget.ownerAttribute)
                try? existing.close()
                if let writer, writer != owner, isRetained(writer) {
                    try? dir.close()
                    throw SpoolError(.outputNotAllowed, "\(field) \"\(raw)\" was written by job \(Escaping.quoted(writer)), which is still in done/: pick another path, or set \"overwrite\": true in the output to replace it", step: "check-paths")
                }
            }
        }
        return OutputTarget(finalPath: p, directory: dir, name: name, owner: owner, othersKept: owner != nil && !overwrite ? isRetained : nil)
    }
}
