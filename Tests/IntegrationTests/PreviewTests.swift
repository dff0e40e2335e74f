import Foundation
import SpoolKit
import SystemPackage
import XCTest

/// A thumbnail job's animated preview (issue 18): a GIF of one stretch and an
/// animated WebP of evenly spaced moments, their frame counts, durations and
/// loops, and the GIF's frames against the ffmpeg command's at their times.
final class PreviewTests: XCTestCase {
    func testGIFAndWebPPreviewsHaveTheirFramesDurationsAndLoops() throws {
        let h = SpoolHarness(self)
        let m = h.media.string
        Fixtures.longGOPClip(m + "/pv/clip.mp4", seconds: 9)
        // A minute, small: moments far apart are reached by seeks.
        Fixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30", "-t", "60", "-c:v", "libx264", "-preset", "veryfast",
                         "-g", "60", "-pix_fmt", "yuv420p", m + "/pv/minute.mp4"])
        h.start(workers: 2, env: ["MEDIASPOOL_LOG_LEVEL": "debug"])
        func job(_ preview: String, _ out: String) -> String {
            #"{"version":1,"type":"thumbnail","input":"pv/clip.mp4","preview":\#(preview),"output":{"path":"\#(out)"}}"#
        }
        h.submit("gif", job(#"{"start":2,"duration":2,"fps":10}"#, "previews/a.gif"))
        h.submit("gif-once", job(#"{"start":0,"duration":0.5,"fps":4,"loop":false}"#, "previews/once.gif"))
        h.submit("webp", job(#"{"moments":3,"momentDuration":1,"fps":5}"#, "previews/b.webp"))
        h.submit("past-end", job(#"{"start":30}"#, "previews/never.gif"))
        h.submit("jpg", job(#"{"start":1}"#, "previews/c.jpg"))
        h.submit("far", #"{"version":1,"type":"thumbnail","input":"pv/minute.mp4","preview":{"moments":3,"momentDuration":1,"fps":5},"output":{"path":"previews/far.gif"}}"#)
        h.submit("with-count", #"{"version":1,"type":"thumbnail","input":"pv/clip.mp4","count":2,"preview":{"start":1},"output":{"path":"previews/d.gif"}}"#)
        eventually(stall: 60, "the preview jobs ended", progress: { h.finishedCount }) { h.finishedCount == 7 }
        XCTAssertEqual(h.error("past-end")?.code, "INPUT_INVALID")
        XCTAssertEqual(h.error("jpg")?.code, "UNSUPPORTED")
        XCTAssertEqual(h.error("with-count")?.code, "MANIFEST_INVALID")

        // GIF: 2 s at 10 fps from 2 s, 320 wide, looping.
        let gif = try XCTUnwrap(h.result("gif")?.outputs.first, h.error("gif")?.message ?? "")
        XCTAssertEqual(gif.format, "gif"); XCTAssertEqual(gif.width, 320); XCTAssertEqual(gif.height, 180)
        XCTAssertEqual(gif.durationSeconds ?? 0, 2, accuracy: 0.001)
        let p = try XCTUnwrap(Probed(m + "/previews/a.gif"))
        XCTAssertEqual(p.video?.codec, "gif"); XCTAssertEqual(p.video?.width, 320)
        XCTAssertEqual(p.duration ?? 0, 2, accuracy: 0.05)
        let counted = runTool(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", m + "/previews/a.gif"])
        XCTAssertEqual(String(decoding: counted.out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), "20")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: m + "/previews/a.gif"))
        XCTAssertNotNil(bytes.range(of: Data("NETSCAPE2.0".utf8)), "loops (the NETSCAPE extension)")
        let once = try Data(contentsOf: URL(fileURLWithPath: m + "/previews/once.gif"))
        XCTAssertNil(once.range(of: Data("NETSCAPE2.0".utf8)), "loop false: plays once")
        // Frame k is the command's frame at 2 + k/10 s (palette and all),
        // not the one a second later.
        let work = NSTemporaryDirectory() + "preview-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        var figures: [String] = []
        for k in [0, 7, 19] {
            let ours = "\(work)/g\(k).png", want = "\(work)/w\(k).y4m", away = "\(work)/x\(k).y4m"
            Fixtures.ffmpeg(["-i", m + "/previews/a.gif", "-vf", "select=eq(n\\,\(k))", "-frames:v", "1", ours])
            for (t, file) in [(2 + Double(k) / 10, want), (3 + Double(k) / 10, away)] {
                Fixtures.ffmpeg(["-ss", "\(t)", "-i", m + "/pv/clip.mp4", "-frames:v", "1", "-vf", "scale=320:180", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", file])
            }
            let same = yuvPSNR(ours, want), other = yuvPSNR(ours, away)
            figures.append(String(format: "%.1f/%.1f", same, other))
            XCTAssertGreaterThanOrEqual(same, 30, "GIF frame \(k) against the command's frame")
            XCTAssertGreaterThan(other, 10)
            XCTAssertGreaterThan(same, other + 3, "GIF frame \(k) is the frame at its time")
        }
        print("preview: GIF frames' PSNR dB against the command's frame / the frame 1 s later: \(figures.joined(separator: " "))")

        // WebP: 3 moments of 1 s at 5 fps, looping forever.
        let webp = try XCTUnwrap(h.result("webp")?.outputs.first, h.error("webp")?.message ?? "")
        XCTAssertEqual(webp.format, "webp"); XCTAssertEqual(webp.width, 320); XCTAssertEqual(webp.durationSeconds ?? 0, 3, accuracy: 0.001)
        let info = String(decoding: runTool(["webpmux", "-info", m + "/previews/b.webp"]).out, as: UTF8.self)
        XCTAssertTrue(info.contains("Canvas size: 320 x 180"), info)
        XCTAssertTrue(info.contains("Loop Count : 0"), info)
        XCTAssertTrue(info.contains("Number of frames: 15"), info)
        let durations = info.split(separator: "\n").filter { $0.first == " " && $0.contains(":") }
            .compactMap { line in line.split(separator: " ").dropFirst(6).first.flatMap { Int($0) } }
        XCTAssertEqual(durations.count, 15, info)
        XCTAssertEqual(durations.reduce(0, +), 3000, "15 frames of 200 ms")
        // Moments at 9.5, 29.5 and 49.5 s of a minute (1800 frames): the
        // gaps are crossed by seeks, so few frames are decoded; and each
        // moment's first frame is the command's at its time.
        let far = try XCTUnwrap(h.result("far")?.outputs.first, h.error("far")?.message ?? "")
        XCTAssertEqual(far.durationSeconds ?? 0, 3, accuracy: 0.001)
        let line = try XCTUnwrap(h.log(0).split(separator: "\n").first { $0.contains("JOB_ID=far ") && $0.contains("frames for 15 times") })
        let decoded = Int(line.components(separatedBy: "decoded ").last!.split(separator: " ").first!)!
        XCTAssertLessThan(decoded, 600, "seeks between the moments (\(decoded) of 1800 frames decoded)")
        for (k, t) in [(5, 29.5), (10, 49.5)] {
            let ours = "\(work)/far\(k).png", want = "\(work)/farw\(k).y4m"
            Fixtures.ffmpeg(["-i", m + "/previews/far.gif", "-vf", "select=eq(n\\,\(k))", "-frames:v", "1", ours])
            Fixtures.ffmpeg(["-ss", "\(t)", "-i", m + "/pv/minute.mp4", "-frames:v", "1", "-vf", "scale=320:180", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", want])
            XCTAssertGreaterThanOrEqual(yuvPSNR(ours, want), 30, "frame \(k) of the far preview is the frame at \(t) s")
        }
        print("preview: 3 moments of a 60 s clip with \(decoded) of 1800 frames decoded")
        h.stopAll()
    }
}
