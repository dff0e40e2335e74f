import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Durable file operations (spool-v1.md "Durability"): a file is fsynced
/// before the rename that publishes it, the directory after. Every state
/// change of a job is one rename.
public enum Durable {
    /// Writes `bytes` to `path` atomically: a dot-named temporary file in the
    /// same directory, fsync, rename over `path`, fsync the directory.
    /// With `replace: false` an existing `path` is an error (EEXIST), not replaced.
    public static func write(_ bytes: [UInt8], to path: FilePath, step: String? = nil, replace: Bool = true) throws(SpoolError) {
        let dir = path.removingLastComponent()
        let tmp = dir.appending(".\(path.lastComponent?.string ?? "x").tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do throws(Errno) {
            // Readable by the group (producers, operators), writable by the
            // daemon alone: records are the daemon's word.
            let fd = try Sys.open(tmp, .writeOnly, options: [.create, .truncate, .exclusiveCreate, .noFollow],
                                  permissions: [.ownerReadWrite, .groupRead])
            do throws(Errno) {
                try Sys.writeAll(fd, bytes)
                try Sys.fsync(fd)
            } catch {
                try? fd.close()
                throw error
            }
            // Closed once, whatever close says: the number is free after it
            // either way, and may already be another thread's.
            try Sys.close(fd)
            if replace { try Sys.rename(tmp, path) } else { try Sys.renameNoReplace(tmp, path) }
            try Sys.fsyncDirectory(dir)
        } catch {
            try? Sys.unlink(tmp)
            throw SpoolError.io(error, "writing \(path)", step: step)
        }
    }

    /// One rename that changes a job's state, made durable in both directories.
    public static func move(_ from: FilePath, _ to: FilePath, step: String? = nil) throws(SpoolError) {
        do {
            try Sys.rename(from, to)
            let a = from.removingLastComponent(), b = to.removingLastComponent()
            try Sys.fsyncDirectory(b)
            if a != b { try Sys.fsyncDirectory(a) }
        } catch {
            throw SpoolError.io(error, "moving \(from) to \(to)", step: step)
        }
    }

    /// Whether `name` is one of our temporary files (left by a crash).
    public static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(".") && name.contains(".tmp-")
    }
}
