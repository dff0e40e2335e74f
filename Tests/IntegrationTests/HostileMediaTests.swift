import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A corpus of corrupt and hostile inputs: each ends with its code, the
/// daemon stays alive, and (strace watching the daemon) no file outside the
/// allowed roots is opened.
final class HostileMediaTests: XCTestCase {
    func testCorpusOfHostileInputs() throws {
        let h = SpoolHarness(self)
        let m = h.media.string, dir = m + "/hostile"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let outside = h.root.appending("outside").string
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Data("top secret".utf8).write(to: URL(fileURLWithPath: outside + "/secret.txt"))
        try FileManager.default.copyItem(atPath: m + "/clips/v1.mp4", toPath: outside + "/real.mp4")
        func put(_ name: String, _ bytes: [UInt8]) { FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes)) }
        func text(_ name: String, _ s: String) { put(name, Array(s.utf8)) }
        let v1 = try Array(Data(contentsOf: URL(fileURLWithPath: m + "/clips/v1.mp4")))
        var rng = SystemRandomNumberGenerator()
        put("empty.mp4", [])
        text("text.mp4", "hello, this is not a video\n")
        put("random.mkv", (0..<65536).map { _ in UInt8.random(in: 0...255, using: &rng) })
        put("truncated-1k.mp4", Array(v1.prefix(1000)))
        put("truncated-half.mp4", Array(v1.prefix(v1.count / 2)))
        put("jpeg-magic-garbage.mp4", [0xFF, 0xD8, 0xFF, 0xE0] + (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) })
        put("gzip.mov", [0x1F, 0x8B, 0x08, 0x00] + [UInt8](repeating: 7, count: 512))
        text("page.mov", "<!doctype html><html><body><video src='http://127.0.0.1/x.mp4'></video></body></html>\n")
        text("playlist.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n\(outside)/real.mp4\n#EXTINF:10,\n/etc/passwd\n#EXT-X-ENDLIST\n")
        text("list.mp4", "#EXTM3U\n#EXTINF:10,\n\(outside)/real.mp4\n")
        text("concat.ffconcat", "ffconcat version 1.0\nfile '\(outside)/real.mp4'\nfile '/etc/passwd'\n")
        text("session.sdp", "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n")
        text("art.ans", "\u{1B}[31mred\u{1B}[0m\n")
        put("huge-12000.png", png(width: 12000, height: 12000))
        put("huge-60000.png", png(width: 60000, height: 60000))
        XCTAssertEqual(symlink(outside + "/secret.txt", dir + "/escape.mp4"), 0)
        XCTAssertEqual(symlink("/dev/zero", dir + "/zero.mp4"), 0)
        XCTAssertEqual(symlink(dir + "/loop-b.mp4", dir + "/loop-a.mp4"), 0)
        XCTAssertEqual(symlink(dir + "/loop-a.mp4", dir + "/loop-b.mp4"), 0)
        XCTAssertEqual(mkfifo(dir + "/fifo.mp4", 0o644), 0)
        try FileManager.default.createDirectory(atPath: dir + "/directory.mp4", withIntermediateDirectories: true)
        // 999 streams: the most the ffmpeg command can write (its muxers stop at 1,000).
        Fixtures.ffmpeg(["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "0.1"] + Array(repeating: ["-map", "0:a"], count: 999).flatMap { $0 }
                        + ["-c:a", "pcm_s16le", dir + "/streams.mkv"])

        let cases: [(String, String, ErrorCode)] = [
            ("empty", "hostile/empty.mp4", .inputInvalid),
            ("text", "hostile/text.mp4", .inputInvalid),
            ("random", "hostile/random.mkv", .inputInvalid),
            ("trunc1k", "hostile/truncated-1k.mp4", .inputInvalid),
            ("trunchalf", "hostile/truncated-half.mp4", .inputInvalid),
            ("jpeg", "hostile/jpeg-magic-garbage.mp4", .inputInvalid),
            ("gzip", "hostile/gzip.mov", .inputInvalid),
            ("html", "hostile/page.mov", .inputInvalid),
            ("m3u8", "hostile/playlist.m3u8", .inputInvalid),
            ("m3u8-as-mp4", "hostile/list.mp4", .inputInvalid),
            ("ffconcat", "hostile/concat.ffconcat", .inputInvalid),
            ("sdp", "hostile/session.sdp", .inputInvalid),
            ("ansi", "hostile/art.ans", .inputInvalid),
            ("huge", "hostile/huge-12000.png", .limitExceeded),
            ("huger", "hostile/huge-60000.png", .inputInvalid),
            ("streams", "hostile/streams.mkv", .limitExceeded),
            ("escape", "hostile/escape.mp4", .inputNotAllowed),
            ("devzero", "hostile/zero.mp4", .inputNotAllowed),
            ("loop", "hostile/loop-a.mp4", .inputNotAllowed),
            ("fifo", "hostile/fifo.mp4", .inputNotAllowed),
            ("dir", "hostile/directory.mp4", .inputNotAllowed),
            ("abs-outside", outside + "/real.mp4", .inputNotAllowed),
            ("proto", "subfile:,start,0,end,100,:hostile/text.mp4", .inputNotAllowed),
            ("dotdot", "hostile/../../outside/real.mp4", .inputNotAllowed),
        ]
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        let trace = h.root.appending("strace.log").string
        let d = h.start(workers: 2, env: ["MEDIASPOOL_TIMEOUT_SECONDS": "30"],
                        wrapper: ["/usr/bin/strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", trace])
        for (id, input, _) in cases {
            h.submit(id, #"{"version":1,"type":"transcode","input":"\#(input)","output":{"path":"out/\#(id).mp4","video":{"preset":"ultrafast"}}}"#)
        }
        h.submit("thumb-huge", #"{"version":1,"type":"thumbnail","input":"hostile/huge-12000.png","at":[0],"output":{"path":"out/h.jpg"}}"#)
        h.submit("still-ok", #"{"version":1,"type":"transcode","input":"clips/v1.mp4","output":{"path":"out/fine.mp4","video":{"preset":"ultrafast"}}}"#)
        eventually(stall: 60, "every hostile job finished", progress: { h.finishedCount }) { h.finishedCount == cases.count + 2 }
        for (id, _, code) in cases {
            let e = h.error(id)
            XCTAssertEqual(e?.code, code.rawValue, "\(id): \(e?.message ?? (h.result(id) != nil ? "succeeded" : "no record"))")
            XCTAssertFalse(e?.message.isEmpty ?? true)
        }
        XCTAssertEqual(h.error("thumb-huge")?.code, "LIMIT_EXCEEDED")
        XCTAssertNotNil(h.result("still-ok"), "good jobs still run between the bad ones")
        XCTAssertTrue(d.isRunning, "the daemon is still alive")
        // FFmpeg's own lines go through the daemon's logger, tagged with the
        // job whose thread logged them; its info lines (encoder statistics)
        // and swscale's range warning are not there.
        let log = h.log(0)
        XCTAssertTrue(log.contains("[JOB_ID=trunc1k STEP=libav] [mov,mp4,m4a,3gp,3g2,mj2 @ "), "the demuxer's error, tagged with its job:\n\(log.suffix(3000))")
        XCTAssertFalse(log.contains("[libx264 @"), "x264's statistics stay out of the log at info level")
        XCTAssertFalse(log.contains("deprecated pixel format"), "no yuvj420p warning from stills")
        let outs = (try? FileManager.default.contentsOfDirectory(atPath: m + "/out")) ?? []
        XCTAssertEqual(outs, ["fine.mp4"], "no output, partial or not, for a failed job")
        // Nothing outside the roots was opened by the daemon or FFmpeg.
        let opened = (try? String(contentsOfFile: trace, encoding: .utf8)) ?? ""
        XCTAssertTrue(opened.contains("hostile/"), "strace saw the daemon's opens (else this proves nothing)")
        for forbidden in ["/etc/passwd", outside + "/real.mp4", outside + "/secret.txt", "\"/dev/zero\""] {
            XCTAssertFalse(opened.split(separator: "\n").contains { $0.contains("open") && $0.contains(forbidden) }, "opened \(forbidden)")
        }
        // strace forwards no SIGTERM to its tracee: stop the daemon itself.
        for c in BootedSystemd.children(d.processIdentifier) { kill(c, SIGKILL) }
        kill(d.processIdentifier, SIGKILL)
    }

    /// A PNG that declares width x height over a tiny picture.
    func png(width: UInt32, height: UInt32) -> [UInt8] {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let td = Array(type.utf8) + data
            return be(UInt32(data.count)) + td + be(crc32(td))
        }
        let ihdr = be(width) + be(height) + [8, 2, 0, 0, 0]
        let idat: [UInt8] = [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01] // zlib of one zero byte
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", [])
    }

    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        }
        return ~c
    }
}
