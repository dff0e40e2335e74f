import Foundation
import SpoolKit

/// One frame of `watch`, as lines no wider than `width`.
public struct WatchView {
    let inspector: Inspector
    let health: Inspector.HealthPolicy
    let priorities = Inspector.PriorityCache()

    public init(inspector: Inspector, health: Inspector.HealthPolicy) { self.inspector = inspector; self.health = health }

    public func frame(width: Int) -> [String] {
        let s = inspector.status(health: health)
        let w = max(60, width)
        var lines: [String] = []
        let clock = RFC3339.string(Date()).dropFirst(11).prefix(8)
        let head = "mediaspool  \(s.daemonAlive ? "daemon running" : "NO DAEMON")  \(s.healthy ? "healthy" : "UNHEALTHY (status exit \(s.exitCode))")" + (s.paused.map { "  \($0.summary.uppercased())" } ?? "")
        lines.append(pad(head, w - 9) + " " + clock)
        lines.append(fit("spool \(s.spool)", w))
        let c = s.counts
        lines.append(fit("queue: inbox \(c["inbox"] ?? 0)  retry \(c["retry"] ?? 0)  processing \(c["processing"] ?? 0)  done \(c["done"] ?? 0)  failed \(c["failed"] ?? 0)", w))
        if let byPrio = inspector.waitingByPriority(cache: priorities), !byPrio.isEmpty {
            let parts = byPrio.keys.sorted(by: >).map { "p\($0 > 0 ? "+" : "")\($0): \(byPrio[$0]!)" }
            lines.append(fit("waiting by priority: " + parts.joined(separator: "  "), w))
        }
        if let o = s.oldestWaitingSeconds { lines.append(fit("oldest waiting \(duration(o))", w)) }
        lines.append("")
        lines.append(fit("RUNNING (\(s.running.count))", w))
        if s.running.isEmpty { lines.append("  none") }
        for r in s.running {
            // type(9) id(18) step(12) bar pct elapsed eta
            let f = r.fraction
            let elapsed = r.elapsedSeconds ?? 0
            let eta = f.flatMap { $0 > 0.02 && $0 < 1 ? elapsed * (1 - $0) / $0 : nil }
            let tail = " \(f.map { String(format: "%3d%%", Int($0 * 100)) } ?? "  ?%") \(duration(elapsed)) eta \(eta.map(duration) ?? "-")"
            let fixed = "  " + pad(r.type ?? "?", 9) + " " + pad(r.id, 18) + " " + pad(r.step ?? "?", 12) + " " + (s.hosts.isEmpty ? "" : pad(r.host ?? "?", 12) + " ")
            let barWidth = max(5, w - fixed.count - tail.count - 2)
            let filled = Int((f ?? 0) * Double(barWidth))
            lines.append(fit(fixed + "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: barWidth - filled) + "]" + tail, w))
        }
        if !s.hosts.isEmpty {
            lines.append("")
            lines.append(fit("HOSTS (\(s.hosts.filter { !$0.gone }.count) up, \(s.hosts.filter(\.gone).count) gone)", w))
            for h in s.hosts {
                let state = h.gone ? "GONE, last beat \(duration(h.ageSeconds)) ago" : "up, \(h.running)/\(h.workers) running"
                lines.append(fit("  \(pad(h.host, 20)) pid \(h.pid)  \(state)" + (h.jobs.isEmpty ? "" : ": " + h.jobs.joined(separator: " ")), w))
            }
        }
        lines.append("")
        let failures = inspector.list(states: [.failed], label: nil, tenant: nil, limit: 5, cursor: nil).items
        lines.append(fit("LATEST FAILURES", w))
        if failures.isEmpty { lines.append("  none") }
        for f in failures {
            let msg = inspector.errorRecord(f.id)?.message ?? ""
            lines.append(fit("  \(f.time.dropFirst(11).prefix(8)) \(pad(f.id, 18)) \(pad(f.code ?? "?", 17)) \(msg)", w))
        }
        lines.append("")
        lines.append(fit("Ctrl-C quits  |  mediaspool show ID  |  mediaspool replay ID", w))
        return lines
    }

    // Both escape control characters first: ids and messages come from the spool.
    private func fit(_ s: String, _ w: Int) -> String {
        let s = Escaping.terminalSafe(s)
        return s.count <= w ? s : String(s.prefix(w - 1)) + "…"
    }
    private func pad(_ s: String, _ n: Int) -> String {
        let s = Escaping.terminalSafe(s)
        return s.count >= n ? String(s.prefix(n)) : s + String(repeating: " ", count: n - s.count)
    }
    private func duration(_ t: Double) -> String {
        let s = Int(t.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
