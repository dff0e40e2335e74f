import JobSchema
@testable import Jobs
import MediaKit
@testable import SpoolKit
import XCTest

/// Typed settings to FFmpeg names and options (issue 12's JobsTests): what
/// each manifest value becomes, so a change is a visible change here.
final class EncodingTests: XCTestCase {
    func testContainersAndCodecsMapToFFmpegNames() {
        XCTAssertEqual(Encoding.muxer(.mkv), "matroska")
        XCTAssertEqual(Encoding.muxer(.m4a), "ipod")
        XCTAssertEqual(Encoding.videoEncoder(.h264), "libx264")
        XCTAssertEqual(Encoding.videoEncoder(.av1), "libsvtav1")
        XCTAssertNil(Encoding.videoEncoder(.copy))
        XCTAssertEqual(Encoding.audioEncoder(.mp3, container: .wav), "pcm_s16le", "wav decides its codec")
        XCTAssertEqual(Encoding.audioEncoder(.opus, container: .webm), "libopus")
    }

    func testSampleRatesAndChannelsTheEncoderTakes() {
        XCTAssertEqual(Encoding.sampleRate(44100, encoder: "libopus"), 48000, "opus has no 44.1 kHz")
        XCTAssertEqual(Encoding.sampleRate(44100, encoder: "aac"), 44100)
        XCTAssertEqual(Encoding.sampleRate(7000, encoder: "libmp3lame"), 48000)
        var a = AudioSettings()
        let stereo = Encoding.audioTarget(a, container: .mp4, inputRate: 44100, inputChannels: 6)
        XCTAssertEqual(stereo.encoder, "aac"); XCTAssertEqual(stereo.rate, 44100); XCTAssertEqual(stereo.channels, 2, "5.1 downmixed unless asked")
        a.channels = 6
        XCTAssertEqual(Encoding.audioTarget(a, container: .mp4, inputRate: 44100, inputChannels: 6).channels, 6)
        a.codec = .copy
        XCTAssertEqual(Encoding.audioTarget(a, container: .mkv, inputRate: 48000, inputChannels: 1).encoder, "aac", "copy that cannot copy encodes AAC")
    }

    func testVideoQualityDefaultsAndOverrides() throws {
        func options(_ codec: VideoCodec, _ v: VideoSettings) throws -> (crf: String?, preset: String?, bitRate: Int64) {
            let e = try Encoder(name: Encoding.videoEncoder(codec)!)
            Encoding.configure(video: e, codec: codec, settings: v)
            return (e.pendingOption("crf"), e.pendingOption("preset"), e.bitRate)
        }
        var v = VideoSettings()
        var o = try options(.h264, v)
        XCTAssertEqual(o.crf, "23"); XCTAssertEqual(o.preset, "medium"); XCTAssertEqual(o.bitRate, 0)
        XCTAssertEqual(try options(.hevc, v).crf, "28")
        XCTAssertEqual(try options(.vp9, v).crf, "32")
        v.crf = 18; v.preset = .veryfast
        o = try options(.h264, v)
        XCTAssertEqual(o.crf, "18"); XCTAssertEqual(o.preset, "veryfast")
        v.crf = nil; v.bitrateKbps = 2500
        o = try options(.h264, v)
        XCTAssertNil(o.crf, "a bitrate replaces the crf"); XCTAssertEqual(o.bitRate, 2_500_000)
    }
}
