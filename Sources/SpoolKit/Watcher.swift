import Foundation
import Logging
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// inotify on inbox/ and retry/, feeding the Scanner; a full rescan at
/// start, on queue overflow, and every `rescanSeconds` as a safety net.
/// Runs on a thread of its own (inotify reads block).
public final class Watcher: @unchecked Sendable {
    let scanner: Scanner
    let logger: Logger
    private let fd: Int32
    private var wds: [Int32: Source] = [:]
    private let stopFlag = NSLock()
    private var stopped = false
    private var lastFullScan = Date.distantPast
    private let rescanInterval: () -> Double
    private let onRescan: @Sendable () -> Void

    public init(scanner: Scanner, logger: Logger, rescanInterval: @escaping @Sendable () -> Double,
                onRescan: @escaping @Sendable () -> Void) throws(SpoolError) {
        self.scanner = scanner
        self.logger = logger
        self.rescanInterval = rescanInterval
        self.onRescan = onRescan
        fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw SpoolError.io(Errno(rawValue: errno), "inotify_init1") }
        for (dir, src) in [(scanner.layout.inbox, Source.inbox), (scanner.layout.retry, .retry)] {
            let wd = inotify_add_watch(fd, dir.string, UInt32(IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB))
            guard wd >= 0 else { close(fd); throw SpoolError.io(Errno(rawValue: errno), "inotify_add_watch \(dir)") }
            wds[wd] = src
        }
    }

    deinit { close(fd) }

    public func stop() { stopFlag.lock(); stopped = true; stopFlag.unlock() }
    var isStopped: Bool { stopFlag.lock(); defer { stopFlag.unlock() }; return stopped }

    /// The thread body: initial full scan, then events until `stop()`.
    public func run() {
        let t0 = Date()
        fullScan()
        logger.info("first full scan done in \(Int(Date().timeIntervalSince(t0) * 1000)) ms: \(scanner.queue.count) jobs waiting", metadata: ["STEP": "scan"])
        let bufSize = 64 * 1024
        let buf = UnsafeMutableRawPointer.allocate(byteCount: bufSize, alignment: 8)
        defer { buf.deallocate() }
        while !isStopped {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, 250)
            if r > 0 {
                let n = read(fd, buf, bufSize)
                if n > 0 { handle(buf, count: n) }
            }
            if Date().timeIntervalSince(lastFullScan) >= rescanInterval() { fullScan() }
        }
    }

    func fullScan() {
        lastFullScan = Date()
        scanner.fullScan()
        onRescan()
    }

    private func handle(_ buf: UnsafeMutableRawPointer, count: Int) {
        var off = 0
        let header = MemoryLayout<inotify_event>.size
        while off + header <= count {
            let ev = buf.advanced(by: off).assumingMemoryBound(to: inotify_event.self).pointee
            if ev.mask & UInt32(IN_Q_OVERFLOW) != 0 {
                logger.warning("inotify queue overflowed: rescanning the spool")
                fullScan()
            } else if ev.len > 0, let src = wds[ev.wd] {
                let namePtr = buf.advanced(by: off + header).assumingMemoryBound(to: CChar.self)
                scanner.consider(src, name: String(cString: namePtr))
            }
            off += header + Int(ev.len)
        }
    }
}
