import Foundation
import SpoolKit
import SystemPackage
import XCTest

final class ComposeJobTests: XCTestCase {
    func testCrossfadeOfMixedClipsMusicAndStreamCopyJoin() throws {
        let h = SpoolHarness(self)
        h.start(workers: 2, env: ["MEDIASPOOL_LOG_LEVEL": "debug"])
        let mixed = #"""
        {"version":1,"type":"compose","clips":[
          {"path":"clips/v1.mp4"},
          {"path":"clips/v2.mkv"},
          {"path":"stills/portrait.png","duration":1.5,"motion":"zoom-in"},
          {"path":"clips/six.mp4"}],
         "transition":{"type":"crossfade","duration":0.5},
         "output":{"path":"out/mixed.mp4","width":320,"height":240,"fps":25,"fit":"pad","video":{"preset":"veryfast"}}}
        """#
        let music = #"""
        {"version":1,"type":"compose","clips":[{"path":"clips/v1.mp4","start":0.5,"duration":1.0},{"path":"clips/six.mp4"}],
         "audio":{"path":"music/theme.mp3","mode":"mix","volume":0.5,"fadeIn":0.5,"fadeOut":0.5},
         "output":{"path":"out/music.mkv","fit":"crop"}}
        """#
        let replaceLoop = #"""
        {"version":1,"type":"compose","clips":[{"path":"clips/v1.mp4"},{"path":"stills/portrait.png","duration":2,"motion":"pan-left"}],
         "audio":{"path":"music/theme.mp3","mode":"replace","loop":true},
         "output":{"path":"out/replace.webm","width":160,"height":120,"fps":10}}
        """#
        let copy = #"{"version":1,"type":"compose","clips":[{"path":"clips/v1.mp4"},{"path":"clips/v1.mp4"},{"path":"clips/v1.mp4"}],"output":{"path":"out/joined.mp4"}}"#
        let stillNoDuration = #"{"version":1,"type":"compose","clips":[{"path":"clips/v1.mp4"},{"path":"stills/portrait.png"}],"output":{"path":"out/x.mp4"}}"#
        let longFade = #"{"version":1,"type":"compose","clips":[{"path":"clips/v1.mp4"},{"path":"clips/v2.mkv"}],"transition":{"type":"crossfade","duration":1.5},"output":{"path":"out/y.mp4"}}"#
        for (id, body) in [("mixed", mixed), ("music", music), ("replace", replaceLoop), ("copy", copy), ("still", stillNoDuration), ("fade", longFade)] { h.submit(id, body) }
        eventually(stall: 60, "compose jobs finished", progress: { h.finishedCount }) { h.finishedCount == 6 }
        let m = h.media.string
        // 2 + 1 + 1.5 + 1.5 s, three joins of 0.5 s: 4.5 s, within a frame (0.04 s at 25 fps).
        XCTAssertNotNil(h.result("mixed"), h.error("mixed")?.message ?? "")
        let x = try XCTUnwrap(Probed(m + "/out/mixed.mp4"))
        print("compose: crossfade of 4 mixed clips lasts \(x.duration) s (expected 4.5), \(x.video?.frames ?? 0) frames")
        XCTAssertEqual(x.duration, 4.5, accuracy: 0.04 + 0.03)
        XCTAssertEqual(x.video?.width, 320); XCTAssertEqual(x.video?.height, 240); XCTAssertEqual(x.video?.fps ?? 0, 25, accuracy: 0.01)
        XCTAssertEqual(Double(x.video?.frames ?? 0), 4.5 * 25, accuracy: 1.5)
        XCTAssertEqual(x.audio?.channels, 2); XCTAssertEqual(x.audio?.rate, 48000); XCTAssertEqual(x.audio?.codec, "aac")
        // Cut clip + full clip, no transition: 1.0 + 1.5 s; size and rate of the first video clip.
        let mu = try XCTUnwrap(Probed(m + "/out/music.mkv"), h.error("music")?.message ?? "")
        XCTAssertEqual(mu.duration, 2.5, accuracy: 0.07)
        XCTAssertEqual(mu.video?.width, 320); XCTAssertEqual(mu.video?.height, 240); XCTAssertEqual(mu.video?.fps ?? 0, 25, accuracy: 0.01)
        XCTAssertEqual(mu.audio?.channels, 2)
        // The music (2 s) loops under 4 s of picture and replaces the clips' sound.
        let rp = try XCTUnwrap(Probed(m + "/out/replace.webm"), h.error("replace")?.message ?? "")
        XCTAssertEqual(rp.duration, 4.0, accuracy: 0.12)
        XCTAssertEqual(rp.video?.codec, "vp9"); XCTAssertEqual(rp.video?.width, 160)
        XCTAssertEqual(Double(rp.video?.frames ?? 0), 40, accuracy: 1, "4 s at 10 fps, within one frame")
        XCTAssertEqual(rp.audio?.codec, "opus")
        // Same clips, nothing to change: joined by stream copy, no decoder opened.
        let cp = try XCTUnwrap(h.result("copy"), h.error("copy")?.message ?? "")
        XCTAssertEqual(cp.steps.first?.name, "join (stream copy)")
        let j = try XCTUnwrap(Probed(m + "/out/joined.mp4"))
        XCTAssertEqual(j.duration, 6.0, accuracy: 0.1); XCTAssertEqual(j.video?.frames, 150); XCTAssertEqual(j.video?.codec, "h264")
        let lines = h.log(0).split(separator: "\n")
        XCTAssertFalse(lines.contains { $0.contains("JOB_ID=copy") && $0.contains("opened decoder") }, "a stream-copy compose opens no decoder")
        XCTAssertTrue(lines.contains { $0.contains("JOB_ID=mixed") && $0.contains("opened decoder") })
        XCTAssertEqual(h.error("still")?.code, "MANIFEST_INVALID")
        XCTAssertEqual(h.error("fade")?.code, "MANIFEST_INVALID")
        h.stopAll()
        XCTAssertEqual(h.temporaryFiles, [])
    }

    /// Issue 13 row 12: a compose that would hold more descriptors than its
    /// share of LimitNOFILE fails LIMIT_EXCEEDED at once instead of starving
    /// the jobs beside it; one within its share runs.
    func testAComposeOverItsDescriptorBudgetFailsLimitExceeded() throws {
        let h = SpoolHarness(self)
        // 200 descriptors for 2 workers: (200 - 64) / 2 = 68 per job.
        h.start(workers: 2, wrapper: ["/usr/bin/prlimit", "--nofile=200:200", "--"])
        let clip = #"{"path":"clips/v1.mp4"}"#
        h.submit("wide", #"{"version":1,"type":"compose","clips":[\#(Array(repeating: clip, count: 40).joined(separator: ","))],"output":{"path":"out/wide.mp4"}}"#)
        h.submit("narrow", #"{"version":1,"type":"compose","clips":[\#(Array(repeating: clip, count: 3).joined(separator: ","))],"output":{"path":"out/narrow.mp4"}}"#)
        eventually(60, "both ended") { h.error("wide") != nil && h.result("narrow") != nil }
        XCTAssertEqual(h.error("wide")?.code, "LIMIT_EXCEEDED")
        XCTAssertTrue(h.error("wide")?.message.contains("68 per job") ?? false, h.error("wide")?.message ?? "")
        XCTAssertNil(Probed(h.media.string + "/out/wide.mp4"), "no output")
        XCTAssertEqual(Probed(h.media.string + "/out/narrow.mp4").map { ($0.duration * 10).rounded() / 10 }, 6.0)
        h.stopAll()
    }
}
