import Foundation
import SpoolKit
import SystemPackage
import XCTest

/// A thumbnail job's storyboard (issue 18): sheets of tiles every interval
/// and the WebVTT file that maps time ranges to tiles, judged against the
/// ffmpeg command's frame at each tile's time.
final class StoryboardTests: XCTestCase {
    struct Cue { var start: Double, end: Double, sheet: String, x: Int, y: Int, w: Int, h: Int }

    /// Parses WebVTT cues of the form `HH:MM:SS.mmm --> HH:MM:SS.mmm` + `sheet#xywh=x,y,w,h`.
    func cues(_ text: String) -> [Cue] {
        func seconds(_ s: Substring) -> Double {
            let p = s.split(separator: ":").compactMap { Double($0) }
            return p.count == 3 ? p[0] * 3600 + p[1] * 60 + p[2] : -1
        }
        let blocks = text.components(separatedBy: "\n\n").dropFirst()
        return blocks.compactMap { b in
            let lines = b.split(separator: "\n")
            guard lines.count == 2, let arrow = lines[0].range(of: " --> "), let hash = lines[1].range(of: "#xywh=") else { return nil }
            let r = lines[1][hash.upperBound...].split(separator: ",").compactMap { Int($0) }
            guard r.count == 4 else { return nil }
            return Cue(start: seconds(lines[0][..<arrow.lowerBound]), end: seconds(lines[0][arrow.upperBound...]),
                       sheet: String(lines[1][..<hash.lowerBound]), x: r[0], y: r[1], w: r[2], h: r[3])
        }
    }


    func testStoryboardTilesMatchTheFramesAndTheCuesCoverTheClip() throws {
        let h = SpoolHarness(self)
        let m = h.media.string
        // Phone-like coding: B-frames and a 5 s GOP, 13 s long (the last
        // sheet is partly filled, the last cue shorter than the interval).
        Fixtures.longGOPClip(m + "/board/clip.mp4", seconds: 13)
        h.start(workers: 1, env: ["MEDIASPOOL_LOG_LEVEL": "debug"])
        h.submit("sb", #"{"version":1,"type":"thumbnail","input":"board/clip.mp4","width":160,"storyboard":{"interval":2,"columns":3,"rows":2,"vtt":"boards/b.vtt"},"output":{"path":"boards/b-%02d.png"}}"#)
        h.submit("sb-dir", #"{"version":1,"type":"thumbnail","input":"board/clip.mp4","storyboard":{"vtt":"elsewhere/b.vtt"},"output":{"path":"boards/c-%02d.jpg"}}"#)
        h.submit("sb-huge", #"{"version":1,"type":"thumbnail","input":"board/clip.mp4","width":8192,"storyboard":{"vtt":"boards/e.vtt","columns":20,"rows":20},"output":{"path":"boards/e-%02d.jpg"}}"#)
        try FileManager.default.createDirectory(atPath: m + "/linked", withIntermediateDirectories: true)
        XCTAssertEqual(symlink("/etc/passwd", m + "/linked/l.vtt"), 0)
        h.submit("sb-link", #"{"version":1,"type":"thumbnail","input":"board/clip.mp4","storyboard":{"vtt":"linked/l.vtt"},"output":{"path":"linked/l-%02d.jpg"}}"#)
        // An upload cut short: the storyboard ends at its last frame.
        Fixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-t", "10", "-c:v", "libx264", "-preset", "veryfast",
                         "-movflags", "+faststart", m + "/board/whole.mp4"])
        let whole = try Data(contentsOf: URL(fileURLWithPath: m + "/board/whole.mp4"))
        try whole.prefix(whole.count * 55 / 100).write(to: URL(fileURLWithPath: m + "/board/cut.mp4"))
        h.submit("sb-cut", #"{"version":1,"type":"thumbnail","input":"board/cut.mp4","storyboard":{"interval":1,"vtt":"cut/c.vtt"},"output":{"path":"cut/c-%d.jpg"}}"#)
        h.submit("sb-at", #"{"version":1,"type":"thumbnail","input":"board/clip.mp4","at":[1],"storyboard":{"vtt":"boards/d.vtt"},"output":{"path":"boards/d-%02d.jpg"}}"#)
        eventually(stall: 60, "the storyboard jobs ended", progress: { h.finishedCount }) { h.finishedCount == 6 }
        let cut = try XCTUnwrap(h.result("sb-cut"), h.error("sb-cut")?.message ?? "")
        XCTAssertEqual(cut.outputs.map(\.path), ["cut/c-1.jpg", "cut/c.vtt"])
        XCTAssertEqual(cues(try String(contentsOfFile: m + "/cut/c.vtt", encoding: .utf8)).count, 10, "a tile a second of the 10 s the container says")
        XCTAssertTrue(h.log(0).contains("input board/cut.mp4 ends early (damaged) at "), "the cut is logged")
        XCTAssertEqual(h.error("sb-dir")?.code, "MANIFEST_INVALID")
        XCTAssertEqual(h.error("sb-huge")?.code, "LIMIT_EXCEEDED", "a 163840 px wide sheet is refused before decoding")
        XCTAssertTrue(h.error("sb-huge")?.message.contains("storyboard.columns/rows") ?? false, h.error("sb-huge")?.message ?? "")
        XCTAssertEqual(h.error("sb-link")?.code, "OUTPUT_NOT_ALLOWED")
        XCTAssertFalse(FileManager.default.fileExists(atPath: m + "/linked/l-01.jpg"), "the WebVTT path is checked before any sheet is written")
        XCTAssertEqual(h.error("sb-at")?.code, "MANIFEST_INVALID")
        let rec = try XCTUnwrap(h.result("sb"), h.error("sb")?.message ?? "")
        XCTAssertEqual(rec.outputs.map(\.path), ["boards/b-01.png", "boards/b-02.png", "boards/b.vtt"])
        XCTAssertEqual(rec.outputs.last?.format, "vtt")
        for sheet in ["b-01.png", "b-02.png"] {
            let p = try XCTUnwrap(Probed(m + "/boards/" + sheet))
            XCTAssertEqual(p.video?.width, 3 * 160); XCTAssertEqual(p.video?.height, 2 * 90, "\(sheet): 3 x 2 tiles of 160 x 90")
        }
        let text = try String(contentsOfFile: m + "/boards/b.vtt", encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("WEBVTT\n"))
        let list = cues(text)
        XCTAssertEqual(list.count, 7, "a tile every 2 s of 13 s")
        XCTAssertEqual(list.first?.start, 0)
        for (a, b) in zip(list, list.dropFirst()) { XCTAssertEqual(a.end, b.start, accuracy: 0.0005, "cues are contiguous") }
        XCTAssertEqual(list.last?.end ?? 0, 13, accuracy: 0.05, "the last cue ends at the end of the clip")
        XCTAssertEqual(list.map(\.sheet), Array(repeating: "b-01.png", count: 6) + ["b-02.png"])
        XCTAssertEqual(list.map { "\($0.x),\($0.y)" }, ["0,0", "160,0", "320,0", "0,90", "160,90", "320,90", "0,0"])
        // Each tile (PNG: lossless) is the ffmpeg command's frame at its time
        // (accurate seek: the first frame at or after it), scaled to the
        // tile's size, and not the one a second away.
        let work = NSTemporaryDirectory() + "storyboard-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        var figures: [String] = []
        for (k, c) in list.enumerated() {
            let tile = "\(work)/tile\(k).png", want = "\(work)/want\(k).y4m", later = "\(work)/later\(k).y4m"
            Fixtures.ffmpeg(["-i", m + "/boards/" + c.sheet, "-vf", "crop=\(c.w):\(c.h):\(c.x):\(c.y)", tile])
            // The frame a second away: later, or for the last tile earlier.
            let away = c.start + 1 < 13 ? c.start + 1 : c.start - 1
            for (t, file) in [(c.start, want), (away, later)] {
                Fixtures.ffmpeg(["-ss", "\(t)", "-i", m + "/board/clip.mp4", "-frames:v", "1", "-vf", "scale=160:90", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", file])
            }
            let same = yuvPSNR(tile, want), other = yuvPSNR(tile, later)
            figures.append(String(format: "%.1f/%.1f", same, other))
            XCTAssertGreaterThanOrEqual(same, 30, "tile \(k) at \(c.start) s against the command's frame")
            XCTAssertGreaterThan(other, 10, "the frame a second away was made")
            XCTAssertGreaterThan(same, other + 3, "tile \(k) is the frame at \(c.start) s, not one a second away (\(same) vs \(other) dB)")
        }
        // One forward pass: reference frames only between tiles, so fewer
        // frames decoded than the clip has (390).
        let line = try XCTUnwrap(h.log(0).split(separator: "\n").first { $0.contains("JOB_ID=sb ") && $0.contains("frames for 7 times") })
        let decoded = Int(line.components(separatedBy: "decoded ").last!.split(separator: " ").first!)!
        XCTAssertLessThan(decoded, 300, "B-frames far from a tile are skipped (\(decoded) decoded; about 361 without skipping)")
        print("storyboard: 7 tiles of a 13 s clip, \(decoded) of 390 frames decoded; PSNR dB against the command's frame / the frame 1 s away: \(figures.joined(separator: " "))")
        h.stopAll()
    }

    /// Frames that carry their number as their grey level (20 + 2N): each
    /// tile must be frame ceil(t x 25), the first at or after its time, in
    /// an MP4 with B-frames and in an MPEG-TS that starts at 1.4 s.
    func testEveryTileIsTheFirstFrameAtOrAfterItsTime() throws {
        let h = SpoolHarness(self)
        let m = h.media.string
        Fixtures.greyRamp(m + "/grey/n.mp4", seconds: 4, codec: ["-c:v", "libx264", "-qp", "2", "-x264-params", "bframes=3:b-adapt=0:keyint=50"])
        Fixtures.ffmpeg(["-i", m + "/grey/n.mp4", "-c", "copy", "-f", "mpegts", m + "/grey/n.ts"])
        h.start(workers: 2)
        for ext in ["mp4", "ts"] {
            h.submit("n-\(ext)", #"{"version":1,"type":"thumbnail","input":"grey/n.\#(ext)","width":64,"storyboard":{"interval":0.37,"columns":4,"rows":3,"vtt":"grey-\#(ext)/n.vtt"},"output":{"path":"grey-\#(ext)/n-%d.png"}}"#)
        }
        eventually(stall: 60, "both storyboards ended", progress: { h.finishedCount }) { h.finishedCount == 2 }
        // Each frame's grey level after the same scale and conversion.
        let ramp = GreyRamp(m + "/grey/n.mp4")
        XCTAssertEqual(ramp.levels.count, 100)
        for ext in ["mp4", "ts"] {
            XCTAssertNotNil(h.result("n-\(ext)"), h.error("n-\(ext)")?.message ?? "")
            var chosen: [Int] = []
            for k in 0..<11 {
                let time = Double(k) * 0.37
                let want = Int((time * 25 - 0.001).rounded(.up))
                guard let g = GreyRamp.level(of: m + "/grey-\(ext)/n-1.png", tile: k, columns: 4) else { XCTFail("tile \(k) of \(ext) not read"); continue }
                // The nearest frame by grey level (frames are ~2.3 levels apart).
                let n = ramp.frame(of: g)
                chosen.append(n)
                XCTAssertEqual(n, want, "\(ext) tile \(k) at \(time) s is frame \(n), not \(want)")
            }
            print("storyboard: \(ext) tiles are frames \(chosen)")
        }
        h.stopAll()
    }

    /// Keyframes at 0, 0.5 and 1 s and none after: a seek to the keyframe
    /// before 2 s lands where the last one did, and an earlier version
    /// sought there again and again until the timeout. The pass must end,
    /// in one reading of the file, with every tile right.
    func testIrregularKeyframesEndInOnePass() throws {
        let h = SpoolHarness(self)
        let m = h.media.string
        Fixtures.greyRamp(m + "/irr/k.mp4", seconds: 12, codec: ["-c:v", "libx264", "-qp", "2", "-x264-params", "bframes=3:b-adapt=0:keyint=1000:scenecut=0",
                                                                 "-force_key_frames", "0,0.5,1"])
        h.start(workers: 1, env: ["MEDIASPOOL_LOG_LEVEL": "debug"])
        h.submit("irr", #"{"version":1,"type":"thumbnail","input":"irr/k.mp4","timeoutSeconds":120,"width":64,"storyboard":{"interval":2,"columns":3,"rows":2,"vtt":"irr-out/k.vtt"},"output":{"path":"irr-out/k-%d.png"}}"#)
        eventually(stall: 60, "the storyboard ended", progress: { h.finishedCount }) { h.finishedCount == 1 }
        XCTAssertNotNil(h.result("irr"), h.error("irr")?.message ?? "")
        let line = try XCTUnwrap(h.log(0).split(separator: "\n").first { $0.contains("JOB_ID=irr ") && $0.contains("frames for 6 times") })
        let decoded = Int(line.components(separatedBy: "decoded ").last!.split(separator: " ").first!)!
        XCTAssertLessThanOrEqual(decoded, 300, "one reading of the 300 frames at most")
        let ramp = GreyRamp(m + "/irr/k.mp4")
        XCTAssertEqual(ramp.levels.count, 300)
        for k in 0..<6 {
            XCTAssertTrue(ramp.isFrame(k * 50, GreyRamp.level(of: m + "/irr-out/k-1.png", tile: k, columns: 3)), "tile \(k) is frame \(k * 50)")
        }
        h.stopAll()
    }
}
