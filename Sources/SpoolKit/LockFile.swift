import SystemPackage

/// The spool's lock files (`locks/<id>.lock`, `locks/.daemon`,
/// `events/.lock`): opened owner-only (0600: producers in the group cannot
/// open one, so cannot hold it), never through a symlink, never blocking.
/// Whatever is planted at the name that is no regular file (a directory, a
/// FIFO, a symlink, a socket) is moved aside unopened, and the open tried
/// again, so a planted entry can neither block nor stop the daemon.
enum LockFile {
    static func open(_ path: FilePath) throws(Errno) -> FileDescriptor {
        for _ in 0..<8 {
            if let st = try? Sys.stat(path, followSymlinks: false), !st.isRegular {
                try? Sys.rename(path, SpoolName.aside(path))
                continue
            }
            let fd: FileDescriptor
            do {
                fd = try Sys.open(path, .readWrite, options: [.create, .noFollow, .nonBlocking], permissions: [.ownerReadWrite])
            } catch where error == .fileExists {
                // O_CREAT without O_EXCL cannot meet EEXIST on a local file
                // system, but a shared one (CephFS, issue 15) may return it
                // when another host creates the same lock file at once: the
                // file is there now, so open it again.
                continue
            } catch where error == .isDirectory || error == .tooManySymbolicLinkLevels || error == .noSuchAddressOrDevice {
                try? Sys.rename(path, SpoolName.aside(path))  // swapped in after the lstat
                continue
            }
            if let st = try? Sys.fstat(fd), !st.isRegular {
                try? fd.close()
                try? Sys.rename(path, SpoolName.aside(path))
                continue
            }
            return fd
        }
        throw Errno.tooManySymbolicLinkLevels
    }
}
