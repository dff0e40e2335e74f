import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A directory output (a `package`): written whole under the temporary
/// name `.NAME.tmp-PID-RAND/` beside the final name, every file in it
/// fsynced, the directory fsynced, then published by one rename (an
/// exchange when a directory is already there, whose old contents are then
/// removed), and the parent fsynced. No reader ever sees a partial
/// directory under the final name; a dead run's temporary directory is
/// removed by recovery (`removeDeadTemporaries`) like a file's.
extension OutputTarget {
    /// Creates the temporary directory (mode 0755: only the daemon's user
    /// may add to it, so nothing planted in it is written through) with the
    /// owner attribute, and returns the URL FFmpeg writes its files under.
    public func temporaryDirectoryURL() throws(SpoolError) -> String {
        precondition(temporary == nil, "one temporary per output")
        let tmp = SpoolName.temporary(for: name)
        let fd: FileDescriptor
        do throws(Errno) {
            // A name already there (a collision, or planted) is not adopted.
            guard try Sys.mkdirAt(directory, tmp, permissions: 0o755) else { throw Errno.fileExists }
            fd = try Sys.openAt(directory, tmp, O_RDONLY | O_DIRECTORY)
        } catch { throw SpoolError.io(error, "creating a temporary directory beside \(finalPath)", step: "write-output") }
        // Without the owner attribute a package could be neither recovered,
        // replaced by its own retry, nor purged.
        if let owner, !Sys.setXattr(fd, OutputTarget.ownerAttribute, owner) {
            let e = Errno(rawValue: errno)
            try? fd.close()
            _ = try? Sys.removeDirectory(directory, tmp, if: { _ in true })
            throw SpoolError(.unsupported, "\(finalPath): this file system takes no user extended attributes (\(e)), which a package's directory needs to be recovered, replaced and purged safely; write packages to a file system with user xattrs (ext4, XFS, btrfs, CephFS)", step: "write-output")
        }
        temporary = (tmp, fd)
        temporaryIsDirectory = true
        return "/proc/self/fd/\(fd.rawValue)"
    }

    /// The manifest-style path of the temporary directory (the output's
    /// path with its last component replaced), for outputs another job
    /// step writes into it through the path checks.
    public func temporaryManifestPath(_ manifestPath: String) -> String {
        guard let t = temporary else { preconditionFailure("temporaryManifestPath before temporaryDirectoryURL()") }
        let parent = manifestPath.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return parent.isEmpty ? t.name : parent + "/" + t.name
    }

    /// The regular files in the temporary (or, once published, final)
    /// directory, sorted by name, with their sizes.
    public func directoryFiles() -> [(name: String, size: Int64)] {
        guard let t = temporary else { return [] }
        let names = ((try? Sys.entries(of: t.fd)) ?? []).sorted()
        return names.compactMap { n in
            guard let st = try? Sys.lstatAt(t.fd, n), st.isRegular else { return nil }
            return (n, Int64(st.st_size))
        }
    }

    /// A file in the directory, by name, for reading back (O_NOFOLLOW).
    public func openInDirectory(_ file: String) -> FileDescriptor? {
        guard let t = temporary else { return nil }
        return try? Sys.openAt(t.fd, file, O_RDONLY | O_NONBLOCK)
    }

    /// Reads a regular file of the directory whole (at most `limit` bytes).
    public func readInDirectory(_ file: String, limit: Int = 16 << 20) -> [UInt8]? {
        guard let fd = openInDirectory(file) else { return nil }
        defer { try? fd.close() }
        guard let st = try? Sys.fstat(fd), st.isRegular else { return nil }
        return (try? Sys.readAll(fd, limit: limit)) ?? nil
    }

    /// Replaces a file of the (unpublished) directory with `bytes`.
    public func writeInDirectory(_ file: String, _ bytes: [UInt8]) throws(SpoolError) {
        guard let t = temporary, temporaryIsDirectory, !published else { preconditionFailure("writeInDirectory outside an unpublished directory") }
        do {
            let fd = try Sys.openAt(t.fd, file, O_WRONLY | O_CREAT | O_TRUNC, permissions: 0o644)
            defer { try? fd.close() }
            try Sys.writeAll(fd, bytes)
        } catch { throw SpoolError.io(error, "writing \(file) in \(finalPath)", step: "write-output") }
    }

    /// Removes a file of the (unpublished) directory; a missing one is fine.
    public func removeInDirectory(_ file: String) {
        guard let t = temporary, temporaryIsDirectory, !published else { return }
        try? Sys.unlinkAt(t.fd, file)
    }

    /// fsync every file and the directory, then rename it into place and
    /// fsync the parent. Something already at the final name is replaced
    /// only when it is a package, a directory whose owner attribute names a
    /// job (this one, or one no longer kept, or any with `overwrite`): it is
    /// swapped out by the same rename (RENAME_EXCHANGE) and removed after. A
    /// file, a symlink, or a directory mediaspool did not write is never
    /// replaced (OUTPUT_NOT_ALLOWED).
    ///
    /// Returns the name of an old package it could not remove (left for
    /// the caller to log; marked as this job's, so the job's retention
    /// removes it with the package).
    @discardableResult
    public func publishDirectory(manifestPath: String) throws(SpoolError) -> String? {
        guard let t = temporary, temporaryIsDirectory else { preconditionFailure("publishDirectory before temporaryDirectoryURL()") }
        try Fence.check("publish-output")
        var refusal: SpoolError?, leftover: String?
        do {
            for name in try Sys.entries(of: t.fd) {
                let f = try Sys.openAt(t.fd, name, O_RDONLY | O_NONBLOCK)
                defer { try? f.close() }
                try Sys.fsync(f)
            }
            try Sys.fsync(t.fd)
            do {
                try Sys.renameAtNoReplace(directory, t.name, name, directory: true)
                published = true
                try Sys.fsync(directory)
            } catch where !published && (error == .fileExists || error == .directoryNotEmpty || error == .notDirectory) {
                (refusal, leftover) = try replace(t.name, manifestPath: manifestPath)
            }
        } catch { throw SpoolError.io(error, "publishing \(manifestPath)", step: "publish-output") }
        if let refusal { throw refusal }
        return leftover
    }

    /// The attribute an old package gets before it is swapped out: the job
    /// replacing it, whose recovery removes it should that job die before
    /// the removal (it still names its own writer until then).
    static let replacedByAttribute = "user.mediaspool.replaced-by"

    /// Swaps the directory `tmp` with the package at the final name, then
    /// removes the old one; or the reason not to.
    private func replace(_ tmp: String, manifestPath: String) throws(Errno) -> (SpoolError?, String?) {
        let notOurs = SpoolError(.outputNotAllowed, "\(manifestPath) exists and is not a package mediaspool wrote (a file, a symlink, or a directory without its owner attribute): it is not replaced; remove it or pick another path", step: "publish-output")
        guard let st = try? Sys.lstatAt(directory, name), st.isDirectory,
              let old = try? Sys.openAt(directory, name, O_RDONLY | O_DIRECTORY) else { return (notOurs, nil) }
        defer { try? old.close() }
        guard let writer = Sys.getXattr(old, OutputTarget.ownerAttribute) else { return (notOurs, nil) }
        if writer != owner, othersKept?(writer) == true { return (OutputTarget.publishedMeanwhile(manifestPath, by: writer), nil) }
        if let owner { Sys.setXattr(old, OutputTarget.replacedByAttribute, owner) }
        var aside = tmp
        do { try Sys.exchangeAt(directory, tmp, name) } catch where error == .invalidArgument || error == .noFunction || error == .notSupported {
            // No RENAME_EXCHANGE here (NFS): the old package is renamed
            // aside first, so for a moment there is none under the name;
            // put back if the new one cannot take its place.
            aside = SpoolName.temporary(for: name)
            try Sys.renameAt(directory, name, aside)
            do { try Sys.renameAt(directory, tmp, name) } catch {
                try? Sys.renameAtNoReplace(directory, aside, name, directory: true)
                throw error
            }
        }
        published = true
        // The old package goes even if the directory's fsync fails (the
        // job then fails and runs again, over its own package).
        var synced: Errno?
        do { try Sys.fsync(directory) } catch { synced = error }
        let removed = (try? Sys.removeDirectory(directory, aside, if: { fd in
            Sys.getXattr(fd, OutputTarget.ownerAttribute) == writer && Sys.getXattr(fd, OutputTarget.replacedByAttribute) == owner
        })) == true
        if let synced { throw synced }
        return (nil, removed ? nil : aside)
    }
}
