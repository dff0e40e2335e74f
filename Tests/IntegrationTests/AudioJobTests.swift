import Foundation
import SpoolKit
import SystemPackage
import XCTest

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
