import Foundation
import MediaKit
import XCTest

/// A probe reads an H.264 stream's pixel format, colour and sample aspect
/// from its SPS instead of decoding its first picture: the record must be
/// the one decoding gives, on every variant x264 and the muxers write.
final class H264ParameterSetTests: XCTestCase {
    static let dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("mediakit-sps-\(getpid())")
        try! FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }()

    struct Variant {
        let name: String
        let args: [String]
        /// Whether the SPS reader describes it (false: the decoder must, and does).
        let described: Bool
    }

    static let variants: [Variant] = [
        Variant(name: "plain", args: ["-pix_fmt", "yuv420p"], described: true),
        Variant(name: "no-bframes", args: ["-pix_fmt", "yuv420p", "-bf", "0"], described: true),   // pic_order_cnt_type 2
        Variant(name: "full-range", args: ["-pix_fmt", "yuvj420p"], described: true),
        Variant(name: "range-tag", args: ["-pix_fmt", "yuv420p", "-color_range", "pc"], described: true),
        Variant(name: "pq-vui", args: ["-pix_fmt", "yuv420p10le", "-x264-params", "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"], described: true),
        Variant(name: "hlg-tags", args: ["-pix_fmt", "yuv420p10le", "-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc"], described: true),
        // The container says BT.709, the bitstream BT.2020: the decoder believes the bitstream.
        Variant(name: "colr-vs-vui", args: ["-pix_fmt", "yuv420p", "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
                                            "-bsf:v", "h264_metadata=colour_primaries=9:transfer_characteristics=16:matrix_coefficients=9"], described: true),
        Variant(name: "sar-table", args: ["-pix_fmt", "yuv420p", "-vf", "setsar=16/11"], described: true),
        Variant(name: "sar-extended", args: ["-pix_fmt", "yuv420p", "-vf", "setsar=7/5"], described: true),
        Variant(name: "422", args: ["-pix_fmt", "yuv422p"], described: true),
        Variant(name: "444", args: ["-pix_fmt", "yuv444p"], described: true),
        Variant(name: "422-10", args: ["-pix_fmt", "yuv422p10le"], described: true),
        Variant(name: "444-10-full", args: ["-pix_fmt", "yuv444p10le", "-color_range", "pc"], described: true),
        Variant(name: "scaling-matrix", args: ["-pix_fmt", "yuv420p", "-x264-params", "cqm=jvt"], described: true),
        Variant(name: "rgb", args: ["-c:v", "libx264rgb", "-pix_fmt", "bgr0"], described: true),
        Variant(name: "interlaced", args: ["-pix_fmt", "yuv420p", "-flags", "+ildct+ilme", "-x264-params", "tff=1"], described: false),
        Variant(name: "gray", args: ["-pix_fmt", "gray"], described: false),
    ]

    func make(_ v: Variant, container: String) -> String {
        let out = Self.dir.appendingPathComponent("\(v.name).\(container)").path
        var args = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000",
                    "-t", "0.4", "-c:v", "libx264", "-preset", "veryfast"]
        args += v.args
        args += ["-c:a", "aac", "-ac", "6", out]   // 5.1: its layout still comes from the AAC decoder
        InputFormatTests.ffmpeg(args)
        return out
    }

    func testRecordsAreTheDecodersOnEveryVariant() throws {
        var described = 0
        for v in Self.variants {
            for container in ["mp4", "mkv", "mov"] {
                let path = make(v, container: container)
                let decoded = try InputFormat(url: path, limits: OpenLimits(quickStreamInfo: true), shouldAbort: { false })
                let read = try InputFormat(url: path, limits: Self.probeLimits, shouldAbort: { false })
                XCTAssertEqual(read.info(), decoded.info(), "\(v.name).\(container)")
                Self.assertSameTimes(read, decoded, "\(v.name).\(container)")
                XCTAssertEqual(read.h264StreamsFromParameterSets, v.described ? 1 : 0, "\(v.name).\(container): described by its SPS")
                XCTAssertEqual(decoded.h264StreamsFromParameterSets, 0)
                XCTAssertNotNil(read.info().streams.first?.pixelFormat, "\(v.name).\(container)")
                if read.h264StreamsFromParameterSets > 0 { described += 1 }
            }
        }
        // The variants do differ where they should (a reader that gave
        // yuv420p and no colour to all would fail above, not here).
        let pq = try InputFormat(url: Self.dir.appendingPathComponent("pq-vui.mp4").path,
                                 limits: OpenLimits(quickStreamInfo: true, h264FromParameterSets: true), shouldAbort: { false }).info()
        XCTAssertEqual(pq.streams[0].pixelFormat, "yuv420p10le")
        XCTAssertEqual(pq.streams[0].colorTransfer, "smpte2084")
        XCTAssertEqual(pq.streams[1].channelLayout, "5.1")
        print("h264 parameter sets: \(described) of \(Self.variants.count * 3) files described without decoding")
    }

    /// The probe's opening (Matroska included).
    static let probeLimits = OpenLimits(quickStreamInfo: true, h264FromParameterSets: true, h264InMatroska: true)

    /// The start times the record does not show, but stills count from.
    static func assertSameTimes(_ read: InputFormat, _ decoded: InputFormat, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(read.startSeconds, decoded.startSeconds, "\(name): container start", file: file, line: line)
        XCTAssertEqual(read.streams.map(\.startSeconds), decoded.streams.map(\.startSeconds), "\(name): stream starts", file: file, line: line)
        XCTAssertEqual(read.streams.map(\.durationSeconds), decoded.streams.map(\.durationSeconds), "\(name): stream durations", file: file, line: line)
    }

    /// Matroska's video packets have no dts: libavformat dates an H.264
    /// stream from its first packet's pts once the decoded SPS told it the
    /// reorder depth. Read from the SPS, the record and the start times must
    /// be the decode's on every shape x264 and the muxer give (stream order,
    /// B-frames or none, AAC priming, a late stream, an open GOP cut at a
    /// non-IDR keyframe whose first packet is not its earliest picture); the
    /// shapes where the packets cannot tell (a stream shorter than the
    /// decode's reading, video before every other stream, a subtitle track)
    /// and other codecs decode.
    func testMatroskaIsDatedAsDecodingDates() throws {
        let v = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"], a = ["-f", "lavfi", "-i", "sine=sample_rate=48000"]
        let x264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
        let srt = Self.dir.appendingPathComponent("sub.srt")
        try "1\n00:00:01,000 --> 00:00:02,000\nhello\n\n".write(to: srt, atomically: true, encoding: .utf8)
        let shapes: [(name: String, args: [String], described: Int)] = [
            ("bframes", v + a + ["-t", "1"] + x264 + ["-c:a", "aac"], 1),
            ("no-bframes", v + a + ["-t", "1"] + x264 + ["-bf", "0", "-c:a", "aac"], 1),
            ("audio-first", v + a + ["-t", "1", "-map", "1:a", "-map", "0:v"] + x264 + ["-c:a", "aac"], 1),
            ("video-only", v + ["-t", "1"] + x264, 1),
            ("video-only-no-bframes", v + ["-t", "1"] + x264 + ["-bf", "0"], 1),
            ("pyramid", v + a + ["-t", "1"] + x264 + ["-bf", "5", "-x264-params", "b-pyramid=normal", "-c:a", "aac"], 1),
            ("open-gop", v + a + ["-t", "3"] + x264 + ["-g", "30", "-x264-params", "open-gop=1:scenecut=0", "-c:a", "aac"], 1),
            ("video-late", ["-itsoffset", "0.5"] + v + a + ["-t", "1"] + x264 + ["-c:a", "aac"], 1),
            // Its first packet at 1 s: whether a reading reaches it decides its start time.
            ("subtitle", v + a + ["-i", srt.path, "-t", "2", "-map", "0", "-map", "1", "-map", "2"] + x264 + ["-c:a", "aac", "-c:s", "srt"], 0),
            ("audio-late", v + ["-itsoffset", "0.5"] + a + ["-t", "1"] + x264 + ["-c:a", "aac"], 0),
            ("three-frames", v + a + ["-frames:v", "3", "-t", "0.1"] + x264 + ["-c:a", "aac"], 0),
            ("hevc", v + a + ["-t", "1", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-c:a", "aac"], 0),
            ("interlaced", v + a + ["-t", "1"] + x264 + ["-flags", "+ildct+ilme", "-x264-params", "tff=1", "-c:a", "aac"], 0),
        ]
        var paths = shapes.map { s -> (String, String, Int) in
            let out = Self.dir.appendingPathComponent("shape-\(s.name).mkv").path
            InputFormatTests.ffmpeg(s.args + [out])
            return (s.name, out, s.described)
        }
        let openGOP = paths.first { $0.0 == "open-gop" }!.1, cut = Self.dir.appendingPathComponent("shape-open-gop-cut.mkv").path
        InputFormatTests.ffmpeg(["-ss", "1.5", "-i", openGOP, "-c", "copy", cut])
        paths.append(("open-gop-cut", cut, 1))
        let vp9 = Self.dir.appendingPathComponent("shape-vp9.webm").path
        InputFormatTests.ffmpeg(v + a + ["-t", "1", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus", vp9])
        paths.append(("vp9", vp9, 0))
        for (name, path, described) in paths {
            let decoded = try InputFormat(url: path, limits: OpenLimits(quickStreamInfo: true), shouldAbort: { false })
            let read = try InputFormat(url: path, limits: Self.probeLimits, shouldAbort: { false })
            XCTAssertEqual(read.info(), decoded.info(), name)
            Self.assertSameTimes(read, decoded, name)
            XCTAssertEqual(read.h264StreamsFromParameterSets, described, "\(name): described by its SPS")
        }
        // The cut's first packet (a keyframe) is not its earliest picture:
        // the stream starts at the packet, as decoding has it, not at the
        // smallest pts.
        let c = try InputFormat(url: cut, limits: Self.probeLimits, shouldAbort: { false })
        XCTAssertEqual(c.h264StreamsFromParameterSets, 1)
        let start = try XCTUnwrap(c.streams[0].startSeconds)
        XCTAssertNil(c.streams[0].durationSeconds, "no stream duration in Matroska, as ffprobe says")
        let plain = try InputFormat(url: cut, shouldAbort: { false }), p = Packet()
        var pts: [Int64] = []
        while pts.count < 8, try plain.read(into: p) { if p.streamIndex == 0, let t = p.pts { pts.append(t) } }
        let tb = plain.stream(0).timeBase
        XCTAssertEqual(start, Double(pts[0]) * Double(tb.num) / Double(tb.den), accuracy: 1e-9)
        XCTAssertLessThan(pts.min()!, pts[0], "leading pictures before the cut's keyframe")

        // The reorder depth x264 writes: none without B-frames.
        XCTAssertEqual(Self.extradata(of: paths[0].1).flatMap(H264SequenceHeader.init(avcC:))?.reorderFrames, 2)
        XCTAssertEqual(Self.extradata(of: paths[1].1).flatMap(H264SequenceHeader.init(avcC:))?.reorderFrames, 0)
    }

    /// What the SPS alone cannot tell is left to the decoder (a reviewer's
    /// findings): a remux that crops in the SPS but leaves the old size in
    /// stsd (1088 → 1080 lines), and a faststart file cut after its header
    /// (the upload that stopped: no picture, so no pixel format).
    func testFilesTheParameterSetsCannotDescribeAreDecoded() throws {
        let full = Self.dir.appendingPathComponent("c1088.mp4").path
        InputFormatTests.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x256:rate=25", "-t", "0.4", "-c:v", "libx264", "-preset", "veryfast", "-movflags", "+faststart", full])
        let cropped = Self.dir.appendingPathComponent("cropped.mp4").path
        InputFormatTests.ffmpeg(["-i", full, "-c", "copy", "-bsf:v", "h264_metadata=crop_bottom=16", cropped])
        let cut = Self.dir.appendingPathComponent("cut.mp4").path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: full))
        try bytes.prefix(bytes.count / 4).write(to: URL(fileURLWithPath: cut))
        for path in [cropped, cut] {
            let decoded = try InputFormat(url: path, limits: OpenLimits(quickStreamInfo: true), shouldAbort: { false })
            let read = try InputFormat(url: path, limits: Self.probeLimits, shouldAbort: { false })
            XCTAssertEqual(read.info(), decoded.info(), path)
            XCTAssertEqual(read.h264StreamsFromParameterSets, 0, "\(path): decoded")
        }
        let c = try InputFormat(url: cropped, limits: OpenLimits(quickStreamInfo: true, h264FromParameterSets: true), shouldAbort: { false }).info()
        XCTAssertEqual(c.streams.first?.height, 240, "the decoder's size, not stsd's")
    }

    /// Garbage, truncations and bit flips of a real avcC: a value or nil, never a trap.
    func testMalformedRecordsNeverTrap() throws {
        let path = make(Self.variants[13], container: "mkv")   // scaling lists: the longest SPS
        let avcC = try XCTUnwrap(Self.extradata(of: path))
        XCTAssertNotNil(H264SequenceHeader(avcC: avcC), "the real record reads")
        var rng = SystemRandomNumberGenerator()
        var nils = 0
        for i in 0..<20_000 {
            var bytes: [UInt8]
            switch i % 3 {
            case 0: bytes = Array(avcC.prefix(Int.random(in: 0...avcC.count, using: &rng)))
            case 1:
                bytes = avcC
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let bit = Int.random(in: 0..<(bytes.count * 8), using: &rng)
                    bytes[bit / 8] ^= 1 << UInt8(bit % 8)
                }
            default: bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if bytes.count > 8 { bytes[0] = 1; bytes[5] = 0xe1; bytes[8] = 0x67 }
            }
            if H264SequenceHeader(avcC: bytes) == nil { nils += 1 }
        }
        XCTAssertGreaterThan(nils, 1000, "truncations are refused")
    }

    /// The stream's avcC, from ffprobe (the oracle's own reading).
    static func extradata(of path: String) -> [UInt8]? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=extradata", "-show_data", "-of", "default=nw=1", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try? p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // Hex dump lines: "00000000: 0164 000d ffe1 ...  .d......"
        var bytes: [UInt8] = []
        for line in out.split(separator: "\n") where line.count > 10 && line.dropFirst(8).hasPrefix(": ") {
            let hex = line.dropFirst(10).prefix(40).replacingOccurrences(of: " ", with: "")
            var i = hex.startIndex
            while hex.distance(from: i, to: hex.endIndex) >= 2 {
                let j = hex.index(i, offsetBy: 2)
                if let b = UInt8(hex[i..<j], radix: 16) { bytes.append(b) }
                i = j
            }
        }
        return bytes.isEmpty ? nil : bytes
    }
}
