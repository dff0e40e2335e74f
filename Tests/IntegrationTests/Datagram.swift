import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A bound AF_UNIX datagram socket that collects what is sent to it: the
/// test side of sd_notify(3) (NOTIFY_SOCKET) and of journald's native
/// protocol (/run/systemd/journal/socket).
final class DatagramListener: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var _messages: [String] = []
    private var stopped = false

    init(path: String) {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let b = Array(path.utf8)
            precondition(b.count < raw.count, "socket path too long")
            raw.copyBytes(from: b)
            raw[b.count] = 0
        }
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        precondition(r == 0, "bind \(path): \(errno)")
        chmod(path, 0o777)
        Thread.detachNewThread { [self] in loop() }
    }

    private func loop() {
        var buf = [UInt8](repeating: 0, count: 1 << 17)
        while true {
            lock.lock(); let s = stopped; lock.unlock()
            if s { return }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let n = recv(fd, &buf, buf.count, 0)
            if n > 0 {
                lock.lock(); _messages.append(String(decoding: buf[..<n], as: UTF8.self)); lock.unlock()
            }
        }
    }

    var messages: [String] { lock.lock(); defer { lock.unlock() }; return _messages }

    func stop() { lock.lock(); stopped = true; lock.unlock(); usleep(150_000); close(fd); unlink(path) }

    /// Journal entries: each datagram's FIELD=value lines as a dictionary.
    var journalEntries: [[String: String]] {
        messages.map { m in
            var d: [String: String] = [:]
            for line in m.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                d[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
            return d
        }
    }
}
