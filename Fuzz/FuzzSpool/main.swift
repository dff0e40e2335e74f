// libFuzzer target for the claim, finish and recovery code (issue 13):
// the input bytes describe a spool's contents (entries of every type, with
// names of any bytes, in every spool directory), then the queue is scanned,
// every entry claimed and finished as a worker would, and recovery and the
// sweep's clean-up run over what is left.
// The properties: never a crash and never a hang (every read is bounded and
// non-blocking); afterwards inbox/, retry/ and processing/ hold no job
// (everything claimable ended in done/ or failed/); the canary outside the
// spool, the target of planted links, is unchanged.
@testable import SpoolKit
import CLibFuzzer
import Logging
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

private let base = FilePath("/tmp/mediaspool-fuzz-spool-\(getpid())")
private let canary = base.appending("canary")

private func removeTree(_ p: FilePath) {
    var st = stat()
    guard lstat(p.string, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        try? Sys.forEachRawEntry(in: p) { name, raw in
            if let c = raw.flatMap(SpoolName.component) ?? FilePath.Component(name) { removeTree(p.appending(c)) }
        }
        rmdir(p.string)
    } else {
        _ = p.withPlatformString { unlink($0) }
    }
}

private struct Reader {
    let bytes: [UInt8]; var at = 0
    mutating func byte() -> UInt8? { guard at < bytes.count else { return nil }; defer { at += 1 }; return bytes[at] }
    mutating func take(_ n: Int) -> [UInt8] { let e = min(bytes.count, at + n); defer { at = e }; return Array(bytes[at..<e]) }
}

// Also exported under libFuzzer's name: its runtime's own main() refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzSpool(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    removeTree(base)
    mkdir(base.string, 0o755)
    let fd = open(canary.string, O_CREAT | O_WRONLY, 0o644); write(fd, "canary", 6); close(fd)
    var config = Config()
    config.spool = base.appending("spool")
    let layout = config.layout
    try! layout.create()
    let dirs = [layout.inbox, layout.retry, layout.processing, layout.done, layout.failed, layout.state, layout.locks, layout.tmp]

    // The spool's contents: [dir, kind, name length, name..., body length, body...]*
    var r = Reader(bytes: Array(UnsafeBufferPointer(start: data, count: size)))
    var planted = 0
    while planted < 24, let d = r.byte(), let kind = r.byte(), let nl = r.byte() {
        var name = r.take(Int(nl % 48) + 1).map { $0 == 0 || $0 == UInt8(ascii: "/") ? UInt8(ascii: "_") : $0 }
        if kind & 0x80 != 0 { name += Array(".json".utf8) }          // mostly manifest-like names
        guard let c = SpoolName.component(name) else { continue }
        let path = dirs[Int(d) % dirs.count].appending(c)
        let body = r.take(Int(r.byte() ?? 0) * 4)
        switch kind % 7 {
        case 0, 1:
            // Never blocking on (or following) what this input planted
            // before under the same name: the harness must not hang itself.
            let f = path.withPlatformString { open($0, O_CREAT | O_WRONLY | O_TRUNC | O_NONBLOCK | O_NOFOLLOW, 0o644) }
            if f >= 0 { _ = body.withUnsafeBytes { write(f, $0.baseAddress, $0.count) }; close(f) }
        case 2: _ = path.withPlatformString { mkfifo($0, 0o644) }
        case 3: _ = path.withPlatformString { mkdir($0, 0o755) }
        case 4: _ = path.withPlatformString { symlink(canary.string, $0) }
        case 5: _ = path.withPlatformString { symlink("/dev/zero", $0) }
        default:
            let f = path.withPlatformString { open($0, O_CREAT | O_WRONLY | O_NONBLOCK | O_NOFOLLOW, 0o644) }
            if f >= 0 { ftruncate(f, 1 << 40); close(f) }
        }
        planted += 1
    }

    // Recovery first (as at a daemon's start), then claim everything.
    let logger = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }
    _ = Recovery(config: config, logger: logger).run()
    // maxDelay 0: every entry is ready at once (no backoff waits in a fuzz run).
    let queue = JobQueue(maxDelay: 0)
    let scanner = Scanner(layout: layout, queue: queue)
    let claimer = Claimer(layout: layout), finisher = Finisher(layout: layout)
    for _ in 0..<4 {
        scanner.fullScan()
        while queue.count > 0, let entry = queue.next() {
            defer { queue.finished(entry) }
            guard case .claimed(let job) = (try? claimer.claim(entry)) ?? .gone else { continue }
            if let err = job.unreadable {
                _ = try? finisher.fail(id: job.id, state: job.state, manifest: nil, error: err)
            } else {
                do { let m = try Manifest.parse(job.manifestBytes, fileID: job.id); _ = try? finisher.complete(job, manifest: m, outcome: JobOutcome()) }
                catch { _ = try? finisher.fail(id: job.id, state: job.state, manifest: nil, error: error) }
            }
            job.lock.release()
        }
        _ = Recovery(config: config, logger: logger).run()
    }

    // Nothing claimable is left waiting or running.
    for dir in [layout.inbox, layout.retry, layout.processing] {
        try? Sys.forEachRawEntry(in: dir) { name, _ in
            precondition(JobID.fromManifestName(name) == nil, "\(dir) still holds \(name)")
        }
    }
    var st = stat()
    precondition(stat(canary.string, &st) == 0 && st.st_size == 6, "the canary outside the spool changed")
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzSpool(data, size) }
removeTree(base)
exit(status)
