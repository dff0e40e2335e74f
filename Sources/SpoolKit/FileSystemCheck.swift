import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

// Which file systems may hold a spool shared by several hosts
// (docs/scale-out.md "Which file systems").

/// The file system a spool is on, as far as sharing it between hosts goes
/// (docs/scale-out.md "Which file systems"): statfs(2)'s f_type, and for a
/// FUSE mount the type /proc/self/mountinfo gives it (`fuse.ceph-fuse`).
public struct SpoolFileSystem: Sendable, Equatable {
    public enum Verdict: String, Sendable {
        /// Measured to fence a cut-off host (CephFS).
        case fences
        /// Measured not to: refused in shared mode (GlusterFS, JuiceFS).
        case doesNotFence
        /// Not tried here (NFS, other network or FUSE file systems).
        case untested
        /// A local file system: only one host can see it.
        case local
    }
    public var name: String
    public var verdict: Verdict

    public static let cephMagic: UInt64 = 0x00C3_6400
    public static let fuseMagic: UInt64 = 0x6573_5546
    public static let nfsMagic: UInt64 = 0x6969
    static let local: [UInt64: String] = [0xEF53: "ext4", 0x5846_5342: "xfs", 0x0102_1994: "tmpfs", 0x9123_683E: "btrfs",
                                          0x2FC1_2FC1: "zfs", 0x794C_7630: "overlayfs", 0xF2F5_2010: "f2fs"]

    /// A FUSE mount whose type /proc/self/mountinfo did not give.
    static let unknownFUSE = "a FUSE file system of unknown type (not found in /proc/self/mountinfo)"

    /// The classification: a pure function of the magic number and, for
    /// FUSE, the mount's type in mountinfo (nil when it was not found).
    public static func classify(fType: UInt64, mountType: String?) -> SpoolFileSystem {
        switch fType {
        case cephMagic: return SpoolFileSystem(name: "cephfs (kernel client)", verdict: .fences)
        case nfsMagic: return SpoolFileSystem(name: "nfs", verdict: .untested)
        case fuseMagic:
            switch mountType {
            case "fuse.ceph-fuse", "fuse.ceph": return SpoolFileSystem(name: "cephfs (ceph-fuse)", verdict: .fences)
            case "fuse.glusterfs": return SpoolFileSystem(name: "glusterfs", verdict: .doesNotFence)
            case "fuse.juicefs": return SpoolFileSystem(name: "juicefs", verdict: .doesNotFence)
            // A FUSE mount whose type could not be read (no /proc, hidepid)
            // might be GlusterFS or JuiceFS: refused like them, not waved through.
            case nil: return SpoolFileSystem(name: unknownFUSE, verdict: .doesNotFence)
            case let type?: return SpoolFileSystem(name: type, verdict: .untested)
            }
        default:
            if let name = local[fType] { return SpoolFileSystem(name: name, verdict: .local) }
            return SpoolFileSystem(name: mountType ?? "unknown (f_type 0x\(String(fType, radix: 16)))", verdict: .untested)
        }
    }

    /// The type (third field after " - ") of the mount holding `path` in a
    /// /proc/self/mountinfo text: the longest mount point that contains it,
    /// the last listed of equal ones (a mount over another).
    public static func mountType(mountinfo: String, path: String) -> String? {
        var best: (length: Int, type: String)?
        for line in mountinfo.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count >= 2 else { continue }
            let left = halves[0].split(separator: " "), right = halves[1].split(separator: " ")
            guard left.count >= 5, let type = right.first else { continue }
            let point = unescape(String(left[4]))
            let inside = point == "/" || path == point || path.hasPrefix(point + "/")
            guard inside, point.utf8.count >= best?.length ?? -1 else { continue }
            best = (point.utf8.count, String(type))
        }
        return best?.type
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo.
    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = [], u = Array(s.utf8), i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: "\\"), i + 3 < u.count, let v = UInt8(String(decoding: u[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v); i += 4
            } else { out.append(u[i]); i += 1 }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The file system of `path`, read from the kernel.
    public static func detect(_ path: FilePath) throws(SpoolError) -> SpoolFileSystem {
        let magic: UInt64
        do { magic = try Sys.fileSystemType(path) } catch { throw SpoolError.io(error, "statfs of \(path)", step: "start") }
        let real = Sys.realpath(path)?.string ?? path.string
        let info = (try? Sys.readFile("/proc/self/mountinfo", limit: 4 << 20, followSymlinks: true)) ?? nil
        return classify(fType: magic, mountType: info.flatMap { mountType(mountinfo: String(decoding: $0, as: UTF8.self), path: real) })
    }

    /// Whether the daemon may start in shared mode on this file system:
    /// throws for one known not to fence (unless the operator accepts the
    /// risk), else returns the warning to log, if any.
    public func checkShared(allowUnfenced: Bool, spool: FilePath) throws(SpoolError) -> String? {
        switch verdict {
        case .fences: return nil
        case .doesNotFence:
            let fences = name == Self.unknownFUSE ? "may not fence (GlusterFS and JuiceFS are FUSE file systems)" : "does not fence"
            let risk = "\(name) \(fences): two hosts can both win one claim's rename, and a host cut off and back publishes jobs another host has taken over"
            if allowUnfenced { return "shared mode on \(spool) (\(name)) allowed by allowUnfencedShared: \(risk); jobs may run twice" }
            throw SpoolError(.internal, "refusing to run in shared mode: the spool \(spool) is on \(name), and \(risk). Move the spool to CephFS (docs/scale-out.md), or run one host only (hosts: \"single\"), or accept the risk with --allow-unfenced-shared (config allowUnfencedShared: true)", step: "start")
        case .untested:
            return "shared mode on \(spool): \(name) has not been tested for several hosts here: its locks, renames and fencing across clients are unknown (docs/scale-out.md)"
        case .local:
            return "shared mode on \(spool): \(name) is a local file system: only one host can see this spool"
        }
    }
}
