import Foundation
import SpoolKit
import SystemPackage
import XCTest

/// What ffprobe (the reference tool, allowed in tests) sees in a file.
struct Probed {
    struct S { var type: String; var codec: String; var width: Int?; var height: Int?; var frames: Int?; var fps: Double?; var rate: Int?; var channels: Int? }
    var duration: Double
    var streams: [S]
    var video: S? { streams.first { $0.type == "video" } }
    var audio: S? { streams.first { $0.type == "audio" } }

    init?(_ path: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let j = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        duration = Double((j["format"] as? [String: Any])?["duration"] as? String ?? "") ?? 0
        streams = ((j["streams"] as? [[String: Any]]) ?? []).map { s in
            let fr = (s["avg_frame_rate"] as? String ?? "0/1").split(separator: "/").compactMap { Double($0) }
            return S(type: s["codec_type"] as? String ?? "", codec: s["codec_name"] as? String ?? "",
                     width: s["width"] as? Int, height: s["height"] as? Int,
                     frames: Int(s["nb_read_frames"] as? String ?? ""),
                     fps: fr.count == 2 && fr[1] > 0 ? fr[0] / fr[1] : nil,
                     rate: Int(s["sample_rate"] as? String ?? ""), channels: s["channels"] as? Int)
        }
    }
}

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
        h.submit("slow", transcode("clips/long.mp4", "out/slow.mp4", video: #""codec":"hevc","preset":"veryslow""#, extra: #","timeoutSeconds":1,"maxAttempts":1"#))
        let t0 = Date()
        eventually(30, "slow failed") { h.error("slow") != nil }
        let took = Date().timeIntervalSince(t0)
        print("timeout: a 1 s job ended after \(String(format: "%.2f", took)) s")
        XCTAssertEqual(h.error("slow")?.code, "TIMEOUT")
        XCTAssertLessThan(took, 4, "no job outlives its timeout by more than a second or two")
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

final class AudioJobTests: XCTestCase {
    func testLoudnessNormalisationLandsWithin1LUAndFormatsConvert() throws {
        let h = SpoolHarness(self)
        h.start(workers: 2)
        func audio(_ input: String, _ out: String, loud: String = "", settings: String = "") -> String {
            #"{"version":1,"type":"audio","input":"\#(input)"\#(loud.isEmpty ? "" : #","loudness":{\#(loud)}"#),"output":{"path":"\#(out)"\#(settings.isEmpty ? "" : #","audio":{\#(settings)}"#)}}"#
        }
        let jobs = [
            ("loud16", audio("sound/a1.wav", "talks/ep-16.m4a", loud: #""targetLufs":-16,"truePeak":-1.5"#, settings: #""codec":"aac","bitrateKbps":128"#)),
            ("loud23", audio("sound/six.m4a", "talks/ep-23.m4a", loud: #""targetLufs":-23"#)),
            ("extract", audio("clips/v1.mp4", "talks/from-video.opus")),
            ("flac", audio("sound/a1.wav", "talks/a1.flac")),
            ("wav", audio("clips/v1.mp4", "talks/a1.wav", settings: #""sampleRate":16000,"channels":1"#)),
        ]
        for (id, body) in jobs { h.submit(id, body) }
        eventually(60, "audio jobs finished") { h.finishedCount == jobs.count }
        for (id, _) in jobs { XCTAssertNotNil(h.result(id), "\(id): \(h.error(id)?.message ?? "")") }
        let m = h.media.string
        let before = try XCTUnwrap(measuredLUFS(m + "/sound/a1.wav"))
        let l16 = try XCTUnwrap(measuredLUFS(m + "/talks/ep-16.m4a"))
        let l23 = try XCTUnwrap(measuredLUFS(m + "/talks/ep-23.m4a"))
        print("loudness: a1.wav \(before) LUFS -> \(l16) (target -16); six.m4a -> \(l23) (target -23)")
        XCTAssertGreaterThan(abs(before - (-16)), 2, "the input is not already at the target (else the test proves nothing)")
        XCTAssertEqual(l16, -16, accuracy: 1.0)
        XCTAssertEqual(l23, -23, accuracy: 1.0)
        XCTAssertEqual(h.result("loud16")?.steps.map(\.name), ["measure-loudness", "decode+encode"])
        let p16 = try XCTUnwrap(Probed(m + "/talks/ep-16.m4a"))
        XCTAssertEqual(p16.audio?.codec, "aac"); XCTAssertNil(p16.video); XCTAssertEqual(p16.duration, 3, accuracy: 0.1)
        let op = try XCTUnwrap(Probed(m + "/talks/from-video.opus"))
        XCTAssertEqual(op.audio?.codec, "opus"); XCTAssertNil(op.video); XCTAssertEqual(op.audio?.rate, 48000); XCTAssertEqual(op.duration, 2, accuracy: 0.1)
        let fl = try XCTUnwrap(Probed(m + "/talks/a1.flac"))
        XCTAssertEqual(fl.audio?.codec, "flac"); XCTAssertEqual(fl.audio?.rate, 44100)
        let wv = try XCTUnwrap(Probed(m + "/talks/a1.wav"))
        XCTAssertEqual(wv.audio?.codec, "pcm_s16le"); XCTAssertEqual(wv.audio?.rate, 16000); XCTAssertEqual(wv.audio?.channels, 1)
        h.stopAll()
    }
}

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
        XCTAssertEqual(h.error("past-end")?.code, "INPUT_INVALID")
        XCTAssertEqual(h.error("no-video")?.code, "INPUT_INVALID")
        h.stopAll()
    }
}

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
        eventually(120, "compose jobs finished") { h.finishedCount == 6 }
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
}

final class ProgressAndMemoryTests: XCTestCase {
    func rssKiB(_ pid: Int32) -> Int {
        let s = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        return Int(s.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    func testStatusShowsProgressOfARunningTranscode() throws {
        let h = SpoolHarness(self)
        h.start(workers: 1)
        h.submit("slow", #"{"version":1,"type":"transcode","input":"clips/long.mp4","output":{"path":"out/slow.mp4","video":{"codec":"hevc","preset":"slow"}},"timeoutSeconds":120}"#)
        var seen: [Double] = []
        eventually(60, "progress reported twice, growing") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: mediaspoolBinary)
            p.arguments = ["status", "--json", "--spool", h.root.string]
            let pipe = Pipe()
            p.standardOutput = pipe
            try? p.run()
            let d = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            if let st = try? JSONDecoder().decode(Inspector.Status.self, from: d), let r = st.running.first(where: { $0.id == "slow" }),
               r.step == "transcode", let f = r.fraction, f > 0, f < 1 {
                XCTAssertEqual(r.type, "transcode"); XCTAssertEqual(r.attempt, 1)
                if seen.last.map({ f > $0 }) ?? true { seen.append(f) }
            }
            return seen.count >= 2
        }
        print("progress: status showed fractions \(seen)")
        h.stopAll(signal: SIGKILL)
    }

    func testMemoryDoesNotGrowAcrossJobs() throws {
        let h = SpoolHarness(self)
        let d = h.start(workers: 1)
        func batch(_ from: Int, _ to: Int) {
            for i in from..<to {
                h.submit("m\(i)", #"{"version":1,"type":"transcode","input":"clips/v1.mp4","output":{"path":"out/m\#(i).mp4","video":{"height":120,"preset":"ultrafast"}}}"#)
            }
            eventually(120, "batch done") { (from..<to).allSatisfy { h.result("m\($0)") != nil } }
        }
        batch(0, 4)
        let after4 = rssKiB(d.processIdentifier)
        batch(4, 24)
        let after24 = rssKiB(d.processIdentifier)
        print("memory: RSS \(after4 / 1024) MiB after 4 transcodes, \(after24 / 1024) MiB after 24")
        XCTAssertLessThan(Double(after24 - after4), 16 * 1024 * testMemoryScale, "no leak per job: FFmpeg objects are freed with their owners")
        h.stopAll()
    }
}

func sha256File(_ path: String) -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    p.arguments = [path]
    let pipe = Pipe()
    p.standardOutput = pipe
    try? p.run()
    let d = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(String(decoding: d, as: UTF8.self).prefix(64))
}
