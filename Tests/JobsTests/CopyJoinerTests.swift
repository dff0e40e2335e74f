import JobSchema
import Foundation
@testable import Jobs
import Logging
import MediaKit
@testable import SpoolKit
import SystemPackage
import XCTest

/// When a compose joins its clips by stream copy (CopyJoiner.applies): only
/// when every clip has the same codec parameters and nothing asks for a
/// re-encode. Clips made by the ffmpeg command (a fixture, not the daemon).
final class CopyJoinerTests: XCTestCase {
    static let root = FilePath(NSTemporaryDirectory()).appending("mediaspool-copyjoin-\(getpid())")

    override class func setUp() {
        try? FileManager.default.createDirectory(atPath: root.string, withIntermediateDirectories: true)
        func make(_ name: String, _ size: String, _ extra: [String] = []) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
            p.arguments = ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=\(size):rate=25", "-f", "lavfi",
                           "-i", "sine=sample_rate=48000", "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                           "-c:a", "aac"] + extra + [root.appending(name).string]
            try! p.run(); p.waitUntilExit()
        }
        make("a.mp4", "320x240"); make("b.mp4", "320x240"); make("wide.mp4", "640x360")
        make("silent.mp4", "320x240", ["-an"])
    }

    override class func tearDown() { try? FileManager.default.removeItem(atPath: root.string) }

    func applies(_ manifest: String) throws -> Bool {
        let m = try Manifest.parse(Array(manifest.utf8), fileID: "c")
        guard case .compose(let c) = m.job else { XCTFail("not a compose"); return false }
        let job = JobContext(id: "c", manifest: m, attempt: 1, policy: PathPolicy(mediaRoot: Self.root, allowedRoots: []),
                             limits: MediaLimits(), logger: Logger(label: "t"), deadline: .now.advanced(by: .seconds(60)),
                             layout: SpoolLayout(root: Self.root), startedAt: Date())
        let clips = try c.clips.enumerated().map { i, clip throws(SpoolError) in
            try ClipInput(job: job, path: clip.path, field: "clips[\(i)].path", clip: clip)
        }
        return CopyJoiner.applies(c, clips: clips)
    }

    func compose(_ clips: [String], output: String = #""path":"out.mp4""#, extra: String = "") -> String {
        let list = clips.map { #"{"path":"\#($0)"}"# }.joined(separator: ",")
        return #"{"version":1,"type":"compose","clips":[\#(list)],"output":{\#(output)}\#(extra)}"#
    }

    func testLikeClipsAreJoinedByCopy() throws {
        XCTAssertTrue(try applies(compose(["a.mp4", "b.mp4"])))
        XCTAssertTrue(try applies(compose(["a.mp4", "b.mp4"], output: #""path":"out.mp4","video":{"codec":"copy"}"#)))
        XCTAssertTrue(try applies(compose(["a.mp4", "a.mp4"], output: #""path":"out.mp4","width":320,"height":240"#)), "the size they have")
    }

    func testAnythingThatNeedsAnEncodeIsNot() throws {
        XCTAssertFalse(try applies(compose(["a.mp4", "wide.mp4"])), "another size")
        XCTAssertFalse(try applies(compose(["a.mp4", "silent.mp4"])), "one clip without sound")
        XCTAssertFalse(try applies(compose(["a.mp4", "b.mp4"], output: #""path":"out.mp4","video":{"crf":20}"#)), "a quality asked for")
        XCTAssertFalse(try applies(compose(["a.mp4", "b.mp4"], output: #""path":"out.mp4","width":640"#)), "a size asked for")
        XCTAssertFalse(try applies(compose(["a.mp4", "b.mp4"], output: #""path":"out.mp4","video":{"codec":"hevc"}"#)), "another codec")
        XCTAssertFalse(try applies(compose(["a.mp4", "b.mp4"], extra: #","transition":{"type":"crossfade","duration":0.5}"#)), "a transition")
    }
}
