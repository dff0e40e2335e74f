import CLinux
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The path checks of manifest-v1.md "Paths", done before any decoder sees a
/// path. An input is opened here, once, with openat2(RESOLVE_NO_SYMLINKS) on
/// its real path and checked with fstat; FFmpeg then reads that very inode
/// through /proc/self/fd/N, so a symlink swapped in after the check cannot
/// redirect it.
public struct PathPolicy: Sendable {
    public let mediaRoot: FilePath
    public let allowedRoots: [FilePath]
    /// This host's mount points of logical roots (config `localRoots`).
    /// Every check is on the logical path, as manifests and records name it;
    /// only the opening goes through `local(_:)`.
    public let localRoots: [FilePath: FilePath]

    public init(mediaRoot: FilePath, allowedRoots: [FilePath], localRoots: [FilePath: FilePath] = [:]) {
        self.mediaRoot = mediaRoot
        self.allowedRoots = allowedRoots
        self.localRoots = localRoots
    }

    /// Where a logical path is on this host: under the longest logical root
    /// with a local mount point that it lies under, that mount point instead.
    public func local(_ p: FilePath) -> FilePath {
        guard !localRoots.isEmpty,
              let (logical, local) = localRoots.filter({ PathPolicy.isUnder(p, $0.key) }).max(by: { $0.key.components.count < $1.key.components.count })
        else { return p }
        return local.pushing(FilePath(root: nil, p.components.dropFirst(logical.components.count)))
    }

    /// The real paths of every root that exists (roots may be symlinks themselves).
    var realRoots: [FilePath] {
        ([mediaRoot] + allowedRoots).compactMap { Sys.realpath(local($0.lexicallyNormalized())) }
    }

    static func isUnder(_ p: FilePath, _ root: FilePath) -> Bool {
        p == root || p.starts(with: root)
    }

    /// Lexical checks common to inputs and outputs: no URL or protocol
    /// syntax, no `..`, an absolute path only under an allowed root.
    func lexical(_ raw: String, notAllowed: ErrorCode, field: String) throws(SpoolError) -> FilePath {
        func refuse(_ why: String) -> SpoolError {
            SpoolError(notAllowed, "\(field) \"\(raw)\" \(why)", step: "check-paths")
        }
        if let colon = raw.firstIndex(of: ":") {
            let scheme = raw[..<colon]
            if !scheme.contains("/") {
                throw refuse("looks like a URL or FFmpeg protocol (\(scheme):); only plain file paths are allowed")
            }
        }
        if raw.contains("\0") { throw refuse("contains a NUL byte") }
        let p = FilePath(raw)
        if p.components.contains(where: { $0.kind == .parentDirectory }) {
            throw refuse("contains a '..' component; give a path inside the media root")
        }
        if p.isAbsolute {
            let roots = [mediaRoot] + allowedRoots
            guard roots.contains(where: { PathPolicy.isUnder(p.lexicallyNormalized(), $0.lexicallyNormalized()) }) else {
                throw refuse("is outside the allowed roots (\(roots.map(\.string).joined(separator: ", "))); use a path relative to the media root or add the directory with --allow-root")
            }
            return p.lexicallyNormalized()
        }
        return mediaRoot.pushing(p).lexicallyNormalized()
    }

    /// Checks an input path and opens it. Throws INPUT_NOT_ALLOWED,
    /// INPUT_NOT_FOUND or IO_ERROR.
    public func openInput(_ raw: String, field: String = "input") throws(SpoolError) -> InputFile {
        let p = local(try lexical(raw, notAllowed: .inputNotAllowed, field: field))
        let st: Glibc.stat
        do { st = try Sys.stat(p) } catch {
            if error == .noSuchFileOrDirectory || error == .notDirectory {
                throw SpoolError(.inputNotFound, "\(field) \"\(raw)\" does not exist (looked for \(p)); check the path, relative paths resolve against the media root \(mediaRoot)", step: "check-paths")
            }
            if error == .tooManySymbolicLinkLevels {
                throw SpoolError(.inputNotAllowed, "\(field) \"\(raw)\" is a symlink loop", step: "check-paths")
            }
            throw SpoolError.io(error, "\(field) \"\(raw)\"", step: "check-paths")
        }
        guard st.isRegular else {
            throw SpoolError(.inputNotAllowed, "\(field) \"\(raw)\" is not a regular file (a directory, FIFO, socket or device); only regular files are read", step: "check-paths")
        }
        guard let real = Sys.realpath(p), realRoots.contains(where: { PathPolicy.isUnder(real, $0) }) else {
            throw SpoolError(.inputNotAllowed, "\(field) \"\(raw)\" leaves the allowed roots through a symlink; copy the file into the media root instead", step: "check-paths")
        }
        let fd: FileDescriptor
        do { fd = try Sys.openNoSymlinks(real) } catch {
            if error == .tooManySymbolicLinkLevels || error == .improperLink {
                throw SpoolError(.inputNotAllowed, "\(field) \"\(raw)\" changed into a symlink while being checked", step: "check-paths")
            }
            throw SpoolError.io(error, "opening \(field) \"\(raw)\"", step: "check-paths")
        }
        do {
            let fst = try Sys.fstat(fd)
            guard fst.isRegular, fst.st_ino == st.st_ino, fst.st_dev == st.st_dev else {
                try? fd.close()
                throw SpoolError(.inputNotAllowed, "\(field) \"\(raw)\" changed while being checked; it must be a regular file", step: "check-paths")
            }
            return InputFile(path: real, descriptor: fd, size: Int64(fst.st_size))
        } catch let e as SpoolError { throw e } catch let e as Errno {
            try? fd.close()
            throw SpoolError.io(e, "\(field) \"\(raw)\"", step: "check-paths")
        } catch {
            try? fd.close()
            throw SpoolError(.internal, "\(error)")
        }
    }
}

/// An input that passed the checks, open for reading. Readers get `openedPath`
/// (/proc/self/fd/N: the inode that was checked). Closed on deinit.
public final class InputFile: Sendable {
    public let path: FilePath
    public let descriptor: FileDescriptor
    public let size: Int64
    /// The open descriptor as a path (/proc/self/fd/N): a reader that takes a
    /// path opens the inode that was checked, never the name again.
    public var openedPath: String { "/proc/self/fd/\(descriptor.rawValue)" }

    init(path: FilePath, descriptor: FileDescriptor, size: Int64) {
        self.path = path
        self.descriptor = descriptor
        self.size = size
    }

    deinit { try? descriptor.close() }
}
