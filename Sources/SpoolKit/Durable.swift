import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Durable file operations (spool-v1.md "Durability"): a file is fsynced
/// before the rename that publishes it, the directory after. Every state
/// change of a job is one rename.
/// Each caller makes its own fsyncs: batching them across workers was
/// measured slower on ext4: the kernel already merges the disk flushes of
/// concurrent fsyncs (docs/spool-layout.md, "No group commit").
public enum Durable {
    /// Writes `bytes` to `path` atomically: a fresh temporary file
    /// (`SpoolName.temporary`, created exclusively, never through a symlink)
    /// in the same directory, or in `staging` (a producer's tmp/), fsync,
    /// rename over `path`, fsync the directory. The one way every file of
    /// the spool is written (records, state, manifests submitted, the
    /// progress file and the index).
    /// - `replace: false`: an existing `path` is an error (EEXIST), not replaced.
    /// - `permissions`: records are readable by the group (producers,
    ///   operators) and writable by the daemon alone: they are its word.
    /// - `sync: false`: atomic but not durable, for caches a crash may lose
    ///   (the progress file, the index).
    public static func write(_ bytes: [UInt8], to path: FilePath, step: String? = nil, replace: Bool = true,
                             permissions: FilePermissions = [.ownerReadWrite, .groupRead], staging: FilePath? = nil,
                             sync: Bool = true) throws(SpoolError) {
        let dir = path.removingLastComponent()
        let tmp = (staging ?? dir).appending(SpoolName.temporary(for: path.lastComponent?.string ?? "x"))
        do throws(Errno) {
            let fd = try Sys.open(tmp, .writeOnly, options: [.create, .truncate, .exclusiveCreate, .noFollow], permissions: permissions)
            do throws(Errno) {
                try Sys.writeAll(fd, bytes)
                if sync { try Sys.fsync(fd) }
            } catch {
                try? fd.close()
                throw error
            }
            // Closed once, whatever close says: the number is free after it
            // either way, and may already be another thread's.
            try Sys.close(fd)
            // Nothing is published once this host is fenced off (Fencing.swift).
            if Fence.isRaised { throw Errno(rawValue: ESHUTDOWN) }
            if replace {
                do { try Sys.rename(tmp, path) } catch where error == .isDirectory || error == .directoryNotEmpty {
                    // A directory planted at the name: aside, then ours.
                    try Sys.rename(path, SpoolName.aside(path))
                    try Sys.rename(tmp, path)
                }
            } else { try Sys.renameNoReplace(tmp, path) }
            if sync { try Sys.fsyncDirectory(dir) }
        } catch {
            try? Sys.unlink(tmp)
            throw SpoolError.io(error, "writing \(path)", step: step)
        }
    }

    /// Removes the file at `path` durably (the directory fsynced); what is
    /// no file (a directory planted there) is moved aside instead. A
    /// missing `path` is no error.
    public static func remove(_ path: FilePath, step: String? = nil) throws(SpoolError) {
        try Fence.check(step ?? "remove")
        do {
            do { try Sys.unlink(path) } catch where error == .isDirectory || error == .notPermitted {
                try Sys.rename(path, SpoolName.aside(path))
            }
            try Sys.fsyncDirectory(path.removingLastComponent())
        } catch where error != .noSuchFileOrDirectory {
            throw SpoolError.io(error, "removing \(path)", step: step)
        } catch {}
    }

    /// One rename that changes a job's state, made durable in both directories.
    /// With `replace: false` an existing `to` is an error (EEXIST), not replaced.
    public static func move(_ from: FilePath, _ to: FilePath, step: String? = nil, replace: Bool = true) throws(SpoolError) {
        try Fence.check(step ?? "move")
        do {
            if replace { try Sys.rename(from, to) } else { try Sys.renameNoReplace(from, to) }
            let a = from.removingLastComponent(), b = to.removingLastComponent()
            try Sys.fsyncDirectory(b)
            if a != b { try Sys.fsyncDirectory(a) }
        } catch {
            throw SpoolError.io(error, "moving \(from) to \(to)", step: step)
        }
    }
}
