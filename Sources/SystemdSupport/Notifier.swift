import CSystemd
import Foundation

/// sd_notify(3) through libsystemd. Without NOTIFY_SOCKET (not under systemd)
/// every call is a no-op, as libsystemd makes it.
public struct Notifier: Sendable {
    public init() {}

    /// Whether systemd listens (NOTIFY_SOCKET is set).
    public var isActive: Bool { ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] != nil }

    /// The watchdog interval systemd asked for, if any (sd_watchdog_enabled).
    public var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }

    @discardableResult
    public func notify(_ state: String) -> Bool { sd_notify(0, state) > 0 }

    public func ready(status: String) { notify("READY=1\nSTATUS=\(status)") }
    public func status(_ text: String) { notify("STATUS=\(text)") }
    public func watchdog() { notify("WATCHDOG=1") }
    public func stopping(status: String) { notify("STOPPING=1\nSTATUS=\(status)") }

    /// RELOADING=1 needs MONOTONIC_USEC (systemd 253 Type=notify-reload; harmless before).
    public func reloading() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        notify("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }
}
