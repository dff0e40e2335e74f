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
                let read = try InputFormat(url: path, limits: OpenLimits(quickStreamInfo: true, h264FromParameterSets: true), shouldAbort: { false })
                XCTAssertEqual(read.info(), decoded.info(), "\(v.name).\(container)")
                // Matroska decodes: its first picture also decides the stream's start time.
                XCTAssertEqual(read.h264StreamsFromParameterSets, v.described && container != "mkv" ? 1 : 0, "\(v.name).\(container): described by its SPS")
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
            let read = try InputFormat(url: path, limits: OpenLimits(quickStreamInfo: true, h264FromParameterSets: true), shouldAbort: { false })
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
