import Foundation
import SpoolKit
import SystemPackage
import XCTest

/// Issue 14: phone and camera footage, judged against the ffmpeg command.
/// Each trait of real uploads is made from lavfi media with the ffmpeg
/// command, or by writing the container field directly where the command
/// cannot (a mirrored display matrix in `tkhd`). mediaspool's transcode and
/// still of each file are compared with what the ffmpeg command makes with
/// the same settings: display size and aspect, no display matrix left,
/// colour tags, duration within a frame, and PSNR of the decoded pictures.
final class RealWorldMediaTests: XCTestCase {
    /// One file of the corpus.
    struct Trait {
        var name: String
        var file: String
        /// What the ffmpeg command needs besides its own autorotate and
        /// scale to do what mediaspool does by default (deinterlace, tone map).
        var refFilters: [String] = []
        /// Colour tags (primaries, transfer, matrix) the output must have.
        var colour: [String]? = nil
        /// The rotation `probe` reports (clockwise degrees to show it upright).
        var rotation = 0
        var field: String? = nil
        /// The colour range the output must have, where the command leaves it unknown.
        var range: String? = nil
    }

    static let toneMap = ["zscale=transfer=linear:npl=100", "format=gbrpf32le", "zscale=primaries=bt709",
                          "tonemap=tonemap=hable:desat=0", "zscale=transfer=bt709:matrix=bt709:range=limited", "format=yuv420p10le"]

    static let traits: [Trait] = [
        Trait(name: "rot90", file: "rw/rot90.mp4", rotation: 90),
        Trait(name: "rot180", file: "rw/rot180.mp4", rotation: 180),
        Trait(name: "rot270", file: "rw/rot270.mp4", rotation: 270),
        Trait(name: "hflip", file: "rw/hflip.mp4", rotation: 180),
        Trait(name: "sar64", file: "rw/sar64.mp4"),
        Trait(name: "sar8", file: "rw/sar8.mkv"),
        Trait(name: "hdr10", file: "rw/hdr10.mp4", refFilters: toneMap, colour: ["bt709", "bt709", "bt709"]),
        Trait(name: "hlg", file: "rw/hlg.mkv", refFilters: toneMap, colour: ["bt709", "bt709", "bt709"]),
        Trait(name: "vfr", file: "rw/vfr.mp4"),
        Trait(name: "tff", file: "rw/tff.mp4", refFilters: ["bwdif=mode=send_frame:parity=auto:deint=all"], field: "tff"),
        Trait(name: "bff", file: "rw/bff.ts", refFilters: ["bwdif=mode=send_frame:parity=auto:deint=all"], field: "bff"),
        Trait(name: "moovend", file: "rw/moovend.mp4"),
        Trait(name: "fmp4", file: "rw/fmp4.mp4"),
        Trait(name: "data", file: "rw/data.mov"),
        Trait(name: "attach", file: "rw/attach.mkv"),
        Trait(name: "phone", file: "rw/phone.mov", rotation: 90),
        Trait(name: "fullrange", file: "rw/fullrange.mp4"),
        // RGB converted to YUV by swscale's BT.601: tagged so (the command leaves it unknown).
        Trait(name: "rgb", file: "rw/rgb.mkv", colour: ["unknown", "unknown", "smpte170m"], range: "tv"),
        Trait(name: "tsbt709", file: "rw/bt709.ts", colour: ["bt709", "bt709", "bt709"]),
    ]

    /// The corpus, made once per run.
    static let corpus: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("mediaspool-rw-\(getpid())")
        try? FileManager.default.removeItem(at: d)
        try! FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        func p(_ n: String) -> String { d.appendingPathComponent(n).path }
        let ff = Fixtures.ffmpeg
        let src = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-f", "lavfi", "-i", "sine=frequency=440:duration=2"]
        let x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-pix_fmt", "yuv420p"]
        ff(src + x264 + ["-c:a", "aac", "-shortest", p("base.mp4")])
        // Phone rotation: the legacy rotate tag becomes the tkhd display matrix.
        for (name, tag) in [("rot90", "270"), ("rot180", "180"), ("rot270", "90")] {
            ff(["-i", p("base.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=\(tag)", p("\(name).mp4")])
        }
        // A mirrored picture (front cameras): no command writes it, so tkhd is patched.
        ff(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2"] + x264 + [p("hflip.mp4")])
        patchTkhdMatrix(p("hflip.mp4"), [-65536, 0, 0, 0, 65536, 0, 320 << 16, 0, 1 << 30])
        // Anamorphic: 16:9 PAL and 4:3 NTSC DV; the PAL one also turned a quarter.
        ff(["-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25:duration=1", "-vf", "setsar=64/45"] + x264 + [p("sar64.mp4")])
        ff(["-i", p("sar64.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", p("rotsar.mp4")])
        ff(["-f", "lavfi", "-i", "testsrc2=size=720x480:rate=30000/1001:duration=1", "-vf", "setsar=8/9"] + x264 + [p("sar8.mkv")])
        // HDR10 (PQ) and HLG, 10-bit HEVC with their tags.
        for (name, trc) in [("hdr10.mp4", "smpte2084"), ("hlg.mkv", "arib-std-b67")] {
            ff(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1", "-vf", "format=yuv420p10le",
                "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:colorprim=bt2020:transfer=\(trc):colormatrix=bt2020nc",
                "-color_primaries", "bt2020", "-color_trc", trc, "-colorspace", "bt2020nc", p(name)])
        }
        // Variable frame rate: 25 fps, then 12.5, then 25 again.
        ff(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
            "-vf", "select='not(between(n,25,49)*mod(n,2))'", "-vsync", "vfr"] + x264 + ["-c:a", "aac", "-shortest", p("vfr.mp4")])
        // Interlaced camera footage, top and bottom field first.
        ff(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=50:duration=2", "-vf", "tinterlace=interleave_top,fieldorder=tff",
            "-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ildct+ilme", "-x264-params", "tff=1", p("tff.mp4")])
        ff(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=50:duration=2", "-vf", "tinterlace=interleave_bottom,fieldorder=bff",
            "-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ildct+ilme", "-x264-params", "bff=1", "-f", "mpegts", p("bff.ts")])
        // Containers: moov at the end (the command's default), fragmented, a timecode data track, an attachment.
        ff(["-i", p("base.mp4"), "-c", "copy", p("moovend.mp4")])
        ff(src + x264 + ["-g", "25", "-c:a", "aac", "-shortest", "-movflags", "frag_keyframe+empty_moov+default_base_moof", p("fmp4.mp4")])
        ff(["-i", p("base.mp4"), "-c", "copy", "-timecode", "01:00:00:00", p("data.mov")])
        try! Data("notes\n".utf8).write(to: d.appendingPathComponent("notes.txt"))
        // MKV with an attachment and a subtitle track.
        try! Data("1\n00:00:00,000 --> 00:00:01,500\nhello\n\n".utf8).write(to: d.appendingPathComponent("subs.srt"))
        ff(["-i", p("base.mp4"), "-i", p("subs.srt"), "-map", "0", "-map", "1", "-c", "copy", "-c:s", "srt",
            "-attach", p("notes.txt"), "-metadata:s:t", "mimetype=text/plain", p("attach.mkv")])
        // A phone's MOV: HEVC with B-frames, AAC, a timecode track, portrait by its matrix.
        ff(src + ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-tag:v", "hvc1", "-pix_fmt", "yuv420p",
                  "-c:a", "aac", "-shortest", "-timecode", "00:00:00:00", p("phone-flat.mov")])
        ff(["-i", p("phone-flat.mov"), "-map", "0", "-c", "copy", "-metadata:s:v:0", "rotate=270", p("phone.mov")])
        ff(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-f", "lavfi", "-i", "sine=frequency=440:duration=2"] + x264
            + ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-c:a", "aac", "-shortest", "-f", "mpegts", p("bt709.ts")])
        // Full range (yuvj420p, as some phones and webcams write it).
        ff(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuvj420p", p("fullrange.mp4")])
        // A screen recording in RGB (libx264rgb).
        ff(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-c:v", "libx264rgb", "-preset", "ultrafast", "-pix_fmt", "bgr0", p("rgb.mkv")])
        // Two audio tracks, the second (a tone) flagged default, the first silent.
        ff(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo",
            "-f", "lavfi", "-i", "sine=frequency=1000:duration=2", "-map", "0:v", "-map", "1:a", "-map", "2:a", "-t", "2"] + x264
            + ["-c:a", "aac", "-disposition:a:0", "0", "-disposition:a:1", "default", p("twoaudio.mp4")])
        // Odd layouts: 5.1(side), 7.1, mono.
        for (name, layout) in [("side51.mkv", "5.1(side)"), ("s71.mkv", "7.1"), ("mono.m4a", "mono")] {
            ff(["-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-af", "aformat=channel_layouts=\(layout)", "-c:a", name.hasSuffix(".m4a") ? "aac" : "flac", p(name)])
        }
        return d
    }()

    /// Writes a display matrix into the first `tkhd` box (the only track of
    /// a video-only file): what a front camera's mirrored clip carries.
    static func patchTkhdMatrix(_ path: String, _ m: [Int32]) {
        var bytes = [UInt8](try! Data(contentsOf: URL(fileURLWithPath: path)))
        let tag = Array("tkhd".utf8)
        guard let at = (0..<(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == tag }) else { preconditionFailure("no tkhd in \(path)") }
        let version = bytes[at + 4]
        var o = at + 4 + 4 + (version == 1 ? 32 : 20) + 16
        for v in m {
            let u = UInt32(bitPattern: v)
            bytes[o] = UInt8(u >> 24); bytes[o + 1] = UInt8(u >> 16 & 0xff); bytes[o + 2] = UInt8(u >> 8 & 0xff); bytes[o + 3] = UInt8(u & 0xff)
            o += 4
        }
        try! Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    func install(_ h: SpoolHarness) {
        let dst = h.media.appending("rw").string
        try? FileManager.default.removeItem(atPath: dst)
        try! FileManager.default.copyItem(atPath: Self.corpus.path, toPath: dst)
    }

    func testEveryTraitComesOutLikeTheFfmpegCommandsOutput() throws {
        let h = SpoolHarness(self)
        install(h)
        h.start(workers: 2)
        let media = h.media.string
        for t in Self.traits {
            h.submit("p-\(t.name)", probeManifest(t.file))
            h.submit("t-\(t.name)", #"{"version":1,"type":"transcode","input":"\#(t.file)","output":{"path":"out/\#(t.name).mp4","video":{"height":240,"preset":"ultrafast","crf":18}}}"#)
            h.submit("s-\(t.name)", #"{"version":1,"type":"thumbnail","input":"\#(t.file)","at":[0.6],"width":160,"output":{"path":"out/\#(t.name).jpg"}}"#)
        }
        // The references, made while the daemon works.
        let ref = FileManager.default.temporaryDirectory.appendingPathComponent("mediaspool-rw-ref-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: ref, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: ref) }
        for t in Self.traits {
            let input = "\(media)/\(t.file)"
            Fixtures.ffmpeg(["-i", input, "-vf", (t.refFilters + ["scale=-2:240", "format=yuv420p"]).joined(separator: ","), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18",
                             "-vsync", "passthrough", "-c:a", "aac", ref.appendingPathComponent("\(t.name).mp4").path])
            // The still: the frame at 0.6 s, square pixels, BT.601 full-range JPEG from the source's matrix.
            let matrix = t.colour != nil || t.refFilters.contains(where: { $0.hasPrefix("zscale") }) ? "bt709" : "bt601"
            Fixtures.ffmpeg(["-i", input, "-ss", "0.6", "-frames:v", "1", "-vf",
                             (t.refFilters + ["scale=trunc(iw*sar/2)*2:ih", "setsar=1", "scale=160:-2:in_color_matrix=\(matrix):out_color_matrix=bt601:out_range=full", "setsar=1"]).joined(separator: ","),
                             "-pix_fmt", "yuvj420p", ref.appendingPathComponent("\(t.name).jpg").path])
        }
        eventually(stall: 90, "every job ended", progress: { h.finishedCount }) { Self.traits.allSatisfy { t in ["p", "t", "s"].allSatisfy { h.result("\($0)-\(t.name)") != nil || h.hasFailed("\($0)-\(t.name)") } } }

        var syncChecked = 0
        for t in Self.traits {
            // probe: rotation and display size beside the stored ones.
            guard let probe = h.result("p-\(t.name)")?.probe, let pv = probe.streams.first(where: { $0.type == "video" }) else {
                XCTFail("\(t.name): probe failed: \(h.error("p-\(t.name)")?.message ?? "no record")"); continue
            }
            XCTAssertEqual(pv.rotation, t.rotation, "\(t.name): probe rotation")
            if let f = t.field { XCTAssertEqual(pv.fieldOrder, f, "\(t.name): field order") }

            // transcode, against the command's.
            guard h.result("t-\(t.name)") != nil else { XCTFail("\(t.name): transcode failed: \(h.error("t-\(t.name)")?.message ?? "no record")"); continue }
            let ours = try XCTUnwrap(VideoFacts("\(media)/out/\(t.name).mp4"), t.name)
            let theirs = try XCTUnwrap(VideoFacts(ref.appendingPathComponent("\(t.name).mp4").path), t.name)
            XCTAssertNil(ours.rotation, "\(t.name): no display matrix left after applying it")
            XCTAssertEqual(ours.displayWidth, theirs.displayWidth, accuracy: max(2, theirs.displayWidth * 0.01), "\(t.name): display width \(ours) vs \(theirs)")
            XCTAssertEqual(ours.height, theirs.height, "\(t.name): height")
            XCTAssertEqual(ours.displayAspect, theirs.displayAspect, accuracy: theirs.displayAspect * 0.01, "\(t.name): display aspect")
            // Tags as the command writes them, or (tone-mapped: the command
            // leaves the matrix unknown) the full BT.709 set.
            XCTAssertEqual(ours.colour, t.colour ?? theirs.colour, "\(t.name): colour tags")
            XCTAssertEqual(ours.range, t.range ?? theirs.range, "\(t.name): colour range (a full-range input converted to yuv420p is limited)")
            XCTAssertEqual(ours.duration, theirs.duration, accuracy: 1 / theirs.fps + 0.001, "\(t.name): duration")
            XCTAssertEqual(ours.fieldOrder, "progressive", "\(t.name): progressive output")
            // Audio and video in sync: they start and end within a frame of each other, as in the input.
            if let sync = Self.streamSpans("\(media)/out/\(t.name).mp4"), let source = Self.streamSpans("\(media)/\(t.file)") {
                syncChecked += 1
                let frame = 1 / theirs.fps + 0.001
                XCTAssertEqual(sync.videoStart - sync.audioStart, source.videoStart - source.audioStart, accuracy: frame, "\(t.name): A/V start offset")
                XCTAssertEqual(sync.videoEnd - sync.audioEnd, source.videoEnd - source.audioEnd, accuracy: frame + 0.03, "\(t.name): A/V end offset")
            }
            let psnr = try XCTUnwrap(Self.psnr("\(media)/out/\(t.name).mp4", ref.appendingPathComponent("\(t.name).mp4").path), t.name)
            XCTAssertGreaterThanOrEqual(psnr, 30, "\(t.name): PSNR against the ffmpeg command's output")

            // still.
            guard h.result("s-\(t.name)") != nil else { XCTFail("\(t.name): thumbnail failed: \(h.error("s-\(t.name)")?.message ?? "no record")"); continue }
            let still = try XCTUnwrap(VideoFacts("\(media)/out/\(t.name).jpg"), t.name)
            let refStill = try XCTUnwrap(VideoFacts(ref.appendingPathComponent("\(t.name).jpg").path), t.name)
            XCTAssertEqual(still.width, refStill.width, "\(t.name): still width")
            XCTAssertEqual(still.height, refStill.height, accuracy: 2, "\(t.name): still height")
            let stillPSNR = try XCTUnwrap(Self.psnr("\(media)/out/\(t.name).jpg", ref.appendingPathComponent("\(t.name).jpg").path), t.name)
            XCTAssertGreaterThanOrEqual(stillPSNR, 30, "\(t.name): still PSNR against the ffmpeg command's")
            print("real-world \(t.name): \(Int(ours.displayWidth))x\(ours.height) \(ours.colour.joined(separator: "/")) PSNR \(String(format: "%.1f", psnr)) dB, still \(String(format: "%.1f", stillPSNR)) dB")
        }
        XCTAssertGreaterThanOrEqual(syncChecked, 10, "A/V sync checked on every file with sound")
        h.stopAll()
    }

    /// Audio: the default-flagged track unless the manifest names one; odd
    /// layouts downmixed, mono kept; stream copy keeps the display matrix;
    /// autorotate off keeps the stored orientation.
    func testTracksLayoutsAndSwitches() throws {
        let h = SpoolHarness(self)
        install(h)
        h.start(workers: 2)
        func transcode(_ id: String, _ input: String, _ output: String, video: String = #""preset":"ultrafast""#, extra: String = "") {
            h.submit(id, #"{"version":1,"type":"transcode","input":"\#(input)","output":{"path":"\#(output)","video":{\#(video)}}\#(extra)}"#)
        }
        transcode("default-track", "rw/twoaudio.mp4", "out/default-track.mp4")
        transcode("first-track", "rw/twoaudio.mp4", "out/first-track.mp4", extra: #","decode":{"audioTrack":0}"#)
        transcode("no-track", "rw/twoaudio.mp4", "out/none.mp4", extra: #","decode":{"audioTrack":2}"#)
        h.submit("no-track-loud", #"{"version":1,"type":"audio","input":"rw/twoaudio.mp4","decode":{"audioTrack":3},"loudness":{"targetLufs":-16},"output":{"path":"out/none.m4a"}}"#)
        h.submit("side51", #"{"version":1,"type":"audio","input":"rw/side51.mkv","output":{"path":"out/side51.m4a"}}"#)
        h.submit("s71", #"{"version":1,"type":"audio","input":"rw/s71.mkv","output":{"path":"out/s71.m4a"}}"#)
        h.submit("mono", #"{"version":1,"type":"audio","input":"rw/mono.m4a","output":{"path":"out/mono.m4a"}}"#)
        h.submit("keep51", #"{"version":1,"type":"audio","input":"rw/side51.mkv","output":{"path":"out/keep51.m4a","audio":{"channels":6}}}"#)
        h.submit("keep71", #"{"version":1,"type":"audio","input":"rw/s71.mkv","output":{"path":"out/keep71.opus","audio":{"channels":8}}}"#)
        transcode("hdr-keep", "rw/hdr10.mp4", "out/hdr-keep.mp4", video: #""codec":"hevc","pixelFormat":"yuv420p10le","hdr":"keep","preset":"ultrafast""#)
        transcode("copy-rot", "rw/rot90.mp4", "out/copy-rot.mp4", video: #""codec":"copy""#)
        transcode("norotate", "rw/rot90.mp4", "out/norotate.mp4", extra: #","decode":{"autorotate":false}"#)
        transcode("square", "rw/sar64.mp4", "out/square.mp4", video: #""height":288,"squarePixels":true,"preset":"ultrafast""#)
        transcode("both-sides", "rw/rot90.mp4", "out/both-sides.mp4", video: #""width":320,"height":240,"preset":"ultrafast""#)
        transcode("keep-interlace", "rw/tff.mp4", "out/keep-interlace.mp4", extra: #","decode":{"deinterlace":"off"}"#)
        // Compose fits clips by what a viewer sees: the portrait phone clip
        // pillarboxed upright, the anamorphic one filling 16:9.
        h.submit("compose", #"{"version":1,"type":"compose","clips":[{"path":"rw/rot90.mp4"},{"path":"rw/sar64.mp4"}],"output":{"path":"out/compose.mp4","width":640,"height":360,"fps":25,"video":{"preset":"ultrafast"}}}"#)
        // A variable frame rate phone clip between two others: durations add up, sound stays with picture.
        h.submit("compose-vfr", #"{"version":1,"type":"compose","clips":[{"path":"rw/base.mp4"},{"path":"rw/vfr.mp4"},{"path":"rw/phone.mov"}],"output":{"path":"out/compose-vfr.mp4","width":320,"height":240,"fps":25,"video":{"preset":"ultrafast"}}}"#)
        let ids = ["default-track", "first-track", "no-track", "side51", "s71", "mono", "copy-rot", "norotate", "square", "keep-interlace", "compose", "keep51", "keep71", "hdr-keep", "compose-vfr", "both-sides", "no-track-loud"]
        eventually(stall: 60, "every job ended", progress: { h.finishedCount }) { ids.allSatisfy { h.result($0) != nil || h.hasFailed($0) } }
        for id in ids where !id.hasPrefix("no-track") { XCTAssertNotNil(h.result(id), "\(id): \(h.error(id)?.message ?? "no record")") }
        let media = h.media.string

        XCTAssertGreaterThan(Self.meanVolume("\(media)/out/default-track.mp4") ?? -99, -30, "the default-flagged track (the tone) is used")
        XCTAssertLessThan(Self.meanVolume("\(media)/out/first-track.mp4") ?? 0, -80, "audioTrack 0 (silence) is used")
        XCTAssertEqual(h.error("no-track")?.code, "INPUT_INVALID")
        XCTAssertTrue(h.error("no-track")?.message.contains("has 2 audio tracks") ?? false, h.error("no-track")?.message ?? "")
        XCTAssertTrue(h.error("no-track-loud")?.message.contains("has 2 audio tracks") ?? false, "the loudness pass says the same: \(h.error("no-track-loud")?.message ?? "")")
        XCTAssertEqual(Probed("\(media)/out/side51.m4a")?.audio?.channels, 2)
        XCTAssertEqual(Probed("\(media)/out/s71.m4a")?.audio?.channels, 2)
        XCTAssertEqual(Probed("\(media)/out/mono.m4a")?.audio?.channels, 1)
        XCTAssertEqual(Probed("\(media)/out/keep51.m4a")?.audio?.channels, 6, "5.1 kept when asked")
        XCTAssertEqual(Probed("\(media)/out/keep71.opus")?.audio?.channels, 8, "7.1 kept when asked")
        // HDR kept: 10-bit HEVC with the PQ/BT.2020 tags, nothing tone-mapped.
        let kept = try XCTUnwrap(runJSON(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", "\(media)/out/hdr-keep.mp4"])?["streams"] as? [[String: Any]]).first
        XCTAssertEqual(kept?["codec_name"] as? String, "hevc")
        XCTAssertEqual(kept?["pix_fmt"] as? String, "yuv420p10le")
        XCTAssertEqual(["color_primaries", "color_transfer", "color_space"].map { kept?[$0] as? String }, ["bt2020", "smpte2084", "bt2020nc"])

        XCTAssertEqual(VideoFacts("\(media)/out/copy-rot.mp4")?.rotation, VideoFacts("\(media)/rw/rot90.mp4")?.rotation, "stream copy keeps the matrix")
        XCTAssertNotNil(VideoFacts("\(media)/out/copy-rot.mp4")?.rotation)
        let stored = try XCTUnwrap(VideoFacts("\(media)/out/norotate.mp4"))
        XCTAssertEqual([stored.width, stored.height], [320, 240], "autorotate off: the stored orientation")
        XCTAssertEqual(stored.rotation, VideoFacts("\(media)/rw/rot90.mp4")?.rotation, "with its matrix, as -noautorotate keeps it: players still turn it")
        let square = try XCTUnwrap(VideoFacts("\(media)/out/square.mp4"))
        XCTAssertEqual([square.width, square.height, square.sarNum, square.sarDen], [512, 288, 1, 1], "square pixels at 16:9")
        let both = try XCTUnwrap(VideoFacts("\(media)/out/both-sides.mp4"))
        XCTAssertEqual([both.width, both.height, both.sarNum, both.sarDen], [320, 240, 1, 1], "width and height: exactly that picture, square pixels")
        XCTAssertNotEqual(VideoFacts("\(media)/out/keep-interlace.mp4")?.fieldOrder, "progressive", "deinterlace off keeps the fields")
        let portrait = try XCTUnwrap(Self.pictureWidth("\(media)/out/compose.mp4", from: 0.5, to: 1.5))
        XCTAssertEqual(Double(portrait), 270, accuracy: 8, "the portrait clip upright: 3:4 in 640x360 is 270 wide")
        let vfr = try XCTUnwrap(Probed("\(media)/out/compose-vfr.mp4"))
        let parts = ["base.mp4", "vfr.mp4", "phone.mov"].compactMap { Probed("\(media)/rw/\($0)")?.duration }
        XCTAssertEqual(vfr.duration, parts.reduce(0, +), accuracy: 0.08, "the clips' durations add up (\(parts))")
        let spans = try XCTUnwrap(Self.streamSpans("\(media)/out/compose-vfr.mp4"))
        XCTAssertEqual(spans.videoEnd, spans.audioEnd, accuracy: 0.05, "sound ends with the picture")
        let wide = try XCTUnwrap(Self.pictureWidth("\(media)/out/compose.mp4", from: 2.2, to: 2.8))
        XCTAssertEqual(Double(wide), 640, accuracy: 8, "the 16:9 anamorphic clip fills the frame (squashed it would be 450 wide)")
        h.stopAll()
    }

    /// A turned picture that is also scaled is scaled first and turned
    /// after (FilterText.videoChain), where the command turns first. Coded
    /// losslessly on both sides, the outputs have the same size, aspect,
    /// frame count, duration and orientation, and pictures that differ
    /// only by swscale's rounding.
    func testTurnedAndScaledLikeTheCommandThatTurnsFirst() throws {
        let h = SpoolHarness(self)
        install(h)
        h.start(workers: 2)
        let media = h.media.string
        let cases: [(name: String, file: String, video: String, command: String)] = [
            ("rot90", "rw/rot90.mp4", #""height":120"#, "scale=-2:120"),
            ("rot270", "rw/rot270.mp4", #""width":120"#, "scale=120:-2"),
            ("rot180", "rw/rot180.mp4", #""height":120"#, "scale=-2:120"),
            ("mirror", "rw/hflip.mp4", #""height":120"#, "scale=-2:120"),
            ("phone", "rw/phone.mov", #""height":160"#, "scale=-2:160"),
            ("rotsar", "rw/rotsar.mp4", #""height":360"#, "scale=-2:360"),
            ("both", "rw/rot90.mp4", #""width":200,"height":100"#, "scale=200:100,setsar=1"),
        ]
        for c in cases {
            h.submit("turn-\(c.name)", #"{"version":1,"type":"transcode","input":"\#(c.file)","output":{"path":"out/turn-\#(c.name).mp4","video":{\#(c.video),"crf":0,"preset":"ultrafast"}}}"#)
        }
        let ref = FileManager.default.temporaryDirectory.appendingPathComponent("mediaspool-turn-ref-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: ref, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: ref) }
        for c in cases {
            Fixtures.ffmpeg(["-i", "\(media)/\(c.file)", "-vf", c.command + ",format=yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "0",
                             "-vsync", "passthrough", "-c:a", "aac", ref.appendingPathComponent("\(c.name).mp4").path])
        }
        eventually(stall: 60, "every job ended", progress: { h.finishedCount }) { cases.allSatisfy { h.result("turn-\($0.name)") != nil || h.hasFailed("turn-\($0.name)") } }
        for c in cases {
            guard h.result("turn-\(c.name)") != nil else { XCTFail("\(c.name): \(h.error("turn-\(c.name)")?.message ?? "no record")"); continue }
            let oursPath = "\(media)/out/turn-\(c.name).mp4", theirsPath = ref.appendingPathComponent("\(c.name).mp4").path
            let ours = try XCTUnwrap(VideoFacts(oursPath), c.name), theirs = try XCTUnwrap(VideoFacts(theirsPath), c.name)
            XCTAssertEqual([ours.width, ours.height, ours.sarNum, ours.sarDen], [theirs.width, theirs.height, theirs.sarNum, theirs.sarDen], "\(c.name): \(ours) vs \(theirs)")
            XCTAssertNil(ours.rotation, "\(c.name): upright, no matrix left")
            XCTAssertEqual(Self.frameCount(oursPath), Self.frameCount(theirsPath), "\(c.name): frames")
            XCTAssertNotNil(Self.frameCount(oursPath))
            XCTAssertEqual(ours.duration, theirs.duration, accuracy: 1 / theirs.fps + 0.001, "\(c.name): duration")
            // Turned the wrong way or not mirrored, testsrc2 measures about 6 dB.
            let psnr = try XCTUnwrap(Self.psnr(oursPath, theirsPath), c.name)
            XCTAssertGreaterThanOrEqual(psnr, 40, "\(c.name): the command's picture")
            print("turned and scaled \(c.name): \(ours), PSNR \(String(format: "%.1f", psnr)) dB against the command turning first")
        }
        h.stopAll()
    }

    /// Video frames in the file (packets counted by ffprobe).
    static func frameCount(_ path: String) -> Int? {
        guard let j = runJSON(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets", "-of", "json", path]),
              let s = (j["streams"] as? [[String: Any]])?.first else { return nil }
        return Int(s["nb_read_packets"] as? String ?? "")
    }

    // MARK: - Measuring with the ffmpeg command

    struct VideoFacts: CustomStringConvertible {
        var width: Int, height: Int, sarNum: Int, sarDen: Int
        var rotation: Int?
        var colour: [String]
        var range: String
        var duration: Double
        var fps: Double
        var fieldOrder: String?
        var displayWidth: Double { Double(width) * Double(sarNum) / Double(max(1, sarDen)) }
        var displayAspect: Double { displayWidth / Double(height) }
        var description: String { "\(width)x\(height) sar \(sarNum):\(sarDen) dar \(String(format: "%.3f", displayAspect))" }

        init?(_ path: String) {
            guard let j = runJSON(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-show_format", "-of", "json", path]),
                  let s = (j["streams"] as? [[String: Any]])?.first, let w = s["width"] as? Int, let h = s["height"] as? Int else { return nil }
            width = w; height = h
            let sar = (s["sample_aspect_ratio"] as? String ?? "1:1").split(separator: ":").compactMap { Int($0) }
            (sarNum, sarDen) = sar.count == 2 && sar[0] > 0 && sar[1] > 0 ? (sar[0], sar[1]) : (1, 1)
            rotation = ((s["side_data_list"] as? [[String: Any]]) ?? []).compactMap { $0["rotation"] as? Int }.first
            colour = ["color_primaries", "color_transfer", "color_space"].map { s[$0] as? String ?? "unknown" }
            range = s["color_range"] as? String ?? "unknown"
            duration = Double((j["format"] as? [String: Any])?["duration"] as? String ?? "") ?? 0
            let fr = (s["avg_frame_rate"] as? String ?? "25/1").split(separator: "/").compactMap { Double($0) }
            fps = fr.count == 2 && fr[1] > 0 && fr[0] > 0 ? fr[0] / fr[1] : 25
            fieldOrder = s["field_order"] as? String
        }
    }

    /// PSNR (average over frames, dB) of `a` against `b`, `a` scaled to
    /// `b`'s size, frame by frame in order: the command snaps timestamps to
    /// its encoder's 1/fps grid where mediaspool keeps the source's (a
    /// fragmented MP4's first frame lasts 63 ms), which would pair a frame
    /// with its neighbour if paired by time. Timing is checked apart.
    static func psnr(_ a: String, _ b: String) -> Double? {
        let graph = "[0:v]setpts=N/(25*TB)[a0];[1:v]setpts=N/(25*TB)[b0];[a0][b0]scale2ref[x][y];[x][y]psnr"
        let out = runStderr(["ffmpeg", "-nostdin", "-hide_banner", "-i", a, "-i", b, "-lavfi", graph, "-f", "null", "-"])
        guard let r = out.range(of: #"average:(inf|[0-9.]+)"#, options: .regularExpression) else { return nil }
        let v = out[r].dropFirst("average:".count)
        return v == "inf" ? 100 : Double(v)
    }

    /// First and last timestamps (seconds) of the first video and audio
    /// streams, from their packets; nil without audio.
    static func streamSpans(_ path: String) -> (videoStart: Double, videoEnd: Double, audioStart: Double, audioEnd: Double)? {
        func span(_ sel: String) -> (Double, Double)? {
            guard let j = runJSON(["ffprobe", "-v", "error", "-select_streams", sel, "-show_entries", "packet=pts_time,duration_time", "-of", "json", path]),
                  let packets = j["packets"] as? [[String: Any]], !packets.isEmpty else { return nil }
            let times = packets.compactMap { p -> (Double, Double)? in
                guard let t = Double(p["pts_time"] as? String ?? "") else { return nil }
                return (t, t + (Double(p["duration_time"] as? String ?? "") ?? 0))
            }
            guard let s = times.map(\.0).min(), let e = times.map(\.1).max() else { return nil }
            return (s, e)
        }
        guard let v = span("v:0"), let a = span("a:0") else { return nil }
        return (v.0, v.1, a.0, a.1)
    }

    /// The width of the picture inside black bars (cropdetect) between two times.
    static func pictureWidth(_ path: String, from: Double, to: Double) -> Int? {
        let out = runStderr(["ffmpeg", "-nostdin", "-hide_banner", "-ss", "\(from)", "-to", "\(to)", "-i", path,
                             "-vf", "cropdetect=limit=24:round=2:reset=0", "-f", "null", "-"])
        let widths = out.split(separator: "\n").compactMap { line -> Int? in
            guard let r = line.range(of: #"crop=[0-9]+"#, options: .regularExpression) else { return nil }
            return Int(line[r].dropFirst(5))
        }
        return widths.last
    }

    static func meanVolume(_ path: String) -> Double? {
        let out = runStderr(["ffmpeg", "-nostdin", "-hide_banner", "-i", path, "-map", "0:a:0", "-af", "volumedetect", "-f", "null", "-"])
        guard let r = out.range(of: #"mean_volume: -?(inf|[0-9.]+)"#, options: .regularExpression) else { return nil }
        let v = out[r].dropFirst("mean_volume: ".count)
        return v.hasSuffix("inf") ? -200 : Double(v)
    }
}

/// Runs a tool of the ffmpeg package; its stdout, stderr and exit status.
/// stderr goes to a file, so neither pipe can fill while the other is read.
func runTool(_ args: [String]) -> (out: Data, err: String, status: Int32) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("mediaspool-tool-\(UUID().uuidString).err")
    FileManager.default.createFile(atPath: errFile.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errFile) }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = try? FileHandle(forWritingTo: errFile)
    guard (try? p.run()) != nil else { return (Data(), "", -1) }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let err = (try? String(contentsOf: errFile, encoding: .utf8)) ?? ""
    return (outData, err, p.terminationStatus)
}

private func runJSON(_ args: [String]) -> [String: Any]? {
    let r = runTool(args)
    guard r.status == 0 else { return nil }
    return try? JSONSerialization.jsonObject(with: r.out) as? [String: Any]
}

func runStderr(_ args: [String]) -> String { runTool(args).err }

/// PSNR (dB) of two pictures compared in YUV 4:2:0, the video's own format
/// (an image made from a frame went to RGB after its scale; the command's
/// frame, kept in YUV, did not); 0 when the command fails.
func yuvPSNR(_ a: String, _ b: String) -> Double {
    let graph = "[0:v]format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]psnr"
    let err = runStderr(["ffmpeg", "-nostdin", "-hide_banner", "-i", a, "-i", b, "-lavfi", graph, "-f", "null", "-"])
    guard let r = err.range(of: #"average:(inf|[0-9.]+)"#, options: .regularExpression) else { return 0 }
    let v = err[r].dropFirst("average:".count)
    return v == "inf" ? 100 : Double(v) ?? 0
}
