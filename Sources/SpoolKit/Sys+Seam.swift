import Synchronization
import SystemPackage

extension Sys {
    /// The calls a test can make fail.
    public enum Call: String, Sendable, CaseIterable { case open, write, fsync, rename, unlink, lock }

    /// A test seam in the manner of swift-system's mocking: a test names a
    /// call (and, for calls with a path, a part of the path) and the errno
    /// it returns, so the ENOSPC and EIO paths of the spool run without
    /// root, a small tmpfs or a failing disk. The real call is not made.
    /// Compiled into debug builds only; release builds have no table and
    /// no check.
    public enum Seam {
        public struct Rule: Sendable {
            public var call: Call, errno: Errno, pathContains: String?, times: Int
        }
        #if DEBUG
        static let rules = Mutex<[Rule]>([])
        /// Whether any rule is set: the common case costs one atomic load.
        static let armed = Atomic<Bool>(false)
        #endif

        /// `call` fails with `errno` the next `times` times (on paths
        /// containing `pathContains`, when given; fd calls match any).
        /// Errno 0 for a rename: it answers success without renaming, as a
        /// shared file system that loses a race may (`Sys.rename` only).
        public static func fail(_ call: Call, with errno: Errno, pathContains: String? = nil, times: Int = .max) {
            #if DEBUG
            rules.withLock { $0.append(Rule(call: call, errno: errno, pathContains: pathContains, times: times)) }
            armed.store(true, ordering: .releasing)
            #endif
        }

        /// Every call real again.
        public static func reset() {
            #if DEBUG
            rules.withLock { $0.removeAll() }
            armed.store(false, ordering: .releasing)
            #endif
        }

        /// Throws the errno of a matching rule; true for a rule of errno 0
        /// (the caller skips the real call and answers success).
        @inline(__always) @discardableResult
        static func check(_ call: Call, _ path: FilePath? = nil) throws(Errno) -> Bool {
            #if DEBUG
            guard armed.load(ordering: .acquiring) else { return false }
            let hit: Errno? = rules.withLock { rules in
                guard let i = rules.firstIndex(where: { r in
                    r.call == call && r.times > 0 && (r.pathContains == nil || path == nil || path.map { $0.string.contains(r.pathContains!) } == true)
                }) else { return nil }
                rules[i].times -= 1
                return rules[i].errno
            }
            if let hit, hit.rawValue == 0 { return true }
            if let hit { throw hit }
            #endif
            return false
        }
    }
}
