// The one place where SpoolKit calls the kernel directly.
//
// Modelled on swift-nio's NIOPosix/System.swift: every call retries EINTR and
// turns errno into a typed `Errno` (from swift-system). swift-system already
// covers open/read/write/close/stat; what it lacks (flock, fsync, rename,
// readdir, inotify, mkdir) is wrapped here and nowhere else.
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

public enum Sys {
    @inline(__always)
    static func retrying<T: FixedWidthInteger>(_ body: () -> T) throws(Errno) -> T {
        while true {
            let r = body()
            if r == -1 {
                let e = Errno(rawValue: errno)
                if e == .interrupted { continue }
                throw e
            }
            return r
        }
    }

    public static func open(_ path: FilePath, _ mode: FileDescriptor.AccessMode,
                            options: FileDescriptor.OpenOptions = [],
                            permissions: FilePermissions? = nil) throws(Errno) -> FileDescriptor {
        do {
            return try FileDescriptor.open(path, mode, options: options.union(.closeOnExec),
                                           permissions: permissions, retryOnInterrupt: true)
        } catch let e as Errno { throw e } catch { throw Errno.ioError }
    }

    /// Exclusive, non-blocking flock(2). Returns false when another open file
    /// description holds it.
    public static func tryLockExclusive(_ fd: FileDescriptor) throws(Errno) -> Bool {
        do {
            _ = try retrying { flock(fd.rawValue, LOCK_EX | LOCK_NB) }
            return true
        } catch {
            if error == .wouldBlock || error == .resourceTemporarilyUnavailable { return false }
            throw error
        }
    }

    public static func fsync(_ fd: FileDescriptor) throws(Errno) {
        _ = try retrying { Glibc.fsync(fd.rawValue) }
    }

    /// fsync a directory, so that the names created or renamed in it are durable.
    public static func fsyncDirectory(_ dir: FilePath) throws(Errno) {
        let fd = try open(dir, .readOnly, options: [.directory])
        defer { try? fd.close() }
        try fsync(fd)
    }

    public static func rename(_ from: FilePath, _ to: FilePath) throws(Errno) {
        _ = try retrying { Glibc.rename(from.string, to.string) }
    }

    public static func close(_ fd: FileDescriptor) throws(Errno) {
        // close(2) is not retried on EINTR: on Linux the descriptor is gone anyway.
        if Glibc.close(fd.rawValue) == -1 {
            let e = Errno(rawValue: errno)
            if e != .interrupted { throw e }
        }
    }

    public static func unlink(_ path: FilePath) throws(Errno) {
        _ = try retrying { Glibc.unlink(path.string) }
    }

    public static func mkdir(_ path: FilePath, permissions: FilePermissions = [.ownerReadWriteExecute, .groupReadWriteExecute, .otherReadExecute]) throws(Errno) {
        do { _ = try retrying { Glibc.mkdir(path.string, permissions.rawValue) } }
        catch { if error != .fileExists { throw error } }
    }

    /// mkdir -p.
    public static func mkdirs(_ path: FilePath) throws(Errno) {
        var prefix = path.root.map { FilePath(root: $0) } ?? FilePath("")
        for c in path.components {
            prefix.append(c)
            try mkdir(prefix)
        }
    }

    public static func stat(_ path: FilePath, followSymlinks: Bool = true) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        if followSymlinks {
            _ = try retrying { c_stat(path.string, &st) }
        } else {
            _ = try retrying { c_lstat(path.string, &st) }
        }
        return st
    }

    public static func fstat(_ fd: FileDescriptor) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        _ = try retrying { c_fstat(fd.rawValue, &st) }
        return st
    }

    public static func exists(_ path: FilePath) -> Bool {
        var st = Glibc.stat()
        return Glibc.lstat(path.string, &st) == 0
    }

    /// Calls `body` with each entry name of `dir` (not "." and ".."), one at a
    /// time, so a directory of 100,000 entries is never held in memory at once.
    public static func forEachEntry(in dir: FilePath, _ body: (String) throws -> Void) throws {
        guard let d = opendir(dir.string) else { throw Errno(rawValue: errno) }
        defer { closedir(d) }
        while true {
            errno = 0
            guard let ent = readdir(d) else {
                if errno != 0 { throw Errno(rawValue: errno) }
                return
            }
            // d_name in place: copying the 256-byte tuple (ent.pointee.d_name)
            // reads past a short record at the end of glibc's buffer
            // (AddressSanitizer found it).
            let name = String(cString: (UnsafeRawPointer(ent) + direntNameOffset).assumingMemoryBound(to: CChar.self))
            if name == "." || name == ".." { continue }
            try body(name)
        }
    }

    private static let direntNameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

    public static func entries(in dir: FilePath) throws -> [String] {
        var out: [String] = []
        try forEachEntry(in: dir) { out.append($0) }
        return out
    }

    /// Reads a whole file, refusing more than `limit` bytes.
    public static func readFile(_ path: FilePath, limit: Int = 1 << 20) throws(Errno) -> [UInt8]? {
        let fd = try open(path, .readOnly)
        defer { try? fd.close() }
        let st = try fstat(fd)
        if Int(st.st_size) > limit { return nil }
        var buf = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var total = 0
        while true {
            if total == buf.count { if total > limit { return nil }; buf.append(contentsOf: [UInt8](repeating: 0, count: 4096)) }
            let n: Int
            do {
                n = try buf.withUnsafeMutableBytes { raw in
                    try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[total...]), retryOnInterrupt: true)
                }
            } catch let e as Errno { throw e } catch { throw Errno.ioError }
            if n == 0 { break }
            total += n
            if total > limit { return nil }
        }
        return Array(buf[..<total])
    }

    public static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws(Errno) {
        do { _ = try fd.writeAll(bytes) } catch let e as Errno { throw e } catch { throw Errno.ioError }
    }

    public static func setModificationTime(_ path: FilePath, seconds: Double) throws(Errno) {
        let s = Int(seconds.rounded(.down))
        let ns = Int((seconds - Double(s)) * 1e9)
        var times = [timespec(tv_sec: s, tv_nsec: ns), timespec(tv_sec: s, tv_nsec: ns)]
        _ = try retrying { utimensat(AT_FDCWD, path.string, &times, 0) }
    }
}

extension Glibc.stat {
    public var isRegular: Bool { (st_mode & S_IFMT) == S_IFREG }
    public var isDirectory: Bool { (st_mode & S_IFMT) == S_IFDIR }
    public var isSymlink: Bool { (st_mode & S_IFMT) == S_IFLNK }
    public var ctimeNanoseconds: Int64 { Int64(st_ctim.tv_sec) * 1_000_000_000 + Int64(st_ctim.tv_nsec) }
    public var mtimeNanoseconds: Int64 { Int64(st_mtim.tv_sec) * 1_000_000_000 + Int64(st_mtim.tv_nsec) }
    public var mtimeSeconds: Double { Double(st_mtim.tv_sec) + Double(st_mtim.tv_nsec) / 1e9 }
}

// At file scope `stat(...)` names the function; inside `Sys` it would name
// `Sys.stat` or the struct.
private func c_stat(_ p: UnsafePointer<CChar>, _ s: UnsafeMutablePointer<stat>) -> Int32 { stat(p, s) }
private func c_lstat(_ p: UnsafePointer<CChar>, _ s: UnsafeMutablePointer<stat>) -> Int32 { lstat(p, s) }
private func c_fstat(_ fd: Int32, _ s: UnsafeMutablePointer<stat>) -> Int32 { fstat(fd, s) }

extension Sys {
    /// inotify on a few directories, for readers that only need "something
    /// changed" (the `watch` view): every create, rename, write and delete.
    public final class DirectoryEvents {
        private let fd: Int32

        public init(_ dirs: [FilePath]) throws(Errno) {
            fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
            guard fd >= 0 else { throw Errno(rawValue: errno) }
            let mask = UInt32(IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE)
            for d in dirs where inotify_add_watch(fd, d.string, mask) < 0 {
                let e = Errno(rawValue: errno); Glibc.close(fd); throw e
            }
        }

        deinit { Glibc.close(fd) }

        /// Blocks up to `timeout` seconds for events; true when some came
        /// (all pending ones are consumed).
        public func wait(timeout: Double) -> Bool {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, Int32(timeout * 1000)) > 0 else { return false }
            var buf = [UInt8](repeating: 0, count: 64 * 1024)
            while buf.withUnsafeMutableBytes({ Glibc.read(fd, $0.baseAddress, $0.count) }) > 0 {}
            return true
        }
    }
}
