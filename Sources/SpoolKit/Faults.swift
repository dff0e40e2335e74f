import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Fault injection for tests, compiled into debug builds only and driven by
/// MEDIASPOOL_FAULTS, a comma-separated list of:
///
/// - `delay:<id prefix>:<ms>`: before running a job whose id starts with the
///   prefix, sleep (cancellable: timeouts and shutdown end it).
/// - `hang:<id prefix>:<ms>`: the same, ignoring cancellation (a stuck worker).
/// - `ready-delay:<ms>`: sleep after recovery, before the daemon says READY=1.
/// - `crash-job:<id prefix>`: abort(3) while running such a job (a poison pill).
/// - `crash:<point>`: abort(3) the process at a named crash point
///   (`Fault.point("…")` in the code: after-claim, after-result, …).
/// - `errno:<call>:<path part>:<errno>`: once the daemon has recovered the
///   spool, every `<call>` (open, write, fsync, rename, unlink, lock; see
///   `Sys.Seam`) on a path containing the part fails with that errno number
///   (`errno:rename:/done/:108`: every publish fails with ESHUTDOWN).
public enum Fault {
    #if DEBUG
    static let spec: [String] = (ProcessInfo.processInfo.environment["MEDIASPOOL_FAULTS"] ?? "")
        .split(separator: ",").map(String.init)
    #endif

    /// A crash point: aborts when MEDIASPOOL_FAULTS names it.
    @inline(__always)
    public static func point(_ name: String) {
        #if DEBUG
        if spec.contains("crash:" + name) { abort() }
        #endif
    }

    /// Arms the `errno:` faults (after the start-up recovery, before the workers).
    public static func armSeams() {
        #if DEBUG
        for s in spec where s.hasPrefix("errno:") {
            let p = s.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            guard p.count == 4, let call = Sys.Call(rawValue: p[1]), let n = Int32(p[3]) else { continue }
            Sys.Seam.fail(call, with: Errno(rawValue: n), pathContains: p[2].isEmpty ? nil : p[2])
        }
        #endif
    }

    /// Injected delay before READY=1.
    public static func beforeReady() {
        #if DEBUG
        for s in spec where s.hasPrefix("ready-delay:") {
            if let ms = Int(s.dropFirst("ready-delay:".count)) { Sys.sleep(milliseconds: ms) }
        }
        #endif
    }

    /// Injected delay before a job runs.
    static func beforeRun(_ ctx: JobContext) {
        #if DEBUG
        for s in spec {
            if s.hasPrefix("crash-job:"), ctx.id.hasPrefix(s.dropFirst("crash-job:".count)) { abort() }
            let p = s.split(separator: ":", maxSplits: 2).map(String.init)
            guard p.count == 3, ctx.id.hasPrefix(p[1]), let ms = Double(p[2]) else { continue }
            let end = Date().addingTimeInterval(ms / 1000)
            while Date() < end {
                if p[0] == "delay" && ctx.shouldAbort { return }
                if p[0] == "delay" { ctx.progress(step: "injected-delay", fraction: 1 - end.timeIntervalSinceNow / (ms / 1000)) }
                Sys.sleep(milliseconds: 10)
            }
        }
        #endif
    }
}
