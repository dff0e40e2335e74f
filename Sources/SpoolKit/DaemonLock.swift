import Foundation
import Logging
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// `locks/.daemon`: every running daemon holds a shared flock on it (what
/// `mediaspool status` tests), and `locks/.daemon.settings` records the
/// settings that change a job's outcome. Daemons on one spool must agree on
/// them, or the same manifest would succeed on one and fail on the other
/// (a relative input resolved against two different media roots).
///
///   alone (LOCK_EX|LOCK_NB succeeds): write the settings, then hold LOCK_SH;
///   others running: take LOCK_SH (waiting briefly for one that is writing),
///   read their settings, and refuse to start when they differ.
public enum DaemonLock {
    /// The settings two daemons on one spool must share.
    public struct Settings: Codable, Equatable, Sendable {
        public var mediaRoot: String
        public var allowRoots: [String]
        /// Per tenant: its media root, then its allowed roots.
        public var tenants: [String: [String]]?

        public init(_ c: Config) {
            // A path inside the spool is kept relative to it ("<spool>/media"):
            // the hosts of a shared spool mount it at different places
            // (/mnt/a/spool, /srv/spool), and their default media root,
            // media/ in the spool, is one directory all the same.
            func name(_ p: FilePath) -> String { Self.name(p.lexicallyNormalized().string, spool: c.spool) }
            mediaRoot = name(c.effectiveMediaRoot)
            allowRoots = c.allowRoots.map(name).sorted()
            tenants = c.tenants.isEmpty ? nil : c.tenants.mapValues { [name($0.mediaRoot)] + $0.allowRoots.map(name).sorted() }
        }

        /// These settings with absolute paths under `spool` written as
        /// `<spool>/…`, as a daemon of an older version wrote them.
        public func relative(to spool: FilePath) -> Settings {
            func name(_ s: String) -> String { Self.name(s, spool: spool) }
            var out = self
            out.mediaRoot = name(mediaRoot)
            out.allowRoots = allowRoots.map(name).sorted()
            out.tenants = tenants?.mapValues { v in v.isEmpty ? v : [name(v[0])] + v.dropFirst().map(name).sorted() }
            return out
        }

        /// `path` as these settings name it: `<spool>/…` when it lies in
        /// the spool, else as it is.
        static func name(_ path: String, spool: FilePath) -> String {
            let p = FilePath(path), root = spool.lexicallyNormalized()
            guard p.isAbsolute, p.starts(with: root) else { return path }
            return FilePath("<spool>").pushing(FilePath(root: nil, p.components.dropFirst(root.components.count))).string
        }

        /// What differs, in words, or nil.
        func difference(from theirs: Settings) -> String? {
            var out: [String] = []
            if mediaRoot != theirs.mediaRoot { out.append("media root \(mediaRoot) here, \(theirs.mediaRoot) in the running daemon") }
            if allowRoots != theirs.allowRoots {
                out.append("allowed roots [\(allowRoots.joined(separator: ", "))] here, [\(theirs.allowRoots.joined(separator: ", "))] in the running daemon")
            }
            if tenants != theirs.tenants {
                let names = Set((tenants ?? [:]).keys).union((theirs.tenants ?? [:]).keys).filter { tenants?[$0] != theirs.tenants?[$0] }.sorted()
                out.append("the roots of tenant(s) \(names.joined(separator: ", ")) differ")
            }
            return out.isEmpty ? nil : out.joined(separator: "; ")
        }
    }

    /// Takes the daemon lock and checks the settings; the descriptor holds
    /// the lock until closed.
    public static func acquire(_ layout: SpoolLayout, settings: Settings, logger: Logger) throws(SpoolError) -> FileDescriptor {
        let path = layout.daemonLock, settingsPath = layout.daemonSettings
        let fd: FileDescriptor
        // Owner-only (0600, also when an older version made it wider): a
        // producer in the group cannot open it, so can neither hold it to
        // blind `status` or skip the settings check, nor keep the daemon
        // from starting. Never a blocking flock all the same.
        do {
            fd = try LockFile.open(path)
            Sys.chmod(fd, 0o600)
        } catch { throw SpoolError.io(error, "taking the daemon lock \(path)") }
        do {
            if try Sys.tryLock(fd, LOCK_EX) {
                try? Durable.write(RecordCoding.encode(settings), to: settingsPath, step: "start")
                _ = try Sys.tryLock(fd, LOCK_SH)
                return fd
            }
            // Another daemon runs (or is writing its settings: give it 2 s).
            var shared = false
            for _ in 0..<40 {
                if try Sys.tryLock(fd, LOCK_SH) { shared = true; break }
                Sys.sleep(milliseconds: 50)
            }
            guard shared else {
                logger.warning("locks/.daemon is held exclusively by another process: `mediaspool status` will report no daemon; find it with `fuser -v \(path)`", metadata: ["STEP": "start"])
                return fd
            }
            if let bytes = try? Sys.readFile(settingsPath), let theirs = RecordCoding.decode(Settings.self, bytes),
               var difference = settings.difference(from: theirs.relative(to: layout.root)) {
                // Paths inside the spool, shown where this daemon sees the spool.
                difference = difference.replacingOccurrences(of: "<spool>", with: layout.root.string)
                try? fd.close()
                throw SpoolError(.internal, "another daemon runs on \(layout.root) with other settings (\(difference)): daemons sharing a spool must resolve paths alike, or one manifest would succeed on one and fail on the other; give this one the same --media-root and --allow-root, or stop the other first", step: "start")
            }
            return fd
        } catch let e as SpoolError { throw e } catch {
            try? fd.close()
            throw SpoolError(.ioError, "locking \(path): \(error)", step: "start")
        }
    }
}
