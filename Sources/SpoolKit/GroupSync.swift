import Synchronization
import SystemPackage

// Group commit of the spool's fsyncs (issue 16).
//
// The rule every caller keeps (spool-v1.md "Durability"): after a rename
// that publishes or moves a job, the directory is fsynced before anything
// that depends on that rename is done. What makes the rename durable is an
// fsync of the directory that *begins after the rename returned*, whoever
// makes it: one fsync covers every rename in that directory made before it
// began. So the workers of one daemon share them:
//
//   caller                              GroupSync
//   rename(…)                           stamp = ++sequence
//   GroupSync.directory(dir)  ───────▶  an fsync of dir that began with
//                                       cover ≥ stamp succeeded?  return
//                                       one is running with cover ≥ stamp?
//                                         wait for it, return (or throw) its result
//                                       one is running, begun before us?
//                                         wait for it to end, then look again
//                                       none running: lead one: cover = sequence
//                                         now, fsync (outside the lock), publish
//                                         the result to everyone it covers
//
// A job's next step starts only after the fsync that covers its rename has
// completed, so every ordering docs/spool-layout.md promises after a power
// cut holds exactly as with one fsync per rename; the difference is that two
// workers renaming into done/ at once pay for one fsync of done/. The same
// holds for the events log's fdatasync (one file: the leader's fdatasync
// covers every line written before it began).
//
// At most one fsync per directory (or file) runs at a time in this process;
// an fsync that fails fails every caller it covered, and a caller it did not
// cover leads a fresh one. Waiters block their (OS) thread: the workers are
// threads, not tasks (Engine.swift). Written by hand because no library
// here batches fsyncs; the waiting is `Sys.Condition`.
public enum GroupSync {
    /// Makes the renames made in `dir` before this call durable: fsyncs it,
    /// or waits for an fsync of it that began after this call.
    public static func directory(_ dir: FilePath) throws(Errno) {
        try shared.sync(key: dir.string) { () throws(Errno) in
            Fault.slowSync()
            try Sys.fsyncDirectory(dir)
        }
    }

    /// Makes the data written to the file at `path` (through `fd` or any
    /// other descriptor of it) before this call durable: fdatasync, shared
    /// like the directories' fsyncs.
    public static func fileData(_ fd: FileDescriptor, path: FilePath) throws(Errno) {
        try shared.sync(key: "data:" + path.string) { () throws(Errno) in
            Fault.slowSync()
            try Sys.fdatasync(fd)
        }
    }

    static let shared = Batcher()

    /// The bookkeeping behind `directory` and `fileData`, by key; the test
    /// runs its own with a body of its choosing.
    final class Batcher: @unchecked Sendable {
        struct Group {
            var running = false
            /// The highest stamp a successful sync covered.
            var durable: UInt64 = 0
            /// The covers of failed syncs, newest last (at most 64 kept).
            var failures: [(cover: UInt64, error: Errno)] = []
            var waiters = 0
        }

        /// Stamps callers in the order they call; `@unchecked`: `groups` is
        /// only touched with `condition` locked.
        private let sequence = Atomic<UInt64>(0)
        private let condition = Sys.Condition()
        private var groups: [String: Group] = [:]
        /// How many syncs ran and how many calls they served.
        private var syncs = 0, calls = 0

        /// Waits until an execution of `body` that began after this call
        /// has succeeded (running it itself when none is under way), or
        /// throws the error of the one that covered it.
        func sync(key: String, _ body: () throws(Errno) -> Void) throws(Errno) {
            let stamp = sequence.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
            condition.lock()
            calls += 1
            var waited = false
            defer {
                if waited { groups[key]?.waiters -= 1 }
                dropIfIdle(key)
                condition.unlock()
            }
            while true {
                let g = groups[key, default: Group()]
                // Any sync that began after this call covers it; a failed one
                // fails it, even if a later one succeeded (after a failed
                // fsync the kernel may have dropped the dirty state).
                if let failed = g.failures.first(where: { $0.cover >= stamp }) { throw failed.error }
                if g.durable >= stamp { return }
                if g.running {
                    // Either it covers this call (wait for its result) or it
                    // began before (wait for it to end, then lead or join).
                    if !waited { waited = true; groups[key, default: Group()].waiters += 1 }
                    condition.wait()
                    continue
                }
                // Lead: every caller stamped so far is covered by this sync.
                let cover = sequence.load(ordering: .sequentiallyConsistent)
                groups[key, default: Group()].running = true
                syncs += 1
                condition.unlock()
                var failure: Errno?
                do { try body() } catch { failure = error }
                condition.lock()
                groups[key]!.running = false
                if let failure {
                    groups[key]!.failures.append((cover, failure))
                    if groups[key]!.failures.count > 64 { groups[key]!.failures.removeFirst() }
                } else {
                    groups[key]!.durable = max(groups[key]!.durable, cover)
                }
                condition.broadcast()
                if let failure { throw failure }
                return
            }
        }

        /// How many syncs ran and how many calls they served (for the tests).
        func counts() -> (syncs: Int, calls: Int) {
            condition.lock(); defer { condition.unlock() }
            return (syncs, calls)
        }

        /// Callers waiting on `key` (for the tests).
        func waiters(_ key: String) -> Int {
            condition.lock(); defer { condition.unlock() }
            return groups[key]?.waiters ?? 0
        }

        /// A directory nobody syncs or waits on is forgotten (output
        /// directories are many); the next caller simply leads a new sync.
        private func dropIfIdle(_ key: String) {
            if let g = groups[key], !g.running, g.waiters == 0 { groups[key] = nil }
        }
    }
}
