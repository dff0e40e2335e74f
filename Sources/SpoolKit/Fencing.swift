import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

// Fencing, a rule of the protocol (docs/spool-layout.md "Fencing").
//
// On a shared file system a host cut off from it for longer than its
// session timeout is fenced: the file system has given its locks to the
// other hosts, and refuses its later writes and renames. CephFS blocklists
// the client, whose calls then fail with ESHUTDOWN; a FUSE mount whose
// client died fails with ENOTCONN; a lock the file system can no longer
// take fails with EIO. From then on the jobs this host holds may be another
// host's: the daemon stops claiming at once, abandons its running jobs
// without publishing anything (no record, no output, no event), and exits
// with EX_TEMPFAIL (75) and a message saying to remount, for systemd
// (Restart=on-failure) and the operator to take over. Nothing is retried
// after such an error. On a local disk these errors do not happen.

extension SpoolError {
    /// Whether this error means the spool's file system fenced this host off.
    public var meansFencedOff: Bool {
        guard let e = cause as? Errno else { return false }
        return e.rawValue == ESHUTDOWN || e.rawValue == ENOTCONN || (e.rawValue == EIO && step == "lock")
    }
}

/// The daemon's exit status after it was fenced off (sysexits.h EX_TEMPFAIL).
public let fencedOffExitCode: Int32 = 75

/// What the operator reads when the daemon exits fenced off.
public func fencedOffMessage(_ error: SpoolError, spool: FilePath) -> String {
    "the spool's file system fenced this host off (\(error.message)): another host may own its jobs now, so nothing more is published "
        + "and the running jobs are abandoned to recovery. Check the network and the mount of \(spool) (remount it), then start the daemon again "
        + "(systemctl restart mediaspool)"
}

/// Whether this process has been fenced off: process-wide, as the fence
/// is (it is the host's session that was lost). Set by the engine; checked
/// before an output or the events log is published to, so a job still
/// running when the fence came publishes nothing.
public enum Fence {
    private static let raised = Atomic<Bool>(false)
    public static var isRaised: Bool { raised.load(ordering: .acquiring) }
    static func raise() { raised.store(true, ordering: .releasing) }

    /// Throws when fenced off: the step that was about to publish stops.
    static func check(_ step: String) throws(SpoolError) {
        guard isRaised else { return }
        throw SpoolError(.ioError, "not published: this host is fenced off from the spool", step: step, cause: Errno(rawValue: ESHUTDOWN))
    }
}
