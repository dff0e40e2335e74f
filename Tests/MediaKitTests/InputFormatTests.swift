import Foundation
import MediaKit
import XCTest

final class InputFormatTests: XCTestCase {
    static let dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("mediakit-\(getpid())")
        try! FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-shortest",
                d.appendingPathComponent("a.mp4").path])
        // Four audio streams, to test the stream limit.
        ffmpeg(["-f", "lavfi", "-i", "sine=sample_rate=8000", "-t", "1", "-map", "0:a", "-map", "0:a", "-map", "0:a", "-map", "0:a",
                "-c:a", "pcm_s16le", d.appendingPathComponent("four.mkv").path])
        try! Data("hello, I am not a video\n".utf8).write(to: d.appendingPathComponent("text.mp4"))
        try! Data().write(to: d.appendingPathComponent("empty.mp4"))
        let whole = try! Data(contentsOf: d.appendingPathComponent("a.mp4"))
        try! whole.prefix(whole.count / 3).write(to: d.appendingPathComponent("truncated.mp4"))
        try! Data("#EXTM3U\n#EXTINF:1,\n/etc/passwd\n".utf8).write(to: d.appendingPathComponent("list.m3u8"))
        return d
    }()

    static func ffmpeg(_ args: [String]) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ffmpeg", "-nostdin", "-v", "error", "-y"] + args
        try! p.run(); p.waitUntilExit()
        precondition(p.terminationStatus == 0, "ffmpeg \(args) failed; run ./scripts/setup.sh")
    }

    func path(_ n: String) -> String { Self.dir.appendingPathComponent(n).path }

    func testInfoOfAGeneratedClip() throws {
        let f = try InputFormat(url: path("a.mp4"), shouldAbort: { false })
        let i = f.info()
        XCTAssertEqual(i.format, "mov,mp4,m4a,3gp,3g2,mj2")
        XCTAssertEqual(i.durationSeconds ?? 0, 3, accuracy: 0.1)
        XCTAssertEqual(i.streams.count, 2)
        let v = try XCTUnwrap(i.streams.first { $0.kind == .video })
        XCTAssertEqual(v.codec, "h264"); XCTAssertEqual(v.width, 640); XCTAssertEqual(v.height, 360)
        XCTAssertEqual(v.fps ?? 0, 30, accuracy: 0.01); XCTAssertEqual(v.pixelFormat, "yuv420p")
        let a = try XCTUnwrap(i.streams.first { $0.kind == .audio })
        XCTAssertEqual(a.codec, "aac"); XCTAssertEqual(a.sampleRate, 44100); XCTAssertEqual(a.channels, 2)
        XCTAssertEqual(a.channelLayout, "stereo")
    }

    func testBadInputsThrowTypedErrors() {
        for name in ["text.mp4", "empty.mp4"] {
            XCTAssertThrowsError(try InputFormat(url: path(name), shouldAbort: { false }), name) { e in
                XCTAssertTrue([AVError.invalidData, .eof].contains(e as? AVError), "\(name): \(e)")
            }
        }
        XCTAssertThrowsError(try InputFormat(url: path("truncated.mp4"), shouldAbort: { false }).info())
    }

    func testPlaylistsAreNotFollowed() {
        // hls is not an allowed demuxer: the playlist cannot make FFmpeg open /etc/passwd.
        XCTAssertThrowsError(try InputFormat(url: path("list.m3u8"), shouldAbort: { false }))
        XCTAssertFalse(allowedDemuxers.contains("hls"))
        XCTAssertFalse(allowedDemuxers.contains("concat"))
    }

    func testOnlyTheFileProtocol() {
        XCTAssertThrowsError(try InputFormat(url: "data:text/plain,hello", shouldAbort: { false }))
        XCTAssertThrowsError(try InputFormat(url: "concat:\(path("a.mp4"))|\(path("a.mp4"))", shouldAbort: { false }))
    }

    func testStreamLimit() throws {
        XCTAssertThrowsError(try InputFormat(url: path("four.mkv"), limits: OpenLimits(maxStreams: 3), shouldAbort: { false })) { e in
            XCTAssertEqual((e as? AVError)?.posixErrno, E2BIG)
        }
        XCTAssertEqual(try InputFormat(url: path("four.mkv"), limits: OpenLimits(maxStreams: 4), shouldAbort: { false }).streamCount, 4)
    }

    func testInterruptCallbackAborts() {
        XCTAssertThrowsError(try InputFormat(url: path("a.mp4"), shouldAbort: { true })) { e in
            XCTAssertEqual(e as? AVError, .exit)
        }
    }

    func testErrorNames() {
        XCTAssertNotEqual(AVError.eof, AVError.again)
        XCTAssertEqual(AVError.errno(EAGAIN), .again)
        XCTAssertFalse(AVError.invalidData.description.isEmpty)
    }
}
