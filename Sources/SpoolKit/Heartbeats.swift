import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

// Heartbeats of shared mode's daemons (docs/scale-out.md).

/// `hosts/<host-id>.json`: a daemon's heartbeat in shared mode. Advisory
/// (what `status` and `watch` show), so written atomically but not fsynced.
public struct HostBeat: Codable, Sendable, Equatable {
    public var host: String
    public var pid: Int32
    public var startedAt: String
    public var beatAt: String
    public var workers: Int
    /// Ids of the jobs it runs (their count is its load).
    public var jobs: [String]

    public init(host: String, pid: Int32, startedAt: String, beatAt: String, workers: Int, jobs: [String]) {
        self.host = host; self.pid = pid; self.startedAt = startedAt; self.beatAt = beatAt; self.workers = workers; self.jobs = jobs
    }
}

/// One host's daemon as `status` and `watch` show it.
public struct HostStatus: Codable, Sendable, Equatable {
    public var host: String
    public var pid: Int32
    public var startedAt: String
    public var beatAt: String
    public var ageSeconds: Double
    /// Its last beat is older than `hostTimeoutSeconds`: it stopped without
    /// removing its file (killed, crashed, cut off).
    public var gone: Bool
    public var workers: Int
    public var running: Int
    public var jobs: [String]
}

public enum Heartbeats {
    /// A heartbeat file larger than this is passed over.
    public static let maxBytes = 64 * 1024
    /// At most this many files of hosts/ are read.
    public static let maxHosts = 256
    /// At most this many job ids of one beat are kept.
    public static let maxJobs = 1024

    /// Writes the beat through a fresh temporary name and a rename, not fsynced.
    public static func write(_ beat: HostBeat, _ layout: SpoolLayout) throws(SpoolError) {
        // One lstat per beat: made by the first beat, and never followed
        // through a symlink put in its place.
        if !isDirectory(layout.hosts) { try? Sys.mkdir(layout.hosts, permissions: [.ownerReadWriteExecute, .groupReadExecute, .otherReadExecute]) }
        guard isDirectory(layout.hosts) else {
            throw SpoolError(.ioError, "\(layout.hosts) is not a directory (a symlink or a file someone put there): the heartbeat is not written; remove it and the daemon makes the directory again", step: "heartbeat")
        }
        try Durable.write(RecordCoding.encode(beat), to: layout.heartbeat(beat.host), step: "heartbeat",
                          permissions: [.ownerReadWrite, .groupRead, .otherRead], sync: false)
    }

    /// Removes the host's file (a clean stop), not fsynced either.
    public static func remove(_ host: String, _ layout: SpoolLayout) {
        if isDirectory(layout.hosts) { try? Sys.unlink(layout.heartbeat(host)) }
    }

    /// hosts/ itself, not through a symlink: a member of the spool's group
    /// could point it elsewhere, and the daemon would write there.
    static func isDirectory(_ dir: FilePath) -> Bool { (try? Sys.stat(dir, followSymlinks: false))?.isDirectory ?? false }

    /// Every host's latest beat, by host id. Every file is hostile: a name
    /// that is no host id, a symlink, anything but a regular file, a file
    /// over 64 KiB, one that does not decode or names another host, or a
    /// beat without a readable time, is passed over.
    public static func read(_ layout: SpoolLayout, timeout: Double, now: Date = Date()) -> [HostStatus] {
        guard isDirectory(layout.hosts) else { return [] }
        // At most maxHosts × 4 names are listed: a directory flooded with
        // files costs a bounded read.
        struct Enough: Error {}
        var names: [String] = []
        do {
            try Sys.forEachEntry(in: layout.hosts) { name in
                guard SpoolName.hostOfHeartbeat(name) != nil else { return }  // temporaries and junk do not crowd out hosts
                names.append(name)
                if names.count >= maxHosts * 4 { throw Enough() }
            }
        }
        catch is Enough {} catch { return [] }
        var out: [HostStatus] = []
        for name in names.sorted() where out.count < maxHosts {
            guard let host = SpoolName.hostOfHeartbeat(name), case .success(let bytes) = Sys.readRegularFile(layout.heartbeat(host), limit: maxBytes),
                  let beat = RecordCoding.decode(HostBeat.self, bytes), beat.host == host,
                  let at = RFC3339.date(beat.beatAt) else { continue }
            let jobs = Array(beat.jobs.filter(JobID.isValid).prefix(maxJobs))
            let age = max(0, now.timeIntervalSince(at))
            out.append(HostStatus(host: host, pid: beat.pid, startedAt: beat.startedAt, beatAt: beat.beatAt, ageSeconds: (age * 10).rounded() / 10,
                                  gone: age > timeout, workers: max(0, beat.workers), running: jobs.count, jobs: jobs))
        }
        return out
    }
}
