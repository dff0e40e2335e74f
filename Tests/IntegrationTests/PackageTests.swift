import Foundation
import SpoolKit
import SystemPackage
import XCTest

/// The `package` job (issue 18): an HLS + DASH ladder in one directory,
/// judged with the ffmpeg command and by reading packets: every
/// rendition's segments decode, their frames add up to the input's, every
/// segment starts with a keyframe, the playlists follow RFC 8216 and the
/// command reads the master playlist and the MPD from the local files.
final class PackageTests: XCTestCase {
    /// ffprobe's answer as text.
    func probe(_ args: [String]) -> String {
        String(decoding: runTool(["ffprobe", "-v", "error"] + args).out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Frames of the first video stream the command decodes from `url`.
    func decodedFrames(_ url: String, stream: String = "v:0") -> Int? {
        Int(probe(["-count_frames", "-select_streams", stream, "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", url])
            .split(separator: "\n").first.map(String.init) ?? "")
    }

    struct Playlist {
        var tags: [String] = []
        var segments: [(uri: String, seconds: Double)] = []
        var map: String?
        var targetDuration: Int?
        var ended = false
    }

    /// A small RFC 8216 reader: what the checks below need, and a failure
    /// for any line a playlist may not hold.
    func parseMedia(_ text: String, _ name: String) -> Playlist {
        var p = Playlist()
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        XCTAssertEqual(lines.first, "#EXTM3U", "\(name): 4.3.1.1 the first line is #EXTM3U")
        var pending: Double?
        for l in lines.dropFirst() {
            if l.hasPrefix("#EXTINF:") {
                pending = Double(l.dropFirst(8).prefix { $0 != "," })
                XCTAssertNotNil(pending, "\(name): \(l)")
            } else if l.hasPrefix("#EXT-X-TARGETDURATION:") {
                p.targetDuration = Int(l.dropFirst(22))
            } else if l.hasPrefix("#EXT-X-MAP:") {
                p.map = attributes(l)["URI"]
            } else if l == "#EXT-X-ENDLIST" {
                p.ended = true
            } else if l.hasPrefix("#") {
                p.tags.append(l)
            } else if !l.isEmpty {
                XCTAssertNotNil(pending, "\(name): the URI \(l) has no #EXTINF before it")
                p.segments.append((l, pending ?? 0))
                pending = nil
            }
        }
        XCTAssertNotNil(p.targetDuration, "\(name): 4.3.3.1 EXT-X-TARGETDURATION is required")
        for s in p.segments {
            XCTAssertLessThanOrEqual(Int(s.seconds.rounded()), p.targetDuration ?? 0, "\(name): 4.3.3.1 \(s.uri) lasts \(s.seconds) s, over the target duration")
        }
        XCTAssertTrue(p.ended, "\(name): a finished (VOD) playlist ends with EXT-X-ENDLIST")
        return p
    }

    func attributes(_ line: String) -> [String: String] {
        guard let colon = line.firstIndex(of: ":") else { return [:] }
        var d: [String: String] = [:], key = "", value = "", inKey = true, quoted = false
        func flush() { if !key.isEmpty { d[key] = value }; key = ""; value = ""; inKey = true }
        for ch in line[line.index(after: colon)...] {
            if inKey { if ch == "=" { inKey = false } else { key.append(ch) }; continue }
            if ch == "\"" { quoted.toggle(); continue }
            if ch == "," && !quoted { flush(); continue }
            value.append(ch)
        }
        flush()
        return d
    }

    /// One video rendition's init segment and media segments, concatenated
    /// and read by the command once: each segment's first video packet (by
    /// its byte position) must be a keyframe; returns the frames decoded.
    func checkRendition(_ dir: String, initName: String, segments: [String], file: StaticString, line: UInt) throws -> Int {
        var data = try XCTUnwrap(FileManager.default.contents(atPath: dir + "/" + initName), "\(initName)", file: file, line: line)
        var starts: [Int] = []
        for name in segments {
            starts.append(data.count)
            data += try XCTUnwrap(FileManager.default.contents(atPath: dir + "/" + name), name, file: file, line: line)
        }
        let work = NSTemporaryDirectory() + "package-\(getpid())-\(UUID().uuidString.prefix(6)).mp4"
        defer { try? FileManager.default.removeItem(atPath: work) }
        try data.write(to: URL(fileURLWithPath: work))
        let packets = probe(["-select_streams", "v:0", "-show_entries", "packet=pos,flags", "-of", "compact", work]).split(separator: "\n").map { line in
            Dictionary(line.split(separator: "|").dropFirst().compactMap { kv -> (String, String)? in
                let p = kv.split(separator: "=", maxSplits: 1)
                return p.count == 2 ? (String(p[0]), String(p[1])) : nil
            }, uniquingKeysWith: { a, _ in a })
        }
        for (k, start) in starts.enumerated() {
            let end = k + 1 < starts.count ? starts[k + 1] : data.count
            let first = packets.first { Int($0["pos"] ?? "") .map { $0 >= start && $0 < end } ?? false }
            XCTAssertTrue(first?["flags"]?.hasPrefix("K") ?? false, "\(segments[k]) starts with a keyframe: \(first ?? [:])", file: file, line: line)
        }
        return decodedFrames(work) ?? 0
    }

    /// Checks a package directory whole; returns the variants' resolutions, top first.
    @discardableResult
    func checkPackage(_ dir: String, inputFrames: Int, inputSeconds: Double, segment: Double, hls: Bool = true, dash: Bool = true,
                      file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        XCTAssertFalse(names.contains { $0.hasPrefix(".") }, "no temporary in the directory: \(names)", file: file, line: line)
        XCTAssertEqual(names.contains("manifest.mpd"), dash, file: file, line: line)
        XCTAssertEqual(names.contains("master.m3u8"), hls, file: file, line: line)
        if dash {
            // The MPD read back by the command: every representation a stream.
            let streams = probe(["-show_entries", "stream=codec_type,width,height", "-of", "csv=p=0", dir + "/manifest.mpd"])
            XCTAssertTrue(streams.contains("video"), "the command reads the MPD: \(streams)", file: file, line: line)
            let frames = decodedFrames(dir + "/manifest.mpd") ?? 0
            XCTAssertGreaterThanOrEqual(frames, inputFrames - 3, "the MPD's first representation decodes to about the input's frames", file: file, line: line)
            let mpd = try String(contentsOfFile: dir + "/manifest.mpd", encoding: .utf8)
            XCTAssertTrue(mpd.contains("type=\"static\""), file: file, line: line)
        }
        guard hls else {
            // DASH alone: each video representation's segments, by name.
            var videos = 0
            for initName in names.filter({ $0.hasPrefix("init-") }).sorted() {
                let n = initName.dropFirst(5).prefix { $0.isNumber }
                guard probe(["-show_entries", "stream=codec_type", "-of", "csv=p=0", dir + "/" + initName]) == "video" else { continue }
                let segments = names.filter { $0.hasPrefix("chunk-\(n)-") }.sorted()
                XCTAssertEqual(try checkRendition(dir, initName: initName, segments: segments, file: file, line: line), inputFrames,
                               "\(initName): the segments decode to the input's frames", file: file, line: line)
                videos += 1
            }
            XCTAssertGreaterThan(videos, 0, file: file, line: line)
            return []
        }
        let master = try String(contentsOfFile: dir + "/master.m3u8", encoding: .utf8)
        let lines = master.split(whereSeparator: \.isNewline).map(String.init)
        XCTAssertEqual(lines.first, "#EXTM3U", file: file, line: line)
        var groups: [String: [String]] = [:]
        for l in lines where l.hasPrefix("#EXT-X-MEDIA:") {
            let a = attributes(l)
            XCTAssertEqual(a["TYPE"], "AUDIO", file: file, line: line)
            XCTAssertNotNil(a["NAME"], "4.3.4.1 NAME is required", file: file, line: line)
            groups[a["GROUP-ID"] ?? "", default: []].append(a["URI"] ?? "")
        }
        var resolutions: [String] = []
        var segmentCounts: Set<Int> = []
        for (i, l) in lines.enumerated() where l.hasPrefix("#EXT-X-STREAM-INF:") {
            let a = attributes(l)
            let uri = lines[i + 1]
            XCTAssertFalse(uri.hasPrefix("#"), "4.3.4.2 a URI line follows EXT-X-STREAM-INF", file: file, line: line)
            let bandwidth = try XCTUnwrap(Int(a["BANDWIDTH"] ?? ""), "4.3.4.2 BANDWIDTH is required: \(l)", file: file, line: line)
            XCTAssertNotNil(Int(a["AVERAGE-BANDWIDTH"] ?? ""), file: file, line: line)
            let res = try XCTUnwrap(a["RESOLUTION"], file: file, line: line)
            XCTAssertNotNil(res.range(of: #"^\d+x\d+$"#, options: .regularExpression), "RESOLUTION \(res)", file: file, line: line)
            resolutions.append(res)
            let codecs = try XCTUnwrap(a["CODECS"], file: file, line: line)
            XCTAssertTrue(codecs.hasPrefix("avc1.") || codecs.hasPrefix("hvc1.") || codecs.hasPrefix("hev1."), codecs, file: file, line: line)
            if let g = a["AUDIO"] {
                XCTAssertNotNil(groups[g], "4.3.4.2 AUDIO names a group of EXT-X-MEDIA tags", file: file, line: line)
                XCTAssertTrue(codecs.contains("mp4a.40.2"), "CODECS lists the audio too: \(codecs)", file: file, line: line)
            }
            // The variant's playlist: segments that start with a keyframe,
            // decode, and add up to the input; BANDWIDTH at least the peak
            // segment bit rate (4.3.4.2), with the audio's.
            let media = parseMedia(try String(contentsOfFile: dir + "/" + uri, encoding: .utf8), uri)
            let initName = try XCTUnwrap(media.map, "\(uri): EXT-X-MAP", file: file, line: line)
            var peak = 0.0
            for s in media.segments {
                let size = (try FileManager.default.attributesOfItem(atPath: dir + "/" + s.uri)[.size] as? Int) ?? 0
                peak = max(peak, Double(size) * 8 / s.seconds)
            }
            let frames = try checkRendition(dir, initName: initName, segments: media.segments.map(\.uri), file: file, line: line)
            XCTAssertEqual(frames, inputFrames, "\(uri): the segments decode to the input's frames", file: file, line: line)
            let total = media.segments.reduce(0) { $0 + $1.seconds }
            XCTAssertEqual(total, inputSeconds, accuracy: 1.0 / 30 + 0.001, "\(uri): the segments last the input's duration within a frame", file: file, line: line)
            for s in media.segments.dropLast() { XCTAssertEqual(s.seconds, segment, accuracy: 0.05, "\(uri): \(s.uri)", file: file, line: line) }
            segmentCounts.insert(media.segments.count)
            XCTAssertGreaterThanOrEqual(Double(bandwidth), peak, "\(uri): BANDWIDTH \(bandwidth) below the peak segment rate \(Int(peak))", file: file, line: line)
        }
        XCTAssertEqual(segmentCounts.count, 1, "every rendition has the same segments", file: file, line: line)
        // The command reads the master playlist from the local files: every
        // variant a program, the top one decoded whole.
        XCTAssertEqual(decodedFrames(dir + "/master.m3u8"), inputFrames, "the command decodes the master playlist's first variant", file: file, line: line)
        return resolutions
    }

    func testAPackageIsALadderThatPlayersCanSwitchBetween() throws {
        let h = SpoolHarness(self)
        let m = h.media.string
        try FileManager.default.createDirectory(atPath: m + "/pk", withIntermediateDirectories: true)
        // 720p with a 10 s GOP and B-frames (as phones and cameras code):
        // the package's keyframes come from its own encoders, not the input's.
        Fixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                         "-t", "6.5", "-c:v", "libx264", "-preset", "ultrafast", "-g", "300", "-bf", "2", "-c:a", "aac", "-shortest", m + "/pk/wide.mp4"])
        // A phone's portrait clip: stored landscape, turned by its display matrix.
        Fixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", m + "/pk/flat.mp4"])
        Fixtures.ffmpeg(["-i", m + "/pk/flat.mp4", "-c", "copy", "-metadata:s:v:0", "rotate=90", m + "/pk/phone.mp4"])
        // NTSC rate: the frames at segment boundaries land late by varying
        // amounts; on a grid of forced keyframes the 34th 1 s boundary's
        // frame came 29 frames after the 33rd's, under a segment, so the
        // muxer made a 2 s segment.
        Fixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30000/1001", "-t", "36", "-c:v", "libx264", "-preset", "ultrafast", m + "/pk/ntsc.mp4"])
        h.start(workers: 2)
        h.submit("pkg", #"{"version":1,"type":"package","input":"pk/wide.mp4","output":{"path":"streams/wide"},"segmentSeconds":2,"storyboard":{"interval":1,"columns":4,"rows":2},"preview":{"duration":2,"fps":5}}"#)
        h.submit("pkg-phone", #"{"version":1,"type":"package","input":"pk/phone.mp4","output":{"path":"streams/phone"},"formats":"hls","audio":[]}"#)
        h.submit("pkg-dash", #"{"version":1,"type":"package","input":"pk/flat.mp4","output":{"path":"streams/flat"},"formats":"dash","segmentSeconds":1,"renditions":[{"height":360,"crf":30},{"height":180,"bitrateKbps":200}]}"#)
        h.submit("pkg-ntsc", #"{"version":1,"type":"package","input":"pk/ntsc.mp4","output":{"path":"streams/ntsc"},"segmentSeconds":1,"renditions":[{"height":360,"crf":30},{"height":180,"bitrateKbps":200}],"audio":[]}"#)
        eventually(stall: 120, "the package jobs ended", progress: { h.finishedCount }) { h.finishedCount == 4 }

        let rec = try XCTUnwrap(h.result("pkg"), h.error("pkg")?.message ?? "")
        let out = try XCTUnwrap(rec.outputs.first)
        XCTAssertEqual(rec.outputs.count, 1)
        XCTAssertEqual(out.path, "streams/wide")
        XCTAssertEqual(out.format, "package")
        XCTAssertEqual(out.width, 1280); XCTAssertEqual(out.height, 720)
        XCTAssertEqual(out.videoCodec, "h264"); XCTAssertEqual(out.audioCodec, "aac")
        XCTAssertEqual(out.durationSeconds ?? 0, 6.5, accuracy: 0.04)
        let dir = m + "/streams/wide"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        var listing = "", size: Int64 = 0
        for f in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))
            listing += "\(Digest.sha256Hex(Array(data)))  \(f)\n"
            size += Int64(data.count)
        }
        XCTAssertEqual(out.sha256, Digest.sha256Hex(Array(listing.utf8)), "the record's digest is of the directory's listing")
        XCTAssertEqual(out.sizeBytes, size)
        let resolutions = try checkPackage(dir, inputFrames: 195, inputSeconds: 6.5, segment: 2)
        XCTAssertEqual(resolutions, ["1280x720", "854x480", "640x360", "426x240"], "the default ladder, capped at the input's 720p")
        // The storyboard: cues over the whole clip, on 4 x 2 sheets; the preview: 10 frames in 2 s.
        let vtt = try String(contentsOfFile: dir + "/storyboard.vtt", encoding: .utf8)
        XCTAssertTrue(vtt.hasPrefix("WEBVTT\n"))
        XCTAssertTrue(vtt.contains("00:00:06.000 --> 00:00:06.500\nstoryboard-01.jpg#xywh="), vtt)
        XCTAssertTrue(files.contains("storyboard-01.jpg"))
        let info = String(decoding: runTool(["webpmux", "-info", dir + "/preview.webp"]).out, as: UTF8.self)
        XCTAssertTrue(info.contains("Number of frames: 10"), "a 2 s preview at 5 fps: \(info)")

        let phone = try XCTUnwrap(h.result("pkg-phone"), h.error("pkg-phone")?.message ?? "")
        XCTAssertNil(phone.outputs.first?.audioCodec)
        let phoneRes = try checkPackage(m + "/streams/phone", inputFrames: 90, inputSeconds: 3, segment: 4, dash: false)
        XCTAssertEqual(phoneRes, ["360x640", "240x426"], "portrait: upright, the rungs set the short side")

        _ = try XCTUnwrap(h.result("pkg-dash"), h.error("pkg-dash")?.message ?? "")
        try checkPackage(m + "/streams/flat", inputFrames: 90, inputSeconds: 3, segment: 1, hls: false)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: m + "/streams/flat").contains { $0.hasSuffix(".m3u8") })
        _ = try XCTUnwrap(h.result("pkg-ntsc"), h.error("pkg-ntsc")?.message ?? "")
        let ntscFrames = try XCTUnwrap(decodedFrames(m + "/pk/ntsc.mp4"))
        let ntsc = try checkPackage(m + "/streams/ntsc", inputFrames: ntscFrames, inputSeconds: Double(ntscFrames) * 1.001 / 30, segment: 1.001)
        XCTAssertEqual(ntsc, ["640x360", "320x180"])
    }

    /// What may already be at the output's path, and manifests that ask too
    /// much: refused with a code and a message, nothing written.
    func testAPackageRefusesWhatItMustNotReplace() throws {
        let h = SpoolHarness(self)
        let m = h.media.string
        try FileManager.default.createDirectory(atPath: m + "/taken", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: m + "/taken/file", contents: Data("x".utf8))
        XCTAssertEqual(symlink("/etc", m + "/taken/link"), 0)
        // 2 GB a job: two 4096x4096 renditions (2.7 GB of frames) are refused.
        let config = h.root.appending("config.json").string
        FileManager.default.createFile(atPath: config, contents: Data(#"{"limits":{"maxJobMemoryBytes":2000000000}}"#.utf8))
        h.start(workers: 1, args: ["--config", config])
        h.submit("on-file", #"{"version":1,"type":"package","input":"clips/v1.mp4","output":{"path":"taken/file"}}"#)
        h.submit("on-link", #"{"version":1,"type":"package","input":"clips/v1.mp4","output":{"path":"taken/link"}}"#)
        h.submit("no-video", #"{"version":1,"type":"package","input":"music/theme.mp3","output":{"path":"taken/music"}}"#)
        h.submit("bad", #"{"version":1,"type":"package","input":"clips/v1.mp4","output":{"path":"taken/x"},"renditions":[{"crf":20}]}"#)
        h.submit("first", #"{"version":1,"type":"package","input":"clips/v1.mp4","output":{"path":"taken/dir"},"audio":[]}"#)
        // A folder of someone's files is not a package: never replaced, even with overwrite.
        try FileManager.default.createDirectory(atPath: m + "/library/keep", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: m + "/library/precious.txt", contents: Data("mine".utf8))
        h.submit("on-folder", #"{"version":1,"type":"package","input":"clips/v1.mp4","output":{"path":"library","overwrite":true}}"#)
        // A % in the path is a character, not a format directive.
        h.submit("percent", #"{"version":1,"type":"package","input":"clips/v1.mp4","output":{"path":"odd/50% a%s%s%d"},"storyboard":{"interval":0.5}}"#)
        // Renditions too large for the limits or the job's memory.
        h.submit("huge", #"{"version":1,"type":"package","input":"clips/v1.mp4","output":{"path":"taken/huge"},"renditions":[{"width":4096,"height":4096},{"width":4096,"height":4096}]}"#)
        eventually(stall: 60, "the jobs ended", progress: { h.finishedCount }) { h.finishedCount == 8 }
        XCTAssertEqual(h.error("on-folder")?.code, "OUTPUT_NOT_ALLOWED")
        XCTAssertTrue(h.error("on-folder")?.message.contains("did not write") ?? false, h.error("on-folder")?.message ?? "")
        XCTAssertEqual(try String(contentsOfFile: m + "/library/precious.txt", encoding: .utf8), "mine")
        let percent = try XCTUnwrap(h.result("percent"), h.error("percent")?.message ?? "")
        XCTAssertEqual(percent.outputs.first?.path, "odd/50% a%s%s%d")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: m + "/odd"), ["50% a%s%s%d"], "nothing written beside the package")
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: m + "/odd/50% a%s%s%d").contains("storyboard-01.jpg"))
        XCTAssertEqual(h.error("huge")?.code, "LIMIT_EXCEEDED")
        XCTAssertTrue(h.error("huge")?.message.contains("renditions") ?? false, h.error("huge")?.message ?? "")
        XCTAssertEqual(h.error("on-file")?.code, "OUTPUT_NOT_ALLOWED")
        XCTAssertEqual(h.error("on-link")?.code, "OUTPUT_NOT_ALLOWED")
        XCTAssertEqual(h.error("no-video")?.code, "INPUT_INVALID")
        XCTAssertEqual(h.error("bad")?.code, "MANIFEST_INVALID")
        XCTAssertTrue(h.error("bad")?.message.contains("needs a height or a width") ?? false, h.error("bad")?.message ?? "")
        XCTAssertEqual(try String(contentsOfFile: m + "/taken/file", encoding: .utf8), "x")
        XCTAssertNotNil(h.result("first"))
        let before = try FileManager.default.contentsOfDirectory(atPath: m + "/taken/dir").sorted()
        // Another job may not replace a kept job's package unless it says overwrite.
        h.submit("second", #"{"version":1,"type":"package","input":"clips/v1.mp4","output":{"path":"taken/dir"},"segmentSeconds":1}"#)
        eventually(stall: 60, "second ended", progress: { h.finishedCount }) { h.finishedCount == 9 }
        XCTAssertEqual(h.error("second")?.code, "OUTPUT_NOT_ALLOWED")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: m + "/taken/dir").sorted(), before)
        h.submit("third", #"{"version":1,"type":"package","input":"clips/v1.mp4","output":{"path":"taken/dir","overwrite":true},"segmentSeconds":1}"#)
        eventually(stall: 60, "third ended", progress: { h.finishedCount }) { h.finishedCount == 10 }
        let third = try XCTUnwrap(h.result("third"), h.error("third")?.message ?? "")
        // On disk: the listing the record's digest names, not the old one.
        var listing = ""
        for f in try FileManager.default.contentsOfDirectory(atPath: m + "/taken/dir").sorted() {
            listing += "\(Digest.sha256Hex(Array(try Data(contentsOf: URL(fileURLWithPath: m + "/taken/dir/" + f)))))  \(f)\n"
        }
        XCTAssertEqual(third.outputs.first?.sha256, Digest.sha256Hex(Array(listing.utf8)), "the new package replaced the old one whole")
        XCTAssertNotEqual(try FileManager.default.contentsOfDirectory(atPath: m + "/taken/dir").sorted(), before)
        let names = try FileManager.default.contentsOfDirectory(atPath: m + "/taken")
        XCTAssertFalse(names.contains { $0.hasPrefix(".") }, "the replaced directory is gone: \(names)")
        // list and show know the job type and its directory output.
        XCTAssertTrue(h.cli(["list"]).out.contains("third  package"), h.cli(["list"]).out)
        let shown = h.cli(["show", "third"]).out
        XCTAssertTrue(shown.contains(#""format" : "package""#) && (shown.contains(#""path" : "taken\/dir""#) || shown.contains(#""path" : "taken/dir""#)), shown)
        // Retention purges a package's directory with its job, only the
        // owner's: "first"'s package was replaced by "third"'s.
        h.stopAll()
        for id in ["first", "third"] {
            let rec = h.layout.result(id).string
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-9 * 86400)], ofItemAtPath: rec)
        }
        let r = h.cli(["sweep", "--json"], env: ["MEDIASPOOL_RETAIN_DONE_DAYS": "7", "MEDIASPOOL_RETENTION_PURGES_OUTPUTS": "true"])
        XCTAssertEqual(r.code, 0, r.out)
        XCTAssertEqual(try JSONDecoder().decode(Recovery.Report.self, from: Data(r.out.utf8)).outputsPurged, 1, r.out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: m + "/taken/dir"), "the package's directory went with its job")
        XCTAssertEqual(try String(contentsOfFile: m + "/taken/file", encoding: .utf8), "x")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: m + "/taken/link"), "/etc", "the symlink is left as it was")
    }

    /// kill -9 while a package is being written: nothing under the final
    /// name, ever; the next daemon removes the dead run's directory and
    /// writes a complete package.
    func testKillNineDuringAPackageLeavesNoPartialDirectory() throws {
        let h = SpoolHarness(self)
        let m = h.media.string
        try FileManager.default.createDirectory(atPath: m + "/pk", withIntermediateDirectories: true)
        Fixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=854x480:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
                         "-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", m + "/pk/long.mp4"])
        let first = h.start(workers: 1)
        h.submit("pkg-kill", #"{"version":1,"type":"package","input":"pk/long.mp4","output":{"path":"streams/long"},"segmentSeconds":2,"preset":"medium"}"#)
        let parent = m + "/streams"
        func temporaries() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).filter { $0.hasPrefix(".long.tmp-") } }
        // Killed once the dead run has written segments.
        eventually(stall: 120, "the package's temporary directory holds segments", progress: { ((try? String(contentsOf: URL(fileURLWithPath: h.layout.progress("pkg-kill").string), encoding: .utf8)) ?? "").count }) {
            temporaries().contains { ((try? FileManager.default.contentsOfDirectory(atPath: parent + "/" + $0)) ?? []).contains("chunk-0-00002.m4s") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: parent + "/long"), "nothing under the final name while it is written")
        kill(first.processIdentifier, SIGKILL)
        waitForExit(first)
        XCTAssertFalse(FileManager.default.fileExists(atPath: parent + "/long"))
        XCTAssertEqual(temporaries().count, 1)
        // The timer's sweep finds the job stale (its lock died with the
        // daemon), puts it back and removes the dead run's directory.
        let swept = h.cli(["sweep", "--json"])
        XCTAssertEqual(swept.code, 0, swept.out)
        let report = try JSONDecoder().decode(Recovery.Report.self, from: Data(swept.out.utf8))
        XCTAssertEqual(report.recovered, 1, swept.out)
        XCTAssertGreaterThanOrEqual(report.tempFilesRemoved, 1, "the partial directory (and maybe a progress file's temporary): \(swept.out)")
        XCTAssertEqual(temporaries(), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: parent + "/long"))
        h.start(workers: 1)
        // Progress: the files the new run has written so far.
        func written() -> Int { temporaries().reduce(0) { $0 + (((try? FileManager.default.contentsOfDirectory(atPath: parent + "/" + $1)) ?? []).count) } }
        eventually(stall: 120, "the package was written again", progress: { written() + (h.result("pkg-kill") == nil ? 0 : 1000) }) { h.result("pkg-kill") != nil }
        let rec = try XCTUnwrap(h.result("pkg-kill"))
        XCTAssertEqual(rec.attempts, 2)
        XCTAssertEqual(temporaries(), [], "the dead run's directory was removed")
        try checkPackage(parent + "/long", inputFrames: 300, inputSeconds: 10, segment: 2)
    }
}
