import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A cache of the finished jobs (done/ and failed/) for `list`, so the
/// newest 50 of 100,000 come without a stat of every job. The files stay the
/// truth: the cache is `index/finished.tsv`, rebuilt from them whenever it is
/// missing, unreadable or of another version, and brought up to date
/// whenever done/ or failed/ changed since it was written (their directory
/// mtimes are in its header): names that left are dropped, new names are read
/// from their manifest and record. Delete it at any time. Writing it is best
/// effort (a read-only operator just gets no cache), and never fsynced.
///
/// Format: a header `#mediaspool-finished-index 1 <done mtime ns> <failed mtime ns>`,
/// then one line per job, newest first:
/// `<end time ns> TAB <d|f> TAB <id> TAB <type> TAB <code> TAB <attempts> TAB <tenant JSON> TAB <labels JSON>`.
struct FinishedIndex {
    let layout: SpoolLayout
    var path: FilePath { layout.finishedIndex }
    static let magic = "#mediaspool-finished-index 1"

    struct Entry {
        var t: Int64
        var state: Inspector.State
        var id: String
        var line: Substring   // the whole line, decoded lazily into an Item
    }

    /// Whether a header line is this version's and names the current
    /// mtimes of done/ and failed/ (nothing finished or left since).
    private func isFresh(_ head: Substring) -> Bool {
        let f = head.split(separator: " ")
        return f.count == 4 && Int64(f[2]) == dirMtime(layout.done) && Int64(f[3]) == dirMtime(layout.failed)
    }

    private func dirMtime(_ d: FilePath) -> Int64 { (try? Sys.stat(d))?.mtimeNanoseconds ?? -1 }

    /// A directory mtime to write in the header, or -2 (which no stat
    /// gives) when it was under 2 s old as it was read. Timestamps come from a coarse clock:
    /// a publish in the same tick as the change read before the listing
    /// leaves the mtime as it was, and the cache, missing that job, would
    /// look fresh until the next change. A recent mtime is not trusted; the
    /// next call brings the cache up to date again.
    /// A missing directory (-1) is written as it is; so is an mtime more
    /// than 2 s in the future (a clock stepped back, an NFS server ahead):
    /// distrusting it would rebuild the cache on every call until the clock
    /// caught up.
    static func settled(_ mtime: Int64, now: Int64) -> Int64 {
        mtime >= 0 && abs(now - mtime) < 2_000_000_000 ? -2 : mtime
    }

    /// Calls `body` with every finished job, newest first, until it returns
    /// false. When the cache is fresh only the lines asked for are parsed
    /// (the newest 50 of 100,000 cost 50 lines).
    func forEachEntry(only state: Inspector.State? = nil, _ body: (Entry) -> Bool) {
        // A line's state is the byte after its first tab: other states are
        // skipped without being parsed.
        let skipByte: UInt8? = state.map { $0 == .done ? UInt8(ascii: "f") : UInt8(ascii: "d") }
        let statTime = Int64(Date().timeIntervalSince1970 * 1e9)   // before the stats: errs toward distrust
        let mDone = dirMtime(layout.done), mFailed = dirMtime(layout.failed)
        let text = (try? Sys.readFile(path, limit: 1 << 30)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? ""
        var pos = text.startIndex
        func nextLine() -> Substring? {
            guard pos < text.endIndex else { return nil }
            let end = text.utf8[pos...].firstIndex(of: 10) ?? text.endIndex
            defer { pos = end < text.endIndex ? text.utf8.index(after: end) : end }
            return text[pos..<end]
        }
        var fresh = false, valid = false
        if let head = nextLine(), head.hasPrefix(Self.magic) {
            valid = true
            fresh = isFresh(head)
        }
        if fresh {
            while let l = nextLine() {
                if let skipByte, let tab = l.utf8.firstIndex(of: 9), l.utf8.index(after: tab) < l.utf8.endIndex,
                   l.utf8[l.utf8.index(after: tab)] == skipByte { continue }
                if let e = Self.parse(l), !body(e) { return }
            }
            return
        }
        var old: [Entry] = []
        if valid { while let l = nextLine() { if let e = Self.parse(l) { old.append(e) } } }
        let entries = update(old)
        writeIndex(entries, mDone: Self.settled(mDone, now: statTime), mFailed: Self.settled(mFailed, now: statTime))
        for e in entries where state == nil || e.state == state { if !body(e) { return } }
    }

    /// Finished jobs per state, and how many ended at or after `since` (ns):
    /// on a fresh cache only the first two fields of each line are read, as
    /// bytes (100,000 lines in a few milliseconds).
    func counts(since: Int64) -> (total: [Inspector.State: Int], recent: [Inspector.State: Int]) {
        var total = [Inspector.State.done: 0, .failed: 0], recent = [Inspector.State.done: 0, .failed: 0]
        let bytes = (try? Sys.readFile(path, limit: 1 << 30)).flatMap { $0 } ?? []
        let magic = Array(Self.magic.utf8)
        if bytes.starts(with: magic), let nl = bytes.firstIndex(of: 10) {
            if isFresh(Substring(String(decoding: bytes[..<nl], as: UTF8.self))) {
                var i = nl + 1
                while i < bytes.count {
                    var t: Int64 = 0
                    while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 { t = t &* 10 &+ Int64(bytes[i] - 48); i += 1 }
                    if i + 1 < bytes.count, bytes[i] == 9 {
                        let state: Inspector.State = bytes[i + 1] == UInt8(ascii: "d") ? .done : .failed
                        total[state, default: 0] += 1
                        if t >= since { recent[state, default: 0] += 1 }
                    }
                    while i < bytes.count, bytes[i] != 10 { i += 1 }
                    i += 1
                }
                return (total, recent)
            }
        }
        forEachEntry { e in
            total[e.state, default: 0] += 1
            if e.t >= since { recent[e.state, default: 0] += 1 }
            return true
        }
        return (total, recent)
    }

    static func parse(_ l: Substring) -> Entry? {
        let f = l.split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false)
        guard f.count == 4, let t = Int64(f[0]), let s = f[1].first else { return nil }
        return Entry(t: t, state: s == "d" ? .done : .failed, id: String(f[2]), line: l)
    }

    /// Brings `old` in line with the directories: names that left go, new
    /// ones are read from their files.
    private func update(_ old: [Entry]) -> [Entry] {
        var known: [String: Entry] = [:]
        for e in old { known[(e.state == .done ? "d" : "f") + e.id] = e }
        var out: [Entry] = []
        out.reserveCapacity(old.count)
        for state in [Inspector.State.done, .failed] {
            let dir = state == .done ? layout.done : layout.failed
            try? Sys.forEachEntry(in: dir) { name in
                guard let id = JobID.fromManifestName(name), !id.hasSuffix(".result"), !id.hasSuffix(".error"),
                      // A tab or newline in a name would forge index lines.
                      !id.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return }
                if let e = known[(state == .done ? "d" : "f") + id] { out.append(e); return }
                if let e = entry(id, state) { out.append(e) }
            }
        }
        out.sort { ($0.t, $0.id) > ($1.t, $1.id) }
        return out
    }

    /// One job's line, from its manifest and record.
    private func entry(_ id: String, _ state: Inspector.State) -> Entry? {
        let dir = state == .done ? layout.done : layout.failed
        let record = state == .done ? layout.result(id) : layout.errorRecord(id)
        guard let mst = try? Sys.stat(dir.appending(id + ".json"), followSymlinks: false) else { return nil }
        let ns = (try? Sys.stat(record))?.mtimeNanoseconds ?? mst.mtimeNanoseconds
        let m = (try? Sys.readFile(dir.appending(id + ".json"))).flatMap { $0 }.flatMap { try? Manifest.parse($0, fileID: nil) }
        var code = "", attempts = ""
        if let b = try? Sys.readFile(record) {
            if state == .failed, let r = RecordCoding.decode(ErrorRecord.self, b) { code = r.code; attempts = "\(r.attempts)" }
            if state == .done, let r = RecordCoding.decode(ResultRecord.self, b) { attempts = "\(r.attempts)" }
        }
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let tenant = m?.tenant.flatMap { try? enc.encode($0) }.map { String(decoding: $0, as: UTF8.self) } ?? "null"
        let labels = m.flatMap { try? enc.encode($0.labels) }.map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let line = "\(ns)\t\(state == .done ? "d" : "f")\t\(id)\t\(m?.type.rawValue ?? "")\t\(code)\t\(attempts)\t\(tenant)\t\(labels)"
        return Entry(t: ns, state: state, id: id, line: Substring(line))
    }

    private func writeIndex(_ entries: [Entry], mDone: Int64, mFailed: Int64) {
        var out = "\(Self.magic) \(mDone) \(mFailed)\n"
        out.reserveCapacity(entries.count * 120)
        for e in entries { out += e.line; out += "\n" }
        let dir = path.removingLastComponent()
        try? Sys.mkdirs(dir)
        // A fresh random name, created exclusively and never through a
        // symlink: a link planted in index/ cannot make a root `status`
        // write anywhere. (The index is a cache: when it cannot be written,
        // the listing is still right, only slower next time.)
        // 0644: the group (producers) may read it, not forge its lines.
        try? Durable.write(Array(out.utf8), to: path, step: "index", permissions: [.ownerReadWrite, .groupRead, .otherRead], sync: false)
    }

    /// The list item of an index line.
    static func item(_ e: Entry) -> Inspector.Item {
        let f = e.line.split(separator: "\t", omittingEmptySubsequences: false)
        var item = Inspector.Item(id: e.id, state: e.state, time: RFC3339.string(Date(timeIntervalSince1970: Double(e.t) / 1e9)))
        guard f.count == 8 else { return item }
        item.type = f[3].isEmpty ? nil : String(f[3])
        item.code = f[4].isEmpty ? nil : String(f[4])
        item.attempts = Int(f[5])
        item.tenant = try? JSONDecoder().decode(String?.self, from: Data(f[6].utf8))
        item.labels = try? JSONDecoder().decode([String: String].self, from: Data(f[7].utf8))
        return item
    }
}
