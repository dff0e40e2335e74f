import Foundation
import SpoolKit
import SystemPackage
import XCTest

final class PipelineTests: XCTestCase {
    func run(_ jobs: [(String, String)], env: [String: String] = [:], timeout: Double = 120) -> SpoolHarness {
        let h = SpoolHarness(self)
        h.start(workers: 2, env: ["MEDIASPOOL_LOG_LEVEL": "debug"].merging(env) { $1 })
        for (id, body) in jobs { h.submit(id, body) }
        eventually(timeout, "\(jobs.count) jobs finished") { h.finishedCount == jobs.count }
        return h
    }

    func transcode(_ input: String, _ output: String, trim: String = "", video: String = "", audio: String = "", extra: String = "") -> String {
        var out = #"{"path":"\#(output)""#
        if !video.isEmpty { out += #","video":{\#(video)}"# }
        if !audio.isEmpty { out += #","audio":{\#(audio)}"# }
        out += "}"
        return #"{"version":1,"type":"transcode","input":"\#(input)"\#(trim.isEmpty ? "" : #","trim":{\#(trim)}"#),"output":\#(out)\#(extra)}"#
    }

    func testTranscodeVariantsDecodeToWhatWasAskedFor() throws {
        let h = run([
            ("h264", transcode("clips/v1.mp4", "out/h264.mp4", trim: #""start":0.5,"duration":1.0"#,
                               video: #""height":120,"crf":23,"preset":"veryfast""#, audio: #""bitrateKbps":96"#)),
            ("webm", transcode("clips/v1.mp4", "out/a.webm", video: #""width":160,"fps":10"#)),
            ("hevc", transcode("clips/v2.mkv", "out/hevc.mp4", video: #""codec":"hevc","preset":"ultrafast""#)),
            ("av1", transcode("clips/v2.mkv", "out/av1.mkv", video: #""codec":"av1""#)),
            ("remux", transcode("clips/v1.mp4", "out/remux.mkv", video: #""codec":"copy""#, audio: #""codec":"copy""#)),
            ("downmix", transcode("sound/six.m4a", "out/stereo.m4a")),
            ("mono-mp3", transcode("clips/v1.mp4", "out/mono.mp3", audio: #""channels":1,"sampleRate":22050"#)),
            ("mov", transcode("clips/v2.mkv", "out/a.mov", video: #""codec":"h264","bitrateKbps":300,"pixelFormat":"yuv422p","preset":"ultrafast""#)),
            ("m4v", transcode("clips/v1.mp4", "out/a.m4v", video: #""fps":5,"preset":"ultrafast""#)),
            ("ogg", transcode("clips/v1.mp4", "out/a.ogg")),
        ])
        for id in ["h264", "webm", "hevc", "av1", "remux", "downmix", "mono-mp3", "mov", "m4v", "ogg"] {
            XCTAssertNotNil(h.result(id), "\(id): \(h.error(id)?.message ?? "no record")")
        }
        let media = h.media.string
        // h264: trimmed to 1.0 s of 25 fps, scaled to 160x120 (aspect kept, even).
        let a = try XCTUnwrap(Probed(media + "/out/h264.mp4"))
        XCTAssertEqual(a.duration, 1.0, accuracy: 0.05)
        XCTAssertEqual(a.video?.codec, "h264"); XCTAssertEqual(a.video?.width, 160); XCTAssertEqual(a.video?.height, 120)
        XCTAssertEqual(a.video?.frames, 25)
        XCTAssertEqual(a.audio?.codec, "aac"); XCTAssertEqual(a.audio?.rate, 48000); XCTAssertEqual(a.audio?.channels, 2)
        let rec = try XCTUnwrap(h.result("h264")?.outputs.first)
        XCTAssertEqual(rec.path, "out/h264.mp4"); XCTAssertEqual(rec.videoCodec, "h264"); XCTAssertEqual(rec.audioCodec, "aac")
        XCTAssertEqual(rec.width, 160); XCTAssertEqual(rec.durationSeconds ?? 0, 1.0, accuracy: 0.05)
        XCTAssertEqual(rec.sizeBytes, Int64((try FileManager.default.attributesOfItem(atPath: media + "/out/h264.mp4")[.size] as? Int) ?? -1))
        XCTAssertEqual(rec.sha256.count, 64)
        XCTAssertEqual(rec.sha256, sha256File(media + "/out/h264.mp4"))
        // webm: vp9 + opus by default, 10 fps -> 20 frames in 2 s.
        let w = try XCTUnwrap(Probed(media + "/out/a.webm"))
        XCTAssertEqual(w.video?.codec, "vp9"); XCTAssertEqual(w.audio?.codec, "opus")
        XCTAssertEqual(w.video?.width, 160); XCTAssertEqual(w.video?.height, 120); XCTAssertEqual(w.video?.frames, 20)
        XCTAssertEqual(w.duration, 2.0, accuracy: 0.1)
        // hevc and av1 from mpeg4, 10 frames each.
        let hv = try XCTUnwrap(Probed(media + "/out/hevc.mp4"))
        XCTAssertEqual(hv.video?.codec, "hevc"); XCTAssertEqual(hv.video?.frames, 10); XCTAssertNil(hv.audio)
        let av = try XCTUnwrap(Probed(media + "/out/av1.mkv"))
        XCTAssertEqual(av.video?.codec, "av1"); XCTAssertEqual(av.video?.frames, 10)
        // remux: same codecs and frame count, and no decoder was opened for it.
        let r = try XCTUnwrap(Probed(media + "/out/remux.mkv"))
        XCTAssertEqual(r.video?.codec, "h264"); XCTAssertEqual(r.video?.frames, 50); XCTAssertEqual(r.audio?.codec, "aac")
        XCTAssertEqual(r.duration, 2.0, accuracy: 0.1)
        let logLines = h.log(0).split(separator: "\n")
        XCTAssertFalse(logLines.contains { $0.contains("JOB_ID=remux") && $0.contains("opened decoder") }, "a remux opens no decoder")
        XCTAssertTrue(logLines.contains { $0.contains("JOB_ID=h264") && $0.contains("opened decoder h264") }, "decoders are logged (else the line above proves nothing)")
        XCTAssertEqual(h.result("remux")?.steps.first?.name, "remux")
        // 5.1 -> stereo.
        let d = try XCTUnwrap(Probed(media + "/out/stereo.m4a"))
        XCTAssertEqual(d.audio?.channels, 2); XCTAssertEqual(d.duration, 2.0, accuracy: 0.1); XCTAssertNil(d.video)
        let m = try XCTUnwrap(Probed(media + "/out/mono.mp3"))
        XCTAssertEqual(m.audio?.codec, "mp3"); XCTAssertEqual(m.audio?.channels, 1); XCTAssertEqual(m.audio?.rate, 22050)
        let mov = try XCTUnwrap(Probed(media + "/out/a.mov"))
        XCTAssertEqual(mov.video?.codec, "h264"); XCTAssertEqual(mov.video?.frames, 10); XCTAssertEqual(mov.video?.width, 160)
        let m4v = try XCTUnwrap(Probed(media + "/out/a.m4v"))
        XCTAssertEqual(m4v.video?.frames, 10, "2 s at 5 fps"); XCTAssertEqual(m4v.audio?.codec, "aac")
        let ogg = try XCTUnwrap(Probed(media + "/out/a.ogg"))
        XCTAssertEqual(ogg.audio?.codec, "opus"); XCTAssertNil(ogg.video); XCTAssertEqual(ogg.duration, 2, accuracy: 0.1)
        h.stopAll()
        XCTAssertEqual(h.temporaryFiles, [])
    }

    func testBadMediaAndImpossibleRequestsFailCleanly() throws {
        let h = run([
            ("garbage", transcode("clips/garbage.mp4", "out/g.mp4")),
            ("truncated", transcode("clips/truncated.mp4", "out/t.mp4")),
            ("copy-scale", transcode("clips/v1.mp4", "out/c.mp4", video: #""codec":"copy","height":120"#)),
            ("vp9-mov", transcode("clips/v1.mp4", "out/x.mov", video: #""codec":"vp9""#)),
            ("outside", transcode("clips/v1.mp4", "/etc/x.mp4")),
            ("no-video-stream", transcode("sound/a1.wav", "out/nv.mp4", audio: #""codec":"none""#)),
        ])
        XCTAssertEqual(h.error("garbage")?.code, "INPUT_INVALID")
        XCTAssertEqual(h.error("copy-scale")?.code, "UNSUPPORTED")
        XCTAssertEqual(h.error("vp9-mov")?.code, "UNSUPPORTED")
        XCTAssertEqual(h.error("outside")?.code, "OUTPUT_NOT_ALLOWED")
        XCTAssertEqual(h.error("no-video-stream")?.code, "INPUT_INVALID")
        // A truncated mp4 (moov at the end, cut off) is refused as invalid, or
        // decodes what is there; never a crash or a partial file.
        if let e = h.error("truncated") { XCTAssertEqual(e.code, "INPUT_INVALID") }
        let out = (try? FileManager.default.contentsOfDirectory(atPath: h.media.string + "/out")) ?? []
        XCTAssertEqual(out.filter { $0.hasPrefix(".") }, [], "no partial output")
        XCTAssertFalse(out.contains("g.mp4")); XCTAssertFalse(out.contains("c.mp4"))
        XCTAssertTrue(h.daemons[0].isRunning, "the daemon is still alive")
        h.stopAll()
    }

    func testTimeoutInterruptsFFmpegWithinASecondOrTwo() throws {
        let h = SpoolHarness(self)
        h.start(workers: 1)
        // x264 veryslow: unstopped it runs for tens of seconds, and each
        // frame is short. (With x265 veryslow, whose frames take far longer,
        // a 1 s job ended after 5.4 s on a machine running a CI beside the
        // test; x264 veryslow ended after 2.1-2.2 s there.)
        h.submit("slow", transcode("clips/long.mp4", "out/slow.mp4", video: #""codec":"h264","preset":"veryslow""#, extra: #","timeoutSeconds":1,"maxAttempts":1"#))
        eventually(30, "slow failed") { h.error("slow") != nil }
        // The daemon's own times (claim to failure), not the test's clock:
        // the submission and the polling do not count, a loaded machine
        // counts less.
        let record = try XCTUnwrap(h.error("slow"))
        XCTAssertEqual(record.code, "TIMEOUT")
        let started = try XCTUnwrap(record.history.last.flatMap { RFC3339.date($0.startedAt) })
        let took = try XCTUnwrap(RFC3339.date(record.failedAt)).timeIntervalSince(started)
        print("timeout: a 1 s job ended after \(String(format: "%.2f", took)) s")
        XCTAssertLessThan(took, 5, "no job outlives its timeout by more than a few seconds")
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.media.string + "/out/slow.mp4"))
        XCTAssertEqual(h.temporaryFiles, [])
        h.stopAll()
    }

}

/// Integrated loudness of a file, measured by the ffmpeg command's ebur128
/// (the reference peer).
func measuredLUFS(_ path: String) -> Double? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", path, "-af", "ebur128", "-f", "null", "-"]
    let pipe = Pipe()
    p.standardError = pipe
    p.standardOutput = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return nil }
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    // The summary at the end: "    I:         -16.0 LUFS"
    guard let summary = text.range(of: "Summary:", options: .backwards) else { return nil }
    for line in text[summary.upperBound...].split(separator: "\n") {
        let t = line.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("I:") { return Double(t.dropFirst(2).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") }
    }
    return nil
}
