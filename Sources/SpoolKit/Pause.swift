import Foundation
import SystemPackage

/// A paused queue (mediaspool's extension of the v1 protocol,
/// docs/spool-layout.md): `control/pause.json` in the spool says what may
/// not start. Running jobs go on. The file is the state: it survives a
/// restart, every daemon on the spool follows it (inotify on control/,
/// and at every rescan), and `mediaspool pause`/`resume` only write it.
public struct PauseState: Codable, Equatable, Sendable {
    /// Nothing starts.
    public var all = false
    /// Jobs of these tenants do not start.
    public var tenants: [String] = []
    /// Jobs of these types do not start.
    public var types: [String] = []

    public init(all: Bool = false, tenants: [String] = [], types: [String] = []) {
        self.all = all; self.tenants = tenants; self.types = types
    }

    public var isEmpty: Bool { !all && tenants.isEmpty && types.isEmpty }

    /// Whether a job of this tenant ("" for none) and type may not start.
    public func holds(tenant: String, type: String) -> Bool {
        all || (!tenant.isEmpty && tenants.contains(tenant)) || (!type.isEmpty && types.contains(type))
    }

    /// In words, for logs, STATUS= and `status`.
    public var summary: String {
        if all { return "paused" }
        var parts: [String] = []
        if !tenants.isEmpty { parts.append("tenants " + tenants.joined(separator: ", ")) }
        if !types.isEmpty { parts.append("types " + types.joined(separator: ", ")) }
        return parts.isEmpty ? "running" : "paused for " + parts.joined(separator: "; ")
    }

    /// The spool's pause file; none (or an unreadable one) is no pause.
    public static func read(_ layout: SpoolLayout) -> PauseState {
        (try? Sys.readFile(layout.pauseFile)).flatMap { $0 }.flatMap { RecordCoding.decode(PauseState.self, $0) } ?? PauseState()
    }

    /// Writes it durably (or removes the file when nothing is paused).
    public func write(_ layout: SpoolLayout) throws(SpoolError) {
        do { try Sys.mkdir(layout.control) } catch { throw SpoolError.io(error, "creating \(layout.control)") }
        if isEmpty {
            return try Durable.remove(layout.pauseFile, step: "resume")
        }
        var sorted = self
        sorted.tenants = Array(Set(tenants)).sorted()
        sorted.types = Array(Set(types)).sorted()
        try Durable.write(RecordCoding.encode(sorted), to: layout.pauseFile, step: "pause")
    }
}
