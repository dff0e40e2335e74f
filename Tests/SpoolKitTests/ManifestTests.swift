import JobSchema
import SpoolKit
import XCTest

final class ManifestTests: XCTestCase {
    func testProbeDefaults() throws {
        let m = try parse(#"{"version":1,"type":"probe","input":"clips/a.mp4"}"#)
        XCTAssertEqual(m.type, .probe)
        XCTAssertEqual(m.priority, 0)
        XCTAssertEqual(m.labels, [:])
        XCTAssertNil(m.maxAttempts)
        XCTAssertEqual(m.inputPaths, ["clips/a.mp4"])
    }

    func testCommonFields() throws {
        let m = try parse(#"{"version":1,"type":"probe","input":"a.mp4","id":"x1","priority":-10,"tenant":"acme","labels":{"eventId":"e1"},"maxAttempts":5,"timeoutSeconds":2.5}"#, file: "x1")
        XCTAssertEqual(m.id, "x1"); XCTAssertEqual(m.priority, -10); XCTAssertEqual(m.tenant, "acme")
        XCTAssertEqual(m.labels, ["eventId": "e1"]); XCTAssertEqual(m.maxAttempts, 5); XCTAssertEqual(m.timeoutSeconds, 2.5)
    }

    func testErrorsNameTheJSONPath() {
        XCTAssertSpoolError(try parse("nope"), .manifestInvalid, contains: "not valid JSON")
        XCTAssertSpoolError(try parse("[1]"), .manifestInvalid, contains: "$ must be an object")
        XCTAssertSpoolError(try parse(#"{"type":"probe","input":"a"}"#), .manifestInvalid, contains: "$.version")
        XCTAssertSpoolError(try parse(#"{"version":2,"type":"probe","input":"a"}"#), .manifestInvalid, contains: "$.version")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"resize","input":"a"}"#), .manifestInvalid, contains: "$.type")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe"}"#), .manifestInvalid, contains: "$.input is required")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","priorty":1}"#), .manifestInvalid, contains: "$.priorty unknown field")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","priority":11}"#), .manifestInvalid, contains: "$.priority must be between -10 and 10")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","priority":1.5}"#), .manifestInvalid, contains: "$.priority must be an integer")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":5}"#), .manifestInvalid, contains: "$.input must be a string")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","labels":{"k":1}}"#), .manifestInvalid, contains: "$.labels.k")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","timeoutSeconds":0}"#), .manifestInvalid, contains: "$.timeoutSeconds")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"transcode","input":"a","output":{"path":"o.mp4","video":{"crf":99}}}"#), .manifestInvalid, contains: "$.output.video.crf")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"transcode","input":"a","output":{"path":"o.mp4","video":{"codecs":"h264"}}}"#), .manifestInvalid, contains: "$.output.video.codecs unknown field")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"compose","clips":[{"path":"a.mp4","speed":2}],"output":{"path":"o.mp4"}}"#), .manifestInvalid, contains: "$.clips[0].speed")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"thumbnail","input":"a","at":[1,"x"],"output":{"path":"t-%02d.jpg"}}"#), .manifestInvalid, contains: "$.at[1]")
    }

    /// Issue 14's extensions: `decode`, `squarePixels`, `hdr`, more channels.
    func testRealWorldMediaOptions() throws {
        let d = try parse(#"{"version":1,"type":"probe","input":"a.mp4"}"#).decode
        XCTAssertEqual(d, DecodeOptions(), "autorotate, deinterlace auto and the default track unless asked")
        XCTAssertTrue(d.autorotate); XCTAssertEqual(d.deinterlace, .auto); XCTAssertNil(d.audioTrack)
        let m = try parse(#"{"version":1,"type":"transcode","input":"a.mov","decode":{"autorotate":false,"deinterlace":"off","audioTrack":1},"output":{"path":"o.mkv","video":{"codec":"hevc","pixelFormat":"yuv420p10le","hdr":"keep","squarePixels":true},"audio":{"channels":6}}}"#)
        XCTAssertFalse(m.decode.autorotate); XCTAssertEqual(m.decode.deinterlace, .off); XCTAssertEqual(m.decode.audioTrack, 1)
        guard case .transcode(let t) = m.job else { return XCTFail() }
        XCTAssertEqual(t.output.video.hdr, .keep); XCTAssertTrue(t.output.video.squarePixels); XCTAssertEqual(t.output.audio.channels, 6)
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","decode":{"rotate":true}}"#), .manifestInvalid, contains: "$.decode.rotate unknown field")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","decode":{"deinterlace":"yes"}}"#), .manifestInvalid, contains: "$.decode.deinterlace")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"transcode","input":"a","output":{"path":"o.mp4","video":{"hdr":"keep"}}}"#), .unsupported, contains: "10-bit")
        XCTAssertNoThrow(try parse(#"{"version":1,"type":"transcode","input":"a","output":{"path":"o.webm","video":{"hdr":"keep","pixelFormat":"yuv420p10le"}}}"#), "vp9, .webm's default, carries HDR")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"compose","clips":[{"path":"a.mp4"}],"output":{"path":"o.mkv","video":{"codec":"hevc","pixelFormat":"yuv420p10le","hdr":"keep"}}}"#), .unsupported, contains: "tone-maps")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"transcode","input":"a","output":{"path":"o.mp4","audio":{"channels":3}}}"#), .manifestInvalid, contains: "6 (5.1)")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"transcode","input":"a","output":{"path":"o.mp3","audio":{"channels":6}}}"#), .unsupported, contains: "MP3 carries at most 2")
    }

    func testIDRules() {
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","id":"b"}"#, file: "a"), .idMismatch)
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","id":"-bad"}"#), .idInvalid)
        // The id is checked before the fields after it (a bad id with a bad priority is an id error).
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","id":"-bad","priority":11,"input":"a"}"#), .idInvalid)
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","id":"b","tenant":""}"#, file: "a"), .idMismatch)
        XCTAssertTrue(JobID.isValid("clip-42")); XCTAssertTrue(JobID.isValid("A.b_c-9"))
        XCTAssertTrue(JobID.isValid(String(repeating: "a", count: 128)))
        XCTAssertFalse(JobID.isValid(String(repeating: "a", count: 129)))
        XCTAssertFalse(JobID.isValid("")); XCTAssertFalse(JobID.isValid(".hidden")); XCTAssertFalse(JobID.isValid("a b"))
        XCTAssertFalse(JobID.isValid("a/b")); XCTAssertFalse(JobID.isValid("x.result")); XCTAssertFalse(JobID.isValid("x.error"))
        XCTAssertEqual(JobID.fromManifestName("a.json"), "a")
        XCTAssertNil(JobID.fromManifestName(".a.json")); XCTAssertNil(JobID.fromManifestName("a.txt"))
    }

    func testTooLarge() {
        let big = #"{"version":1,"type":"probe","input":"a","labels":{"x":""# + String(repeating: "y", count: 1 << 20) + "\"}}"
        XCTAssertSpoolError(try parse(big), .manifestTooLarge)
    }

    func testEveryTypeParses() throws {
        let t = try parse(#"{"version":1,"type":"transcode","input":"a.mov","trim":{"start":2,"duration":10},"output":{"path":"out/a.webm"}}"#)
        guard case .transcode(let tr) = t.job else { return XCTFail() }
        XCTAssertEqual(tr.output.container, .webm); XCTAssertEqual(tr.output.video.codec, .vp9); XCTAssertEqual(tr.output.audio.codec, .opus)
        XCTAssertEqual(tr.trim?.start, 2)
        let th = try parse(#"{"version":1,"type":"thumbnail","input":"a.mp4","count":4,"sheet":{"columns":2},"output":{"path":"s.png"}}"#)
        guard case .thumbnail(let thumb) = th.job else { return XCTFail() }
        XCTAssertEqual(thumb.sheetColumns, 2); XCTAssertEqual(thumb.format, .png)
        let c = try parse(#"{"version":1,"type":"compose","clips":[{"path":"a.mp4"},{"path":"b.png","duration":3,"motion":"pan-left"}],"transition":{"type":"crossfade","duration":0.5},"output":{"path":"o.mp4","fit":"crop"}}"#)
        guard case .compose(let comp) = c.job else { return XCTFail() }
        XCTAssertEqual(comp.clips.count, 2); XCTAssertEqual(comp.clips[1].motion, .panLeft); XCTAssertEqual(comp.fit, .crop)
        XCTAssertEqual(comp.transitionDuration, 0.5)
        XCTAssertEqual(c.inputPaths, ["a.mp4", "b.png"])
        let a = try parse(#"{"version":1,"type":"audio","input":"r.wav","loudness":{"targetLufs":-16},"output":{"path":"e.m4a"}}"#)
        guard case .audio(let au) = a.job else { return XCTFail() }
        XCTAssertEqual(au.targetLufs, -16); XCTAssertEqual(au.truePeak, -1.5); XCTAssertEqual(au.output.audio.codec, .aac)
    }

    func testImpossibleCombinationsAreUnsupported() {
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"transcode","input":"a","output":{"path":"o.mov","video":{"codec":"vp9"}}}"#), .unsupported, contains: "vp9")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"transcode","input":"a","output":{"path":"o.avi"}}"#), .unsupported, contains: ".avi")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"audio","input":"a","output":{"path":"o.mp4"}}"#), .unsupported)
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"thumbnail","input":"a","at":[1],"output":{"path":"t.gif"}}"#), .unsupported)
    }

    func testThumbnailNeedsNumberingOrSheet() throws {
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"thumbnail","input":"a","at":[1,2],"output":{"path":"t.jpg"}}"#), .manifestInvalid, contains: "%d")
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"thumbnail","input":"a","at":[1],"count":3,"output":{"path":"t.jpg"}}"#), .manifestInvalid, contains: "$.count")
        _ = try parse(#"{"version":1,"type":"thumbnail","input":"a","at":[1,2],"output":{"path":"t-%03d.jpg"}}"#)
        XCTAssertTrue(Thumbnail.hasNumberPattern("a-%02d.jpg")); XCTAssertFalse(Thumbnail.hasNumberPattern("a-%s.jpg"))
        XCTAssertFalse(Thumbnail.hasNumberPattern("a-%d-%d.jpg"))
    }
}
