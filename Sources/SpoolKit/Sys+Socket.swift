import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The socket calls of the metrics listener, in the manner of Sys.swift
/// (EINTR retried, errno typed). Only loopback TCP and Unix sockets: the
/// metrics are not meant for the network (put a proxy in front for that).
extension Sys {
    public static func listen(_ endpoint: MetricsEndpoint, backlog: Int32 = 16) throws(Errno) -> FileDescriptor {
        switch endpoint {
        case .unix(let path):
            let fd = try retrying { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
            // A socket file left by a dead daemon; never anything else.
            if let st = try? stat(path, followSymlinks: false), (st.st_mode & S_IFMT) == S_IFSOCK { try? unlink(path) }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.string.utf8)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in bytes.prefix(raw.count - 1).enumerated() { raw[i] = b }
            }
            try bindAndListen(fd, &addr, socklen_t(MemoryLayout<sockaddr_un>.size), backlog)
            return FileDescriptor(rawValue: fd)
        case .tcp(let host, let port):
            let v6 = host.contains(":")
            let fd = try retrying { socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if v6 {
                var addr = sockaddr_in6()
                addr.sin6_family = sa_family_t(AF_INET6)
                addr.sin6_port = port.bigEndian
                inet_pton(AF_INET6, host, &addr.sin6_addr)
                try bindAndListen(fd, &addr, socklen_t(MemoryLayout<sockaddr_in6>.size), backlog)
            } else {
                var addr = sockaddr_in()
                addr.sin_family = sa_family_t(AF_INET)
                addr.sin_port = port.bigEndian
                inet_pton(AF_INET, host, &addr.sin_addr)
                try bindAndListen(fd, &addr, socklen_t(MemoryLayout<sockaddr_in>.size), backlog)
            }
            return FileDescriptor(rawValue: fd)
        }
    }

    /// A stream connection to a Unix socket (a client of `listen`).
    public static func connectUnix(_ path: FilePath) throws(Errno) -> FileDescriptor {
        let fd = try retrying { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.string.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        let r = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if r != 0 { let e = Errno(rawValue: errno); Glibc.close(fd); throw e }
        return FileDescriptor(rawValue: fd)
    }

    private static func bindAndListen<A>(_ fd: Int32, _ addr: inout A, _ len: socklen_t, _ backlog: Int32) throws(Errno) {
        let r = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        if r != 0 { let e = Errno(rawValue: errno); Glibc.close(fd); throw e }
        if Glibc.listen(fd, backlog) != 0 { let e = Errno(rawValue: errno); Glibc.close(fd); throw e }
    }

    /// Accepts one connection; its reads time out after `timeout` seconds so
    /// a client that sends nothing cannot hold the listener.
    public static func accept(_ listener: FileDescriptor, readTimeout timeout: Int = 5) throws(Errno) -> FileDescriptor {
        let fd = try retrying { Glibc.accept(listener.rawValue, nil, nil) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return FileDescriptor(rawValue: fd)
    }

    /// Reads until `terminator` is seen, the peer closes, or `limit` bytes.
    public static func read(_ fd: FileDescriptor, until terminator: [UInt8], limit: Int) throws(Errno) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 2048)
        while out.count < limit {
            let n: Int
            do { n = try buf.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) } } catch let e as Errno { throw e } catch { throw .ioError }
            if n == 0 { break }
            // Only the new bytes (and the few before them) can complete the terminator.
            let from = max(0, out.count - terminator.count + 1)
            out += buf[..<n]
            if out[from...].firstRange(of: terminator) != nil { break }
        }
        return out
    }

    /// Wakes a thread blocked in accept(2) on `fd` (close alone does not).
    public static func shutdownSocket(_ fd: FileDescriptor) {
        _ = Glibc.shutdown(fd.rawValue, Int32(SHUT_RDWR))
    }
}
