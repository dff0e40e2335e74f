// libFuzzer target for the path checks of manifest-v1.md "Paths"
// (PathPolicy.openInput / openOutput) against a real directory tree with
// the traps a hostile producer would set: symlinks out of the media root, a
// FIFO, directories, an allowed extra root, a secret outside every root.
// The property: whatever the string, an accepted input is a regular file
// whose real path is under a root and never the secret; an accepted output
// is lexically under a root; nothing is ever created outside the roots; a
// refusal carries a path-check code. Never a crash and never a hang (the
// FIFO would block a plain open).
@testable import SpoolKit
import CLibFuzzer
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

private struct Sandbox {
    let base: FilePath, policy: PathPolicy, outside: FilePath, secret: FilePath

    init() {
        base = FilePath("/tmp/mediaspool-fuzz-paths-\(getpid())")
        let media = base.appending("media"), allowed = base.appending("allowed")
        outside = base.appending("outside")
        secret = outside.appending("secret.mp4")
        for d in [base, media, media.appending("sub"), media.appending("dir.mp4"), allowed, outside] {
            mkdir(d.string, 0o755)
        }
        for f in [media.appending("a.mp4"), media.appending("sub/b.mov"), allowed.appending("c.wav"), secret] {
            let fd = open(f.string, O_CREAT | O_WRONLY | O_TRUNC, 0o644); write(fd, "x", 1); close(fd)
        }
        symlink("../outside/secret.mp4", media.appending("out.mp4").string)
        symlink("../outside", media.appending("outdir").string)
        symlink("a.mp4", media.appending("in.mp4").string)
        symlink("loop.mp4", media.appending("loop.mp4").string)
        mkfifo(media.appending("fifo.mp4").string, 0o644)
        symlink(base.appending("media").string, base.appending("media-link").string)
        precondition(access(media.appending("sub/b.mov").string, R_OK) == 0, "the fuzz sandbox \(base) could not be made")
        policy = PathPolicy(mediaRoot: base.appending("media-link"), allowedRoots: [allowed])
    }

    var realRoots: [FilePath] { [base.appending("media"), base.appending("allowed")] }

    func outsideEntries() -> Int {
        guard let d = opendir(outside.string) else { return -1 }
        defer { closedir(d) }
        var n = 0
        while readdir(d) != nil { n += 1 }
        return n
    }
}

nonisolated(unsafe) private var sandbox: Sandbox?

// Also exported under libFuzzer's name: its runtime's own main() refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzPaths(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    if sandbox == nil { sandbox = Sandbox() }
    let s = sandbox!
    guard size >= 1 else { return 0 }
    let mode = data[0]
    let raw = String(decoding: UnsafeBufferPointer(start: data + 1, count: min(size - 1, 512)), as: UTF8.self)
    let before = s.outsideEntries()

    if mode & 1 == 0 {
        do {
            let f = try s.policy.openInput(raw)
            precondition(s.realRoots.contains { PathPolicy.isUnder(f.path, $0) }, "input \(raw) opened outside the roots: \(f.path)")
            precondition(f.path != s.secret)
            var st = stat()
            precondition(fstat(f.descriptor.rawValue, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG)
        } catch {
            precondition([.inputNotAllowed, .inputNotFound, .ioError].contains(error.code), "input \(raw): \(error)")
        }
    } else {
        do {
            let p = try s.policy.openOutput(raw).finalPath
            let roots = [s.policy.mediaRoot] + s.policy.allowedRoots
            precondition(roots.contains { PathPolicy.isUnder(p, $0) }, "output \(raw) accepted outside the roots: \(p)")
            let parent = Sys.realpath(p.removingLastComponent())
            precondition(parent.map { d in s.realRoots.contains { PathPolicy.isUnder(d, $0) } } ?? false,
                         "output \(raw) lands outside the roots: \(p) (directory \(parent?.string ?? "missing"))")
        } catch {
            precondition([.outputNotAllowed, .ioError].contains(error.code), "output \(raw): \(error)")
        }
    }
    precondition(s.outsideEntries() == before, "\(raw) created something outside the roots")
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzPaths(data, size) })
