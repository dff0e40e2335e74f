import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Names that come from the spool are untrusted bytes: anyone in the
/// producers' group can rename anything into inbox/. This file keeps the
/// rules for turning such a name into something safe to store, log and print.
public enum SpoolName {
    /// The name under which an entry whose name is not a valid id is kept in
    /// failed/ (with `<that>.error.json` beside it): `invalid~` and a hash of
    /// the raw name bytes. `~` is not allowed in ids, so it never collides
    /// with a job; the original name is in the record's `id` field.
    public static func forInvalid(_ raw: [UInt8]) -> String {
        // FNV-1a, 64 bits: a stable short name, not a security boundary
        // (a collision only picks the next free `~N` name).
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in raw { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return "invalid~" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The base name (without `.json`) of a kept manifest in failed/ that
    /// must not replace an earlier one: `base`, then `base~2`, `base~3`…
    public static func alternative(_ base: String, _ n: Int) -> String { n <= 1 ? base : "\(base)~\(n)" }

    /// The temporary file of `name` while it is written: `.NAME.tmp-PID-RAND`,
    /// in the directory it will be renamed in (the spool's files, outputs,
    /// the progress file and the index alike). Dot-named, so no scan takes it
    /// for a job; the writer's pid tells recovery when it is abandoned.
    public static func temporary(for name: String) -> String {
        ".\(name).tmp-\(Sys.processID)-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Whether `name` is such a temporary file.
    public static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(".") && name.contains(".tmp-")
    }

    /// Whether `name` is a temporary file of `final` (`.FINAL.tmp-PID-RAND`).
    public static func isTemporary(_ name: String, of final: String) -> Bool {
        name.hasPrefix("." + final + ".tmp-")
    }

    /// A host's heartbeat file name in hosts/: `<host-id>.json`.
    public static func heartbeat(_ host: String) -> String { host + ".json" }

    /// The host id of a heartbeat file name, nil when the name is none
    /// (a temporary, another suffix, no valid host id).
    public static func hostOfHeartbeat(_ name: String) -> String? {
        guard name.hasSuffix(".json") else { return nil }
        let host = String(name.dropLast(5))
        return HostID.isValid(host) ? host : nil
    }

    /// Whether the process that wrote a temporary file still runs (its pid
    /// is in the name); false for any other name.
    public static func isWriterAlive(ofTemporary name: String) -> Bool {
        guard isTemporary(name), let r = name.range(of: ".tmp-", options: .backwards) else { return false }
        let pid = name[r.upperBound...].prefix { $0.isNumber }
        return Int32(pid).map(Sys.isProcessAlive) ?? false
    }

    /// The separator of a side file's name, `<id>+<name>` in done/: no job
    /// id, and so no manifest or record name, holds a `+`.
    static let sideSeparator = "+"

    /// A side file's `<name>`: 1-64 bytes of a-z 0-9 . -, not starting with a dot.
    public static func isSideFileName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && !name.hasPrefix(".")
            && name.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// The job id and side-file name of a done/ entry named `<id>+<name>`;
    /// nil for any other name (every manifest and record among them).
    public static func parseSideFile(_ entry: String) -> (id: String, name: String)? {
        guard let plus = entry.firstIndex(of: "+") else { return nil }
        let id = String(entry[..<plus]), name = String(entry[entry.index(after: plus)...])
        guard JobID.isValid(id), isSideFileName(name) else { return nil }
        return (id, name)
    }

    /// Where something planted at one of the spool's fixed names (a
    /// directory where a record or state file goes, a FIFO where a lock
    /// file goes) is moved: `.aside-NAME-RAND` in the same directory, a dot
    /// name that no scan lists and `mediaspool sweep` leaves for a person.
    public static func aside(_ path: FilePath) -> FilePath {
        path.removingLastComponent().appending(".aside-\(path.lastComponent?.string ?? "x")-\(UInt32.random(in: 0...UInt32.max))")
    }

    /// A file system component from raw bytes (any bytes but NUL and '/').
    public static func component(_ raw: [UInt8]) -> FilePath.Component? {
        guard !raw.isEmpty, !raw.contains(0), !raw.contains(UInt8(ascii: "/")) else { return nil }
        return (raw.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer { FilePath.Component(platformString: $0.baseAddress!) }
    }
}

/// Text from the spool (names, manifests, records, messages) shown to a
/// person: control characters are escaped, so a name with ESC sequences
/// cannot drive the terminal.
public enum Escaping {
    /// `s` with C0 controls, DEL and C1 controls written as `\u{XX}` (and
    /// backslashes doubled, so the escape cannot be forged).
    public static func terminalSafe(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { isControl($0) || $0 == "\\" }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            if u == "\\" { out += "\\\\" }
            else if isControl(u) { out += "\\u{" + String(u.value, radix: 16) + "}" }
            else { out.unicodeScalars.append(u) }
        }
        return out
    }

    /// JSON text for a terminal: JSONEncoder escapes C0 controls but leaves
    /// DEL, the C1 controls (U+0080–U+009F, which some terminals obey) and
    /// U+2028/U+2029 raw; here they become `\u` escapes, which decode to
    /// the same string. (Outside strings JSON is ASCII, so each byte
    /// sequence replaced is inside one.)
    public static func jsonTerminalSafe(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(where: { $0 == 0x7F || $0 == 0xC2 || $0 == 0xE2 }) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        func escape(_ v: Int) {
            let hex = String(v, radix: 16)
            out += Array(("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
        }
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x7F { escape(0x7F); i += 1; continue }
            if b == 0xC2, i + 1 < bytes.count, (0x80...0x9F).contains(bytes[i + 1]) { escape(Int(bytes[i + 1])); i += 2; continue }
            if b == 0xE2, i + 2 < bytes.count, bytes[i + 1] == 0x80, bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9 {
                escape(0x2028 + Int(bytes[i + 2] - 0xA8)); i += 3; continue
            }
            out.append(b); i += 1
        }
        return out
    }

    /// `"s"`, terminal-safe, for messages.
    public static func quoted(_ s: String) -> String { "\"" + terminalSafe(s) + "\"" }

    static func isControl(_ u: Unicode.Scalar) -> Bool {
        u.value < 0x20 || (0x7F...0x9F).contains(u.value) || u.value == 0x2028 || u.value == 0x2029
    }
}

extension SpoolError {
    /// The file this error is about disappeared (another claimer took it).
    public var isVanished: Bool { (cause as? Errno) == .noSuchFileOrDirectory }
}
