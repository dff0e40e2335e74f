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
        do {
            _ = try Sys.mkdirAt(directory, tmp, permissions: 0o755)
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
    /// fsync the parent. A directory already at the final name is swapped
    /// out by the same rename (RENAME_EXCHANGE) and removed after, unless
    /// another job still in done/ wrote it and the job has no `overwrite`
    /// (OUTPUT_NOT_ALLOWED).
    public func publishDirectory(manifestPath: String) throws(SpoolError) {
        guard let t = temporary, temporaryIsDirectory else { preconditionFailure("publishDirectory before temporaryDirectoryURL()") }
        try Fence.check("publish-output")
        var refusedBy: String?
        do {
            for name in try Sys.entries(of: t.fd) {
                let f = try Sys.openAt(t.fd, name, O_RDONLY | O_NONBLOCK)
                defer { try? f.close() }
                try Sys.fsync(f)
            }
            try Sys.fsync(t.fd)
            do { try Sys.renameAtNoReplace(directory, t.name, name) } catch where error == .fileExists || error == .directoryNotEmpty {
                if let writer = currentWriter(), writer != owner, othersKept?(writer) == true {
                    refusedBy = writer
                } else {
                    // One rename swaps the new directory in; the old one,
                    // now under the temporary name, is removed after.
                    try Sys.exchangeAt(directory, t.name, name)
                    published = true
                    try Sys.fsync(directory)
                    try? Sys.removeTree(directory, t.name)
                }
            }
            if refusedBy == nil {
                published = true
                try Sys.fsync(directory)
            }
        } catch { throw SpoolError.io(error, "publishing \(manifestPath)", step: "publish-output") }
        if let refusedBy { throw OutputTarget.publishedMeanwhile(manifestPath, by: refusedBy) }
    }
}
