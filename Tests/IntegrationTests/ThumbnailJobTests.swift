import Foundation
import SpoolKit
import SystemPackage
import XCTest

final class ThumbnailJobTests: XCTestCase {
    func testStillsSheetsAndSeekingForward() throws {
        let h = SpoolHarness(self)
        h.start(workers: 2, env: ["MEDIASPOOL_LOG_LEVEL": "debug"])
        func thumb(_ input: String, _ times: String, _ out: String, extra: String = "") -> String {
            #"{"version":1,"type":"thumbnail","input":"\#(input)",\#(times)\#(extra),"output":{"path":"\#(out)"}}"#
        }
        let jobs = [
            ("at", thumb("clips/long.mp4", #""at":[1.0,18.0]"#, "thumbs/a-%02d.jpg", extra: #","width":320"#)),
            ("count", thumb("clips/v1.mp4", #""count":3"#, "thumbs/c-%d.png", extra: #","height":60"#)),
            ("sheet", thumb("clips/v1.mp4", #""count":6"#, "thumbs/sheet.webp", extra: #","width":80,"sheet":{"columns":3}"#)),
            ("past-end", thumb("clips/v1.mp4", #""at":[30]"#, "thumbs/never.jpg")),
            ("no-video", thumb("sound/a1.wav", #""at":[1]"#, "thumbs/none.jpg")),
            ("fast", thumb("clips/long.mp4", #""at":[18.0]"#, "thumbs/fast.png", extra: #","width":320,"seek":"keyframe""#)),
        ]
        for (id, body) in jobs { h.submit(id, body) }
        eventually(60, "thumbnail jobs finished") { h.finishedCount == jobs.count }
        let m = h.media.string
        let at = try XCTUnwrap(h.result("at"), h.error("at")?.message ?? "")
        XCTAssertEqual(at.outputs.map(\.path), ["thumbs/a-01.jpg", "thumbs/a-02.jpg"])
        for o in at.outputs {
            let p = try XCTUnwrap(Probed(m + "/" + o.path))
            XCTAssertEqual(p.video?.codec, "mjpeg"); XCTAssertEqual(p.video?.width, 320); XCTAssertEqual(p.video?.height, 180)
            XCTAssertEqual(o.format, "jpg"); XCTAssertEqual(o.width, 320); XCTAssertEqual(o.sha256.count, 64)
        }
        // The still at 18 s of a 20 s clip (keyframes every 8.3 s) decodes from
        // the keyframe at 16.7 s: about 40 frames, not the 540 before it.
        let line = try XCTUnwrap(h.log(0).split(separator: "\n").first { $0.contains("JOB_ID=at") && $0.contains("still at 18.0 s") })
        let n = Int(line.components(separatedBy: "decoded ").last!.split(separator: " ").first!)!
        XCTAssertLessThan(n, 100, "seeked to the keyframe before, not decoded from the start (\(n) frames)")
        let count = try XCTUnwrap(h.result("count"))
        XCTAssertEqual(count.outputs.map(\.path), ["thumbs/c-1.png", "thumbs/c-2.png", "thumbs/c-3.png"])
        let c1 = try XCTUnwrap(Probed(m + "/thumbs/c-1.png"))
        XCTAssertEqual(c1.video?.codec, "png"); XCTAssertEqual(c1.video?.height, 60); XCTAssertEqual(c1.video?.width, 80)
        let sheet = try XCTUnwrap(h.result("sheet"))
        XCTAssertEqual(sheet.outputs.count, 1)
        let s = try XCTUnwrap(Probed(m + "/thumbs/sheet.webp"))
        XCTAssertEqual(s.video?.codec, "webp")
        XCTAssertEqual(s.video?.width, 3 * 80 + 2 * 4 + 2 * 4, "3 columns of 80 px with padding and margin")
        XCTAssertEqual(s.video?.height, 2 * 60 + 4 + 2 * 4, "2 rows of 60 px")
        // seek "keyframe": the keyframe before 18 s (16.7 s), one frame
        // decoded, as the command's -noaccurate_seek takes it.
        XCTAssertNotNil(h.result("fast"), h.error("fast")?.message ?? "")
        let fastLine = try XCTUnwrap(h.log(0).split(separator: "\n").first { $0.contains("JOB_ID=fast") && $0.contains("still at 18.0 s") })
        XCTAssertTrue(fastLine.contains("decoded 1 frames"), String(fastLine))
        let work = NSTemporaryDirectory() + "fast-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        // -copyts: without it the keyframe's time would be negative and the
        // command's output would drop it.
        for (flags, file) in [(["-noaccurate_seek"], "kf.y4m"), ([], "exact.y4m")] {
            Fixtures.ffmpeg(flags + ["-ss", "18", "-copyts", "-i", m + "/clips/long.mp4", "-frames:v", "1", "-vf", "scale=320:180", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", work + "/" + file])
        }
        let keyframe = yuvPSNR(m + "/thumbs/fast.png", work + "/kf.y4m"), exact = yuvPSNR(m + "/thumbs/fast.png", work + "/exact.y4m")
        XCTAssertGreaterThanOrEqual(keyframe, 30, "the command's -noaccurate_seek frame")
        XCTAssertGreaterThan(keyframe, exact + 3, "the keyframe, not the frame at 18 s (\(keyframe) vs \(exact) dB)")
        XCTAssertEqual(h.error("past-end")?.code, "INPUT_INVALID")
        XCTAssertEqual(h.error("no-video")?.code, "INPUT_INVALID")
        h.stopAll()
    }

    /// seek "keyframe" on an open GOP (whose decoder reorders its I-frames),
    /// in MP4, Matroska and MPEG-TS (whose byte seeks land a keyframe early
    /// or late): each still is the last keyframe at or before its time.
    /// Frames carry their number as their grey level.
    func testKeyframeStillsOnOpenGOP() throws {
        let h = SpoolHarness(self)
        let m = h.media.string
        Fixtures.greyRamp(m + "/og/k.mp4", seconds: 14, codec: ["-c:v", "libx264", "-qp", "2", "-x264-params", "bframes=3:b-adapt=0:keyint=40:scenecut=0:open-gop=1"])
        Fixtures.ffmpeg(["-i", m + "/og/k.mp4", "-c", "copy", m + "/og/k.mkv"])
        Fixtures.ffmpeg(["-i", m + "/og/k.mp4", "-c", "copy", "-f", "mpegts", m + "/og/k.ts"])
        h.start(workers: 2)
        for ext in ["mp4", "mkv", "ts"] {
            h.submit("kf-\(ext)", #"{"version":1,"type":"thumbnail","input":"og/k.\#(ext)","at":[1.7,5.0,11.3],"width":64,"seek":"keyframe","output":{"path":"og-\#(ext)/k-%d.png"}}"#)
        }
        eventually(stall: 60, "the three jobs ended", progress: { h.finishedCount }) { h.finishedCount == 3 }
        let ramp = GreyRamp(m + "/og/k.mp4")
        XCTAssertEqual(ramp.levels.count, 350)
        for ext in ["mp4", "mkv", "ts"] {
            XCTAssertNotNil(h.result("kf-\(ext)"), h.error("kf-\(ext)")?.message ?? "")
            // Keyframes every 40 frames (1.6 s): at or before 1.7, 5.0, 11.3 s.
            for (k, frame) in [40, 120, 280].enumerated() {
                XCTAssertTrue(ramp.isFrame(frame, GreyRamp.level(of: m + "/og-\(ext)/k-\(k + 1).png")), "\(ext) still \(k + 1) is the keyframe \(frame)")
            }
        }
        h.stopAll()
    }

    /// Accurate stills are the first frame at or after their time, as the
    /// command's `-ss` picks them, in H.264 and HEVC in MPEG-TS (which seeks
    /// by bytes) as in MP4. Before stills shared the storyboard's pass, a TS
    /// seek that landed on the keyframe 1.25 frames past 1.55 s was taken
    /// (frame 40, not 39), and HEVC in TS gave frames from the end; in
    /// Matroska and AVI too.
    func testAccurateStillsAreTheFirstFrameAtOrAfterTheirTime() throws {
        let h = SpoolHarness(self)
        let m = h.media.string
        Fixtures.greyRamp(m + "/acc/h264.mp4", seconds: 14, codec: ["-c:v", "libx264", "-qp", "2", "-x264-params", "bframes=3:b-adapt=0:keyint=40:scenecut=0"])
        Fixtures.greyRamp(m + "/acc/hevc.mp4", seconds: 14, codec: ["-c:v", "libx265", "-x265-params", "qp=4:keyint=40:min-keyint=40:scenecut=0:bframes=3:log-level=none"])
        Fixtures.greyRamp(m + "/acc/mpeg4.avi", seconds: 14, codec: ["-c:v", "mpeg4", "-q:v", "1", "-g", "40"])
        for codec in ["h264", "hevc"] { Fixtures.ffmpeg(["-i", m + "/acc/\(codec).mp4", "-c", "copy", "-f", "mpegts", m + "/acc/\(codec).ts"]) }
        Fixtures.ffmpeg(["-i", m + "/acc/h264.mp4", "-c", "copy", m + "/acc/h264.mkv"])
        // Fragmented, without an edit list: it starts at 0.08 s (two B-frame delays).
        Fixtures.ffmpeg(["-i", m + "/acc/h264.mp4", "-c", "copy", "-movflags", "frag_keyframe+empty_moov", m + "/acc/frag.mp4"])
        h.start(workers: 2)
        // Stills near the start after a later one: the pass goes back to the
        // start, which Matroska and AVI must do by timestamp (from byte 0,
        // Matroska gave frames from 11 s or none at all, AVI lost its timestamps).
        let times = [5.0, 0, 1.55, 3.15, 0.04, 6.37, 11.3]
        let inputs = ["h264.mp4", "h264.ts", "h264.mkv", "frag.mp4", "hevc.mp4", "hevc.ts", "mpeg4.avi"]
        for (i, input) in inputs.enumerated() {
            h.submit("acc\(i)", #"{"version":1,"type":"thumbnail","input":"acc/\#(input)","at":\#(times),"width":64,"output":{"path":"acc-out/\#(i)-%d.png"}}"#)
        }
        eventually(stall: 60, "the stills ended", progress: { h.finishedCount }) { h.finishedCount == inputs.count }
        for (i, input) in inputs.enumerated() {
            XCTAssertNotNil(h.result("acc\(i)"), h.error("acc\(i)")?.message ?? "")
            let ramp = GreyRamp(m + "/acc/\(input)")
            XCTAssertEqual(ramp.levels.count, 350, input)
            for (k, t) in times.enumerated() {
                let want = Int((t * 25 - 0.001).rounded(.up))   // the first frame at or after t
                let level = GreyRamp.level(of: m + "/acc-out/\(i)-\(k + 1).png")
                XCTAssertTrue(ramp.isFrame(want, level), "\(input) at \(t) s: frame \(level.map { ramp.frame(of: $0) } ?? -1) (mod 100), not \(want)")
            }
        }
        h.stopAll()
    }
}
