import CLinux
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

extension Sys {
    /// Opens `path` (a real path: no symlink in it) so that no component can
    /// be a symlink by the time it is opened. openat2(2) with
    /// RESOLVE_NO_SYMLINKS where the kernel and the seccomp filter allow it
    /// (systemd 252's @system-service answers ENOSYS); otherwise open(2) with
    /// O_NOFOLLOW and a check that the kernel's path of the opened file,
    /// /proc/self/fd/N, is `path` itself. Non-blocking, so a FIFO swapped in
    /// can never hang us.
    public static func openNoSymlinks(_ path: FilePath) throws(Errno) -> FileDescriptor {
        let RESOLVE_NO_MAGICLINKS: UInt64 = 0x02, RESOLVE_NO_SYMLINKS: UInt64 = 0x04
        let flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK
        do {
            let fd = try retrying { ms_openat2(path.string, UInt64(flags), RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) }
            return FileDescriptor(rawValue: fd)
        } catch {
            guard error == .noFunction || error == .notPermitted else { throw error }
        }
        let fd = try retrying { Glibc.open(path.string, flags | O_NOFOLLOW) }
        var buf = [CChar](repeating: 0, count: 4097)
        let n = readlink("/proc/self/fd/\(fd)", &buf, 4096)
        let actual = n > 0 ? String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        guard actual == path.string else {
            Glibc.close(fd)
            throw Errno.tooManySymbolicLinkLevels
        }
        return FileDescriptor(rawValue: fd)
    }

    /// realpath(3): the path with every symlink, `.` and `..` resolved, or nil.
    public static func realpath(_ p: FilePath) -> FilePath? {
        guard let r = Glibc.realpath(p.string, nil) else { return nil }
        defer { free(r) }
        return FilePath(String(cString: r))
    }
}
