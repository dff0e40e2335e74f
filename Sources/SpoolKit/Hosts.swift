import Foundation
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

// Several hosts on one spool (docs/scale-out.md): config `hosts: "shared"`.
// Each daemon has a host id, written into every record, event, journal
// entry and progress file; in shared mode it beats `hosts/<host-id>.json`
// every few seconds, and refuses to start on a file system known not to
// fence (Fencing.swift).

/// How many hosts use the spool (config `hosts`).
public enum HostMode: String, Sendable, Codable, CaseIterable {
    /// One host (any number of daemons on it): inotify sees every drop.
    case single
    /// Several hosts over a shared file system: a full rescan every second
    /// by default (inotify does not see another client's renames), claims in
    /// a random order at the head of the queue, heartbeats in hosts/.
    case shared
}

/// Host ids: 1-64 bytes of a-z 0-9 . -, starting with a letter or a digit
/// (so `hosts/<id>.json` is never a dot file, which are temporaries).
public enum HostID {
    public static let maxBytes = 64

    public static func isValid(_ id: String) -> Bool {
        let u = Array(id.utf8)
        guard (1...maxBytes).contains(u.count) else { return false }
        for (i, c) in u.enumerated() {
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): continue
            case UInt8(ascii: "."), UInt8(ascii: "-"): if i == 0 { return false }
            default: return false
            }
        }
        return true
    }

    /// A host name made into a host id: lower case, every character outside
    /// a-z 0-9 . - replaced by `-`, leading dots and dashes dropped, at most
    /// 64 bytes; nil when nothing is left.
    public static func sanitise(_ name: String) -> String? {
        var out = ""
        for scalar in name.lowercased().unicodeScalars {
            switch scalar {
            case "a"..."z", "0"..."9", ".", "-": out.unicodeScalars.append(scalar)
            default: out += "-"
            }
        }
        while let f = out.first, f == "." || f == "-" { out.removeFirst() }
        out = String(out.prefix(maxBytes))
        return isValid(out) ? out : nil
    }

    /// This machine's: its host name, sanitised ("localhost" when it has none).
    public static var machine: String { Sys.hostName().flatMap(sanitise) ?? "localhost" }

    private static let chosen = Mutex<(id: String?, pinned: Bool)>((nil, false))
    /// The host id this process writes into records, events and progress
    /// files: set from the configuration at start (`--host-id`, `hostId`),
    /// else the machine's. Once pinned (`pin`), setting it does nothing.
    public static var current: String {
        get { chosen.withLock { $0.id } ?? machine }
        set { chosen.withLock { if !$0.pinned { $0.id = newValue } } }
    }

    /// Fixes the host id for the rest of the process: the daemon's, at
    /// start, so a reload (which reads the configuration and the host name
    /// again) cannot change what its records say.
    public static func pin(_ id: String) {
        chosen.withLock { $0 = (id, true) }
    }
}
