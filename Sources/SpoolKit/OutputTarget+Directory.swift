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
        do throws(Errno) {
            // A name already there (a collision, or planted) is not adopted.
            guard try Sys.mkdirAt(directory, tmp, permissions: 0o755) else { throw Errno.fileExists }
            let fd = try Sys.openAt(directory, tmp, O_RDONLY | O_DIRECTORY)
            if let owner { Sys.setXattr(fd, OutputTarget.ownerAttribute, owner) }
            temporary = (tmp, fd)
            temporaryIsDirectory = true
            return "/proc/self/fd/\(fd.rawValue)"
        } catch { throw SpoolError.io(error, "creating a temporary directory beside \(finalPath)", step: "write-output") }
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
    public func publishDirectory(manifestPath: String) throws(SpoolError) {
        guard let t = temporary, temporaryIsDirectory else { preconditionFailure("publishDirectory before temporaryDirectoryURL()") }
        try Fence.check("publish-output")
        var refusal: SpoolError?
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
            } catch where error == .fileExists || error == .directoryNotEmpty || error == .notDirectory {
                refusal = try replace(t.name, manifestPath: manifestPath)
            }
            if refusal == nil { try Sys.fsync(directory) }
        } catch { throw SpoolError.io(error, "publishing \(manifestPath)", step: "publish-output") }
        if let refusal { throw refusal }
    }

    /// Swaps the directory `tmp` with the package at the final name, then
    /// removes the old one; or the reason not to.
    private func replace(_ tmp: String, manifestPath: String) throws(Errno) -> SpoolError? {
        let notOurs = SpoolError(.outputNotAllowed, "\(manifestPath) exists and is not a package mediaspool wrote (a file, a symlink, or a directory without its owner attribute): it is not replaced; remove it or pick another path", step: "publish-output")
        guard let st = try? Sys.lstatAt(directory, name), st.isDirectory,
              let old = try? Sys.openAt(directory, name, O_RDONLY | O_DIRECTORY) else { return notOurs }
        let writer = Sys.getXattr(old, OutputTarget.ownerAttribute)
        try? old.close()
        guard let writer else { return notOurs }
        if writer != owner, othersKept?(writer) == true { return OutputTarget.publishedMeanwhile(manifestPath, by: writer) }
        do { try Sys.exchangeAt(directory, tmp, name) } catch where error == .invalidArgument || error == .noFunction || error == .notSupported {
            // No RENAME_EXCHANGE here (NFS): the old package is renamed
            // aside first, so for a moment there is none under the name.
            let aside = SpoolName.temporary(for: name)
            try Sys.renameAt(directory, name, aside)
            try Sys.renameAt(directory, tmp, name)
            published = true
            try Sys.fsync(directory)
            removeOld(aside, writer: writer)
            return nil
        }
        published = true
        try Sys.fsync(directory)
        removeOld(tmp, writer: writer)
        return nil
    }

    /// The old package, now under a temporary name: marked as this job's
    /// (should the removal not finish, this job's recovery removes it),
    /// then removed.
    private func removeOld(_ aside: String, writer: String) {
        _ = try? Sys.removeDirectory(directory, aside, if: { fd in
            guard Sys.getXattr(fd, OutputTarget.ownerAttribute) == writer else { return false }
            if let owner { Sys.setXattr(fd, OutputTarget.ownerAttribute, owner) }
            return true
        })
    }
}
