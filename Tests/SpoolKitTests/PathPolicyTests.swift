import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class PathPolicyTests: XCTestCase {
    var root: FilePath!, media: FilePath!, other: FilePath!, outside: FilePath!
    var policy: PathPolicy!

    override func setUp() {
        root = makeTempDir(self, "paths")
        media = root.appending("media"); other = root.appending("other"); outside = root.appending("outside")
        write("x", to: media.appending("clips/a.mp4"))
        write("x", to: other.appending("b.mp4"))
        write("secret", to: outside.appending("secret.mp4"))
        policy = PathPolicy(mediaRoot: media, allowedRoots: [other])
    }

    func testAllowedInputsOpen() throws {
        let a = try policy.openInput("clips/a.mp4")
        XCTAssertEqual(a.size, 1)
        XCTAssertTrue(a.openedPath.hasPrefix("/proc/self/fd/"))
        XCTAssertEqual(try String(contentsOfFile: a.openedPath, encoding: .utf8), "x")
        _ = try policy.openInput(other.appending("b.mp4").string)
    }

    /// Per-host mount points (config `localRoots`, issue 15): manifests and
    /// the checks use the logical roots, equal on every host; the files are
    /// opened under this host's mount point of them.
    func testLogicalRootsAreOpenedAtThisHostsMountPoint() throws {
        let logical = PathPolicy(mediaRoot: "/shared/media", allowedRoots: ["/shared/other"],
                                 localRoots: ["/shared/media": media, "/shared/other": other])
        let a = try logical.openInput("clips/a.mp4")
        XCTAssertEqual(try String(contentsOfFile: a.openedPath, encoding: .utf8), "x")
        XCTAssertEqual(try logical.openInput("/shared/other/b.mp4").size, 1)
        XCTAssertEqual(logical.local("/shared/media/x/y.mp4"), media.appending("x/y.mp4"))
        XCTAssertEqual(logical.local("/sharedish/y.mp4"), "/sharedish/y.mp4", "a sibling whose name starts alike is not mapped")
        // The local path itself is not a logical root: a manifest names logical paths.
        XCTAssertThrowsError(try logical.openInput(media.appending("clips/a.mp4").string)) { XCTAssertEqual(($0 as? SpoolError)?.code, .inputNotAllowed) }
        XCTAssertThrowsError(try logical.openInput("/shared/media/../../outside/secret.mp4"))
        let out = try logical.openOutput("out/o.txt", owner: "j")
        XCTAssertEqual(out.finalPath, "/shared/media/out/o.txt", "records and messages name the logical path")
        try out.write(Array("o".utf8), manifestPath: "out/o.txt")
        XCTAssertEqual(try String(contentsOfFile: media.appending("out/o.txt").string, encoding: .utf8), "o")
        // A symlink out of the local mount point is refused as from any root.
        symlink(outside.string, media.appending("escape").string)
        XCTAssertThrowsError(try logical.openInput("escape/secret.mp4")) { XCTAssertEqual(($0 as? SpoolError)?.code, .inputNotAllowed) }
    }

    /// Two jobs with one output path both pass the check while neither
    /// file exists; the second to publish does not replace the first's
    /// output while that job is kept (issue 13 row 6, review finding), and
    /// does with `overwrite`, or once the first job is gone.
    func testTheSecondOfTwoJobsPublishingOnePathDoesNotReplaceTheFirst() throws {
        var kept: Set<String> = ["A"]
        let a = try policy.openOutput("out/same.txt", owner: "A", isRetained: { kept.contains($0) })
        let b = try policy.openOutput("out/same.txt", owner: "B", isRetained: { kept.contains($0) })
        let c = try policy.openOutput("out/same.txt", owner: "C", overwrite: true, isRetained: { kept.contains($0) })
        try a.write(Array("A".utf8), manifestPath: "out/same.txt")
        let published = try Sys.open(media.appending("out/same.txt"), .readOnly)
        defer { try? published.close() }
        try XCTSkipIf(Sys.getXattr(published, OutputTarget.ownerAttribute) == nil, "no user xattrs on this file system: ownership is not recorded")
        XCTAssertThrowsError(try b.write(Array("B".utf8), manifestPath: "out/same.txt")) {
            XCTAssertEqual(($0 as? SpoolError)?.code, .outputNotAllowed)
        }
        XCTAssertEqual(read(media.appending("out/same.txt")), Array("A".utf8))
        b.discard()
        try c.write(Array("C".utf8), manifestPath: "out/same.txt")
        XCTAssertEqual(read(media.appending("out/same.txt")), Array("C".utf8))
        kept = []
        let d = try policy.openOutput("out/same.txt", owner: "D", isRetained: { kept.contains($0) })
        try d.write(Array("D".utf8), manifestPath: "out/same.txt")
        XCTAssertEqual(read(media.appending("out/same.txt")), Array("D".utf8))
        XCTAssertEqual(try Sys.entries(in: media.appending("out")), ["same.txt"], "no temporary file left")
    }

    func testRefusals() throws {
        XCTAssertSpoolError(try policy.openInput("http://host/a.mp4"), .inputNotAllowed, contains: "URL")
        XCTAssertSpoolError(try policy.openInput("concat:clips/a.mp4|clips/a.mp4"), .inputNotAllowed, contains: "protocol")
        XCTAssertSpoolError(try policy.openInput("file:clips/a.mp4"), .inputNotAllowed)
        XCTAssertSpoolError(try policy.openInput("clips/../../outside/secret.mp4"), .inputNotAllowed, contains: "..")
        XCTAssertSpoolError(try policy.openInput(outside.appending("secret.mp4").string), .inputNotAllowed, contains: "outside the allowed roots")
        XCTAssertSpoolError(try policy.openInput("clips/missing.mp4"), .inputNotFound)
        XCTAssertSpoolError(try policy.openInput("clips"), .inputNotAllowed, contains: "not a regular file")
        // Symlink escape.
        XCTAssertEqual(symlink(outside.appending("secret.mp4").string, media.appending("clips/link.mp4").string), 0)
        XCTAssertSpoolError(try policy.openInput("clips/link.mp4"), .inputNotAllowed, contains: "symlink")
        // A symlink that stays inside is fine.
        XCTAssertEqual(symlink(media.appending("clips/a.mp4").string, media.appending("clips/inside.mp4").string), 0)
        XCTAssertNoThrow(try policy.openInput("clips/inside.mp4"))
        // FIFO: refused, never opened (opening would block).
        XCTAssertEqual(mkfifo(media.appending("clips/fifo.mp4").string, 0o644), 0)
        XCTAssertSpoolError(try policy.openInput("clips/fifo.mp4"), .inputNotAllowed, contains: "FIFO")
    }

    func testOutputs() throws {
        let p = try policy.openOutput("out/deep/x.mp4").finalPath
        XCTAssertEqual(p, media.appending("out/deep/x.mp4"))
        var isDir: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: media.appending("out/deep").string, isDirectory: &isDir) && isDir.boolValue)
        XCTAssertSpoolError(try policy.openOutput("../x.mp4"), .outputNotAllowed)
        XCTAssertSpoolError(try policy.openOutput("/etc/x.mp4"), .outputNotAllowed)
        XCTAssertEqual(symlink(outside.string, media.appending("escape").string), 0)
        XCTAssertSpoolError(try policy.openOutput("escape/x.mp4"), .outputNotAllowed, contains: "symlink")
    }


    /// Issue 13 row 5: the output directory was checked, then opened by
    /// path, so swapping it for a symlink in between put outputs outside
    /// every root. Thousands of swaps while outputs are written: each write
    /// lands in the real directory or is refused, never outside.
    func testSwappingTheOutputDirectoryForASymlinkNeverWritesOutside() throws {
        let outside = makeTempDir(self, "outside")
        try Sys.mkdirs(media.appending("out"))
        XCTAssertEqual(symlink(outside.string, media.appending("swap").string), 0)
        let stop = ManagedAtomicFlag()
        let a = media.appending("out"), b = media.appending("swap")
        let swapper = Thread {
            while !stop.isSet { try? Sys.exchange(a, b) }
        }
        swapper.start()
        var written = 0, refused = 0
        for i in 0..<800 {
            do {
                let target = try policy.openOutput("out/x\(i).txt")
                try target.write(Array("x".utf8), manifestPath: "out/x\(i).txt")
                written += 1
            } catch { refused += 1 }
        }
        stop.set()
        while swapper.isExecuting { usleep(1000) }
        print("output swap race: \(written) written, \(refused) refused")
        XCTAssertEqual(try Sys.entries(in: outside), [], "nothing outside the root")
        XCTAssertGreaterThan(written, 0)
    }
}
