import Foundation
import Logging
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// inotify on inbox/ and retry/, feeding the Scanner; a full rescan at
/// start, on queue overflow, and every `rescanSeconds` as a safety net.
/// Runs on a thread of its own (inotify reads block).
///
/// `@unchecked Sendable`: the inotify instance and `lastFullScan` are used by
/// the watcher's own thread only (`run()`); other threads call `stop()`,
/// which touches only the atomic flag.
public final class Watcher: @unchecked Sendable {
    let scanner: Scanner
    let logger: Logger
    private let inotify: Sys.Inotify
    private let sources: [Int32: Source]
    private let stopped = Atomic<Bool>(false)
    private var lastFullScan = ContinuousClock.Instant.now
    private let rescanInterval: @Sendable () -> Double
    private let onRescan: @Sendable () -> Void
    private let control: Int32
    private let onControl: @Sendable () -> Void

    /// `onControl`: something changed in control/ (a pause or a resume).
    public init(scanner: Scanner, logger: Logger, rescanInterval: @escaping @Sendable () -> Double,
                onRescan: @escaping @Sendable () -> Void, onControl: @escaping @Sendable () -> Void = {}) throws(SpoolError) {
        let inotify: Sys.Inotify
        var sources: [Int32: Source] = [:]
        let control: Int32
        do {
            inotify = try Sys.Inotify()
            for (dir, src) in [(scanner.layout.inbox, Source.inbox), (scanner.layout.retry, .retry)] {
                sources[try inotify.watch(dir, UInt32(IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB))] = src
            }
            control = try inotify.watch(scanner.layout.control, Sys.Inotify.anyChange)
        } catch { throw SpoolError.io(error, "watching \(scanner.layout.inbox), \(scanner.layout.retry) and \(scanner.layout.control) with inotify") }
        self.inotify = inotify
        self.sources = sources
        self.control = control
        self.onControl = onControl
        self.scanner = scanner
        self.logger = logger
        self.rescanInterval = rescanInterval
        self.onRescan = onRescan
    }

    public func stop() { stopped.store(true, ordering: .releasing) }
    var isStopped: Bool { stopped.load(ordering: .acquiring) }

    /// The thread body: initial full scan, then events until `stop()`.
    public func run() {
        let t0 = ContinuousClock.now
        fullScan()
        logger.info("first full scan done in \((ContinuousClock.now - t0).milliseconds) ms: \(scanner.queue.count) jobs waiting", metadata: ["STEP": "scan"])
        while !isStopped {
            if inotify.wait(timeout: 0.25) {
                for event in inotify.read() { handle(event) }
            }
            // The monotonic clock: a wall-clock jump neither stops nor floods the rescans.
            if (ContinuousClock.now - lastFullScan).seconds >= rescanInterval() { fullScan() }
        }
    }

    func fullScan() {
        lastFullScan = .now
        onControl()   // a pause written while an event was missed is seen here
        scanner.fullScan()
        onRescan()
    }

    private func handle(_ event: Sys.Inotify.Event) {
        if event.overflowed {
            logger.warning("inotify queue overflowed: rescanning the spool")
            fullScan()
        } else if event.watch == control {
            onControl()
        } else if !event.name.isEmpty, let source = sources[event.watch] {
            scanner.consider(source, name: event.name, rawName: event.rawName)
        }
    }
}

extension Duration {
    /// Whole milliseconds, for log lines.
    public var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
    /// Seconds as a Double.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
