// The one place where SpoolKit calls the kernel directly. Paths go to the
// kernel as their bytes (withPlatformString), never through `.string`, which
// would repair a name that is not UTF-8 into one that names another file.
//
// Modelled on swift-nio's NIOPosix/System.swift: every call retries EINTR and
// turns errno into a typed `Errno` (from swift-system). swift-system already
// covers open/read/write/close/stat; what it lacks (flock, fsync, rename,
// readdir, inotify, mkdir) is wrapped here and nowhere else.
import CLinux
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
        try Seam.check(.open, path)
        do {
            return try FileDescriptor.open(path, mode, options: options.union(.closeOnExec),
                                           permissions: permissions, retryOnInterrupt: true)
        } catch let e as Errno { throw e } catch { throw Errno.ioError }
    }

    /// fchown(2), fchmod(2): best effort (a file system or a user that
    /// cannot is no reason to stop), so no error.
    public static func chown(_ fd: FileDescriptor, uid: uid_t, gid: gid_t) { _ = fchown(fd.rawValue, uid, gid) }
    public static func chmod(_ fd: FileDescriptor, _ mode: mode_t) { _ = fchmod(fd.rawValue, mode) }
    /// Whether this process runs as root (which then hands files it creates to the spool's owner).
    public static var isRoot: Bool { geteuid() == 0 }
    public static var processID: Int32 { getpid() }
    /// Whether a process with this pid exists (kill(pid, 0); EPERM: it does, as another user's).
    public static func isProcessAlive(_ pid: Int32) -> Bool { pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) }
    /// ftruncate(2), best effort (used to take back a failed append).
    public static func truncate(_ fd: FileDescriptor, size: Int64) { _ = try? retrying { ftruncate(fd.rawValue, off_t(size)) } }
    /// Sleeps on this thread (usleep(3)).
    public static func sleep(milliseconds: Int) { usleep(UInt32(max(0, milliseconds)) * 1000) }

    /// Exclusive, non-blocking flock(2). Returns false when another open file
    /// description holds it.
    public static func tryLockExclusive(_ fd: FileDescriptor) throws(Errno) -> Bool {
        try tryLock(fd, LOCK_EX)
    }

    /// flock(2) `operation` (LOCK_EX or LOCK_SH) without blocking: false
    /// when another open file description holds a conflicting lock.
    public static func tryLock(_ fd: FileDescriptor, _ operation: Int32) throws(Errno) -> Bool {
        try Seam.check(.lock)
        do {
            _ = try retrying { flock(fd.rawValue, operation | LOCK_NB) }
            return true
        } catch {
            if error == .wouldBlock || error == .resourceTemporarilyUnavailable { return false }
            throw error
        }
    }

    /// flock(2) LOCK_UN: before the descriptor is closed.
    public static func unlock(_ fd: FileDescriptor) {
        _ = try? retrying { flock(fd.rawValue, LOCK_UN) }
    }

    public static func fsync(_ fd: FileDescriptor) throws(Errno) {
        try Seam.check(.fsync)
        _ = try retrying { Glibc.fsync(fd.rawValue) }
    }

    /// fdatasync(2): the file's data (and size) durable, not its timestamps.
    public static func fdatasync(_ fd: FileDescriptor) throws(Errno) {
        _ = try retrying { Glibc.fdatasync(fd.rawValue) }
    }

    /// fsync a directory, so that the names created or renamed in it are durable.
    public static func fsyncDirectory(_ dir: FilePath) throws(Errno) {
        let fd = try open(dir, .readOnly, options: [.directory])
        defer { try? fd.close() }
        try fsync(fd)
    }

    public static func rename(_ from: FilePath, _ to: FilePath) throws(Errno) {
        if try Seam.check(.rename, to) { return }
        _ = try retrying { from.withPlatformString { f in to.withPlatformString { Glibc.rename(f, $0) } } }
    }

    /// rename(2) that fails with EEXIST instead of replacing `to`
    /// (renameat2 RENAME_NOREPLACE; where the file system cannot, link(2)
    /// then unlink(2), which refuses an existing name the same way).
    public static func renameNoReplace(_ from: FilePath, _ to: FilePath) throws(Errno) {
        try Seam.check(.rename, to)
        let RENAME_NOREPLACE: UInt32 = 1
        do { _ = try retrying { from.withPlatformString { f in to.withPlatformString { ms_renameat2(f, $0, RENAME_NOREPLACE) } } } }
        catch where error == .invalidArgument || error == .noFunction || error == .notSupported {
            _ = try retrying { from.withPlatformString { f in to.withPlatformString { Glibc.link(f, $0) } } }
            try unlink(from)
        }
    }

    /// Swaps two names atomically (renameat2 RENAME_EXCHANGE).
    public static func exchange(_ a: FilePath, _ b: FilePath) throws(Errno) {
        let RENAME_EXCHANGE: UInt32 = 2
        _ = try retrying { a.withPlatformString { x in b.withPlatformString { ms_renameat2(x, $0, RENAME_EXCHANGE) } } }
    }

    // MARK: Relative to an open directory (openat and friends): no path
    // component can be swapped between a check and a use.

    /// openat(2) of one name in `dir`, never through a symlink.
    public static func openAt(_ dir: FileDescriptor, _ name: String, _ flags: Int32, permissions: mode_t = 0) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try retrying { Glibc.openat(dir.rawValue, name, flags | O_NOFOLLOW | O_CLOEXEC, permissions) })
    }

    /// mkdirat(2); an existing entry is not an error (the open that follows
    /// checks what it is). True when this call made the directory.
    @discardableResult
    public static func mkdirAt(_ dir: FileDescriptor, _ name: String, permissions: mode_t = 0o775) throws(Errno) -> Bool {
        do { _ = try retrying { Glibc.mkdirat(dir.rawValue, name, permissions) }; return true }
        catch { if error != .fileExists { throw error }; return false }
    }

    /// The entry names of an open directory (its own descriptor is not consumed).
    public static func entries(of dir: FileDescriptor) throws(Errno) -> [String] {
        let copy = try retrying { Glibc.openat(dir.rawValue, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard let d = fdopendir(copy) else { let e = Errno(rawValue: errno); Glibc.close(copy); throw e }
        defer { closedir(d) }
        var out: [String] = []
        while let ent = readdir(d) {
            let name = String(cString: (UnsafeRawPointer(ent) + direntNameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }

    /// fstatat(2) without following a symlink.
    public static func lstatAt(_ dir: FileDescriptor, _ name: String) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        _ = try retrying { Glibc.fstatat(dir.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) }
        return st
    }

    public static func renameAt(_ dir: FileDescriptor, _ from: String, _ to: String) throws(Errno) {
        _ = try retrying { Glibc.renameat(dir.rawValue, from, dir.rawValue, to) }
    }

    /// renameat(2) in one directory that fails with EEXIST instead of
    /// replacing `to` (renameat2 RENAME_NOREPLACE; where the file system
    /// takes no rename flags, NFS among them, linkat(2) then unlinkat(2),
    /// which refuses an existing name the same way).
    ///
    /// `directory`: `from` is a directory, which link(2) cannot take; the
    /// fallback is then a plain renameat(2), which refuses a non-empty
    /// directory or a file at `to` (ENOTEMPTY, EEXIST, ENOTDIR) and replaces
    /// only an empty directory.
    public static func renameAtNoReplace(_ dir: FileDescriptor, _ from: String, _ to: String, directory: Bool = false) throws(Errno) {
        let RENAME_NOREPLACE: UInt32 = 1
        do { _ = try retrying { ms_renameat2_at(dir.rawValue, from, dir.rawValue, to, RENAME_NOREPLACE) } }
        catch where error == .invalidArgument || error == .noFunction || error == .notSupported {
            if directory { return try renameAt(dir, from, to) }
            _ = try retrying { Glibc.linkat(dir.rawValue, from, dir.rawValue, to, 0) }
            try unlinkAt(dir, from)
        }
    }

    public static func unlinkAt(_ dir: FileDescriptor, _ name: String) throws(Errno) {
        _ = try retrying { Glibc.unlinkat(dir.rawValue, name, 0) }
    }

    /// Removes the directory `name` in `dir` with the files in it, when
    /// `owned` holds for it: it is opened once (O_NOFOLLOW, O_DIRECTORY),
    /// judged on that descriptor, emptied through it (regular files and
    /// symlinks unlinked, never followed; a package's directory is flat, so
    /// a directory inside stops the removal with ENOTEMPTY), and removed by
    /// name only if the name still is that inode (a directory renamed into
    /// its place meanwhile is left alone). False when `owned` refused it.
    @discardableResult
    public static func removeDirectory(_ dir: FileDescriptor, _ name: String, if owned: (FileDescriptor) -> Bool) throws(Errno) -> Bool {
        let sub = try openAt(dir, name, O_RDONLY | O_DIRECTORY)
        defer { try? sub.close() }
        guard owned(sub) else { return false }
        let st = try fstat(sub)
        // Everything judged before anything goes: a directory inside stops
        // the removal with nothing removed. An entry gone meanwhile is fine.
        let list = try entries(of: sub)
        for entry in list {
            guard let e = try? lstatAt(sub, entry) else { continue }
            guard e.st_mode & S_IFMT != S_IFDIR else { throw Errno.directoryNotEmpty }
        }
        for entry in list {
            do { try unlinkAt(sub, entry) } catch where error == .noSuchFileOrDirectory {}
        }
        let now = try lstatAt(dir, name)
        guard now.st_dev == st.st_dev, now.st_ino == st.st_ino else { return false }
        _ = try retrying { Glibc.unlinkat(dir.rawValue, name, AT_REMOVEDIR) }
        return true
    }

    /// Swaps two names in one directory atomically (renameat2 RENAME_EXCHANGE).
    public static func exchangeAt(_ dir: FileDescriptor, _ a: String, _ b: String) throws(Errno) {
        let RENAME_EXCHANGE: UInt32 = 2
        _ = try retrying { ms_renameat2_at(dir.rawValue, a, dir.rawValue, b, RENAME_EXCHANGE) }
    }

    /// An extended attribute's value, or nil (absent, or the file system has none).
    public static func getXattr(_ fd: FileDescriptor, _ name: String) -> String? {
        var buf = [UInt8](repeating: 0, count: 256)
        let n = buf.withUnsafeMutableBytes { fgetxattr(fd.rawValue, name, $0.baseAddress, $0.count) }
        return n > 0 ? String(decoding: buf[..<n], as: UTF8.self) : nil
    }

    /// Sets an extended attribute; false where the file system has none.
    @discardableResult
    public static func setXattr(_ fd: FileDescriptor, _ name: String, _ value: String) -> Bool {
        let bytes = Array(value.utf8)
        return bytes.withUnsafeBytes { fsetxattr(fd.rawValue, name, $0.baseAddress, $0.count, 0) } == 0
    }

    /// The memory this process may use: its cgroup's memory.max (systemd's
    /// MemoryMax=) when one is set, else the machine's RAM.
    public static func memoryLimit() -> Int {
        let ram = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        guard case .success(let cg) = readRegularFile("/proc/self/cgroup", limit: 4096),
              let line = String(decoding: cg, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("0::") }) else { return ram }
        // The line's path is absolute within the cgroup tree: appended as a
        // string (FilePath.pushing an absolute path would replace the base).
        let path = FilePath("/sys/fs/cgroup" + String(line.dropFirst(3)) + "/memory.max")
        guard case .success(let m) = readRegularFile(path, limit: 64),
              let limit = Int(String(decoding: m, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else { return ram }
        return min(ram, limit)
    }

    /// statfs(2)'s `f_type` of the file system holding `path` (its magic
    /// number: linux/magic.h).
    public static func fileSystemType(_ path: FilePath) throws(Errno) -> UInt64 {
        var type: UInt64 = 0
        _ = try retrying { path.withPlatformString { ms_statfs_type($0, &type) } }
        return type
    }

    /// The machine's host name (gethostname(2)), nil when it cannot be read.
    public static func hostName() -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return nil }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The soft RLIMIT_NOFILE; nil when unlimited.
    public static func openFileLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max, limit.rlim_cur <= rlim_t(Int.max) else { return nil }
        return Int(limit.rlim_cur)
    }

    public static func close(_ fd: FileDescriptor) throws(Errno) {
        // close(2) is not retried on EINTR: on Linux the descriptor is gone anyway.
        if Glibc.close(fd.rawValue) == -1 {
            let e = Errno(rawValue: errno)
            if e != .interrupted { throw e }
        }
    }

    public static func unlink(_ path: FilePath) throws(Errno) {
        try Seam.check(.unlink, path)
        _ = try retrying { path.withPlatformString { Glibc.unlink($0) } }
    }

    public static func mkdir(_ path: FilePath, permissions: FilePermissions = [.ownerReadWriteExecute, .groupReadWriteExecute, .otherReadExecute]) throws(Errno) {
        do { _ = try retrying { path.withPlatformString { Glibc.mkdir($0, permissions.rawValue) } } }
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
            _ = try retrying { path.withPlatformString { c_stat($0, &st) } }
        } else {
            _ = try retrying { path.withPlatformString { c_lstat($0, &st) } }
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
        return path.withPlatformString { Glibc.lstat($0, &st) } == 0
    }

    /// Calls `body` with each entry name of `dir` (not "." and ".."), one at a
    /// time, so a directory of 100,000 entries is never held in memory at once.
    /// A name that is not valid UTF-8 arrives repaired (U+FFFD), which names
    /// no file: readers that must reach such entries use `forEachRawEntry`.
    public static func forEachEntry(in dir: FilePath, _ body: (String) throws -> Void) throws {
        try forEachRawEntry(in: dir) { name, _ in try body(name) }
    }

    /// `forEachEntry`, with the name's bytes where they are not valid UTF-8.
    public static func forEachRawEntry(in dir: FilePath, _ body: (_ name: String, _ rawIfNotUTF8: [UInt8]?) throws -> Void) throws {
        guard let d = dir.withPlatformString({ opendir($0) }) else { throw Errno(rawValue: errno) }
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
            let cName = (UnsafeRawPointer(ent) + direntNameOffset).assumingMemoryBound(to: CChar.self)
            if let name = String(validatingCString: cName) {
                if name == "." || name == ".." { continue }
                try body(name, nil)
            } else {
                let raw = Array(UnsafeBufferPointer(start: cName, count: strlen(cName))).map { UInt8(bitPattern: $0) }
                try body(String(decoding: raw, as: UTF8.self), raw)
            }
        }
    }

    private static let direntNameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

    public static func entries(in dir: FilePath) throws -> [String] {
        var out: [String] = []
        try forEachEntry(in: dir) { out.append($0) }
        return out
    }

    /// What a spool entry turned out to be when it was read.
    public enum FileRefusal: Error, Sendable, Equatable {
        /// Not a regular file: a FIFO, socket, device, directory or symlink.
        case notRegular(kind: String)
        /// Over the limit (the size fstat reported, or more bytes than it said).
        case tooLarge(size: Int64)
        /// open/fstat/read failed.
        case error(Errno)
    }

    /// Names a file type from `st_mode`, for messages.
    public static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "regular file"
        case S_IFDIR: return "directory"
        case S_IFLNK: return "symbolic link"
        case S_IFIFO: return "FIFO"
        case S_IFSOCK: return "socket"
        case S_IFCHR: return "character device"
        case S_IFBLK: return "block device"
        default: return "file of unknown type"
        }
    }

    /// Reads a whole file that anyone with write access to a spool directory
    /// may have planted: never follows a symlink in the last component
    /// (`followSymlinks` only for files the operator names, like the config),
    /// never opens anything but a regular file (lstat first, so a FIFO or a
    /// device is not even opened), never blocks (O_NONBLOCK: a FIFO swapped
    /// in between lstat and open is refused by fstat), and never reads nor
    /// allocates more than `limit` + 1 bytes, whatever st_size says.
    public static func readRegularFile(_ path: FilePath, limit: Int = 1 << 20, followSymlinks: Bool = false) -> Result<[UInt8], FileRefusal> {
        do throws(Errno) {
            let pre = try stat(path, followSymlinks: followSymlinks)
            guard pre.isRegular else { return .failure(.notRegular(kind: kind(of: pre.st_mode))) }
            guard Int64(pre.st_size) <= Int64(limit) else { return .failure(.tooLarge(size: Int64(pre.st_size))) }
            let flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (followSymlinks ? 0 : O_NOFOLLOW)
            let fd = FileDescriptor(rawValue: try retrying { path.withPlatformString { Glibc.open($0, flags) } })
            defer { try? fd.close() }
            let st = try fstat(fd)
            guard st.isRegular else { return .failure(.notRegular(kind: kind(of: st.st_mode))) }
            guard Int64(st.st_size) <= Int64(limit) else { return .failure(.tooLarge(size: Int64(st.st_size))) }
            guard let bytes = try readAll(fd, limit: limit, sizeHint: Int(st.st_size)) else {
                return .failure(.tooLarge(size: Int64(st.st_size)))
            }
            return .success(bytes)
        } catch {
            if error == .tooManySymbolicLinkLevels { return .failure(.notRegular(kind: "symbolic link")) }
            return .failure(.error(error))
        }
    }

    /// Reads `fd` to its end, never more than `limit` + 1 bytes (one more
    /// than allowed tells a file that grew after fstat): nil when over `limit`.
    public static func readAll(_ fd: FileDescriptor, limit: Int, sizeHint: Int = 0) throws(Errno) -> [UInt8]? {
        let capacity = min(max(0, sizeHint), limit) + 1
        var buf = [UInt8](repeating: 0, count: capacity)
        var total = 0
        while total < buf.count {
            let n: Int
            do {
                n = try buf.withUnsafeMutableBytes { raw in
                    try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[total...]), retryOnInterrupt: true)
                }
            } catch let e as Errno { throw e } catch { throw Errno.ioError }
            if n == 0 { break }
            total += n
            if total == buf.count, total <= limit {
                buf.append(contentsOf: [UInt8](repeating: 0, count: min(64 * 1024, limit + 1 - total)))
            }
        }
        if total > limit { return nil }
        buf.removeLast(buf.count - total)
        return buf
    }

    /// `readRegularFile` for callers that only need the bytes: nil when the
    /// file is too large or not a regular file; errno errors thrown.
    public static func readFile(_ path: FilePath, limit: Int = 1 << 20, followSymlinks: Bool = false) throws(Errno) -> [UInt8]? {
        switch readRegularFile(path, limit: limit, followSymlinks: followSymlinks) {
        case .success(let bytes): return bytes
        case .failure(.error(let e)): throw e
        case .failure: return nil
        }
    }

    public static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws(Errno) {
        try Seam.check(.write)
        do { _ = try fd.writeAll(bytes) } catch let e as Errno { throw e } catch { throw Errno.ioError }
    }

    public static func setModificationTime(_ path: FilePath, seconds: Double) throws(Errno) {
        let s = Int(seconds.rounded(.down))
        let ns = Int((seconds - Double(s)) * 1e9)
        var times = [timespec(tv_sec: s, tv_nsec: ns), timespec(tv_sec: s, tv_nsec: ns)]
        _ = try retrying { path.withPlatformString { utimensat(AT_FDCWD, $0, &times, 0) } }
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
    /// An inotify instance: the one owner of its descriptor (closed once, in
    /// `deinit`). Watches are added after init, so a failed watch throws
    /// from a method, never from a half-built object whose deinit would
    /// close the descriptor a second time.
    public final class Inotify {
        public struct Event: Sendable {
            public var watch: Int32
            public var mask: UInt32
            /// The entry's name (empty for events on the directory itself).
            public var name: String
            /// The name's bytes, only when they are not valid UTF-8.
            public var rawName: [UInt8]?
            public var overflowed: Bool { mask & UInt32(IN_Q_OVERFLOW) != 0 }
        }

        /// A create, rename, write or delete in a directory.
        public static let anyChange = UInt32(IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE)

        private let fd: Int32
        private let buffer = UnsafeMutableRawPointer.allocate(byteCount: 64 * 1024, alignment: 8)

        public init() throws(Errno) {
            let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
            guard fd >= 0 else { buffer.deallocate(); throw Errno(rawValue: errno) }
            self.fd = fd
        }

        deinit {
            Glibc.close(fd)
            buffer.deallocate()
        }

        /// Watches `dir` for `mask`; returns the watch descriptor.
        @discardableResult
        public func watch(_ dir: FilePath, _ mask: UInt32) throws(Errno) -> Int32 {
            try retrying { dir.withPlatformString { inotify_add_watch(fd, $0, mask) } }
        }

        /// Blocks up to `timeout` seconds until events are pending; true when some are.
        public func wait(timeout: Double) -> Bool {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&pfd, 1, Int32(max(0, timeout) * 1000)) > 0
        }

        /// The events pending now (none when none are: the descriptor does not block).
        public func read() -> [Event] {
            let n = Glibc.read(fd, buffer, 64 * 1024)
            guard n > 0 else { return [] }
            var out: [Event] = []
            var off = 0
            let header = MemoryLayout<inotify_event>.size
            while off + header <= n {
                let ev = buffer.advanced(by: off).assumingMemoryBound(to: inotify_event.self).pointee
                var name = "", raw: [UInt8]?
                if ev.len > 0 {
                    // The kernel pads the name with NULs within ev.len bytes.
                    let bytes = Array(UnsafeRawBufferPointer(start: buffer.advanced(by: off + header), count: Int(ev.len)).prefix { $0 != 0 })
                    if let valid = String(validating: bytes, as: UTF8.self) { name = valid } else {
                        name = String(decoding: bytes, as: UTF8.self)
                        raw = bytes
                    }
                }
                out.append(Event(watch: ev.wd, mask: ev.mask, name: name, rawName: raw))
                off += header + Int(ev.len)
            }
            return out
        }

        /// Waits up to `timeout` and drains everything pending; true when something came.
        public func waitAndDrain(timeout: Double) -> Bool {
            guard wait(timeout: timeout) else { return false }
            while !read().isEmpty {}
            return true
        }
    }
}
