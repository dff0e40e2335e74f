import JobSchema
import XCTest

/// The job payloads read without the spool: JobSchema alone, as a producer's
/// own validator or another spool implementation would use it.
final class JobSpecTests: XCTestCase {
    func reader(_ json: String) throws -> ObjectReader {
        try ObjectReader(try JSONValue.parse(Array(json.utf8)), at: "$")
    }

    func spec(_ type: JobType, _ json: String) throws -> JobSpec {
        var r = try reader(json)
        let job = try JobSpec.parse(type, &r)
        try r.finish()
        return job
    }

    func refusal(_ type: JobType, _ json: String) -> SchemaError? {
        do { _ = try spec(type, json); return nil } catch let e as SchemaError { return e } catch { XCTFail("\(error)"); return nil }
    }

    func testTranscodeDefaultsComeFromTheContainer() throws {
        guard case .transcode(let t) = try spec(.transcode, #"{"input":"a.mov","output":{"path":"out/b.webm","video":{"width":640}}}"#) else { return XCTFail() }
        XCTAssertEqual(t.output.container, .webm)
        XCTAssertEqual(t.output.video.codec, .vp9)
        XCTAssertEqual(t.output.audio.codec, .opus)
        XCTAssertEqual(t.output.video.width, 640)
        XCTAssertEqual(JobSpec.transcode(t).inputPaths, ["a.mov"])
        XCTAssertEqual(JobSpec.transcode(t).outputPaths, ["out/b.webm"])
    }

    func testRefusalsSayWhereAndWhichKind() {
        let range = refusal(.transcode, #"{"input":"a","output":{"path":"b.mp4","video":{"crf":99}}}"#)
        XCTAssertEqual(range?.kind, .invalid)
        XCTAssertEqual(range?.message, "$.output.video.crf must be between 0 and 63, found 99")
        let matrix = refusal(.transcode, #"{"input":"a","output":{"path":"b.webm","video":{"codec":"h264"}}}"#)
        XCTAssertEqual(matrix?.kind, .unsupported)
        XCTAssertTrue(matrix?.message.contains("cannot be written to .webm") ?? false, matrix?.message ?? "")
        let unknown = refusal(.probe, #"{"input":"a","inptu":"b"}"#)
        XCTAssertEqual(unknown?.kind, .invalid)
        XCTAssertTrue(unknown?.message.hasPrefix("$.inptu unknown field") ?? false, unknown?.message ?? "")
        XCTAssertEqual(refusal(.audio, #"{"input":"a","output":{"path":"b.mp4"}}"#)?.kind, .unsupported, "an audio job writes an audio container")
    }

    func testThumbnailNeedsANumberPatternForSeveralImages() {
        XCTAssertTrue(Thumbnail.hasNumberPattern("a-%02d.jpg"))
        XCTAssertFalse(Thumbnail.hasNumberPattern("a-%s.jpg"))
        XCTAssertFalse(Thumbnail.hasNumberPattern("a-%d-%d.jpg"))
        XCTAssertEqual(refusal(.thumbnail, #"{"input":"a","count":3,"output":{"path":"t.jpg"}}"#)?.kind, .invalid)
        XCTAssertNil(refusal(.thumbnail, #"{"input":"a","count":3,"output":{"path":"t-%d.jpg"}}"#))
    }

    func testDecodeOptionsAndLimits() throws {
        XCTAssertEqual(try DecodeOptions.parse(nil), DecodeOptions())
        let d = try DecodeOptions.parse(reader(#"{"autorotate":false,"deinterlace":"on","audioTrack":2}"#))
        XCTAssertEqual(d.autorotate, false); XCTAssertEqual(d.deinterlace, .on); XCTAssertEqual(d.audioTrack, 2)
        var limits = MediaLimits()
        var l = try reader(#"{"maxWidth":1920,"maxJobMemoryBytes":1073741824}"#)
        try limits.read(&l)
        XCTAssertEqual(limits.maxWidth, 1920); XCTAssertEqual(limits.maxJobMemoryBytes, 1 << 30); XCTAssertEqual(limits.maxHeight, 8192)
        var bad = try reader(#"{"maxWidth":1}"#)
        XCTAssertThrowsError(try limits.read(&bad))
    }

    func testStoryboardRules() throws {
        guard case .thumbnail(let t) = try spec(.thumbnail, #"{"input":"a.mp4","storyboard":{"vtt":"b/s.vtt"},"output":{"path":"b/s-%03d.jpg"}}"#),
              case .storyboard(let s) = t.times else { return XCTFail() }
        XCTAssertEqual(s, Storyboard(interval: 10, columns: 5, rows: 5, vtt: "b/s.vtt"), "the defaults")
        XCTAssertEqual(JobSpec.thumbnail(t).outputPaths, ["b/s-%03d.jpg", "b/s.vtt"], "the WebVTT file is an output the path checks see")
        let numbered = refusal(.thumbnail, #"{"input":"a","storyboard":{"vtt":"s.vtt"},"output":{"path":"s.jpg"}}"#)
        XCTAssertEqual(numbered?.kind, .invalid); XCTAssertTrue(numbered?.message.hasPrefix("$.output.path needs a %d-style number in its file name") ?? false)
        let elsewhere = refusal(.thumbnail, #"{"input":"a","storyboard":{"vtt":"c/s.vtt"},"output":{"path":"b/s-%d.jpg"}}"#)
        XCTAssertEqual(elsewhere?.message, "$.storyboard.vtt must be in the sheets' directory (b): the WebVTT file names them by file name")
        XCTAssertNotNil(refusal(.thumbnail, #"{"input":"a","storyboard":{"vtt":"s.txt"},"output":{"path":"s-%d.jpg"}}"#))
        XCTAssertNotNil(refusal(.thumbnail, #"{"input":"a","storyboard":{"vtt":"d%d/s.vtt"},"output":{"path":"d%d/s.jpg"}}"#), "the number is in the file name")
        XCTAssertNil(refusal(.thumbnail, #"{"input":"a","storyboard":{"vtt":"b/s.vtt"},"output":{"path":"./b//s-%d.jpg"}}"#), "the same directory, written differently")
        XCTAssertNotNil(refusal(.thumbnail, #"{"input":"a","count":3,"storyboard":{"vtt":"s.vtt"},"output":{"path":"s-%d.jpg"}}"#))
        XCTAssertNotNil(refusal(.thumbnail, #"{"input":"a","sheet":{},"storyboard":{"vtt":"s.vtt"},"output":{"path":"s-%d.jpg"}}"#))
        XCTAssertEqual(refusal(.thumbnail, #"{"input":"a","storyboard":{"vtt":"s.vtt","interval":0.01},"output":{"path":"s-%d.jpg"}}"#)?.message,
                       "$.storyboard.interval must be between 0.1 and 3600, found 0.01")
        XCTAssertNotNil(refusal(.thumbnail, #"{"input":"a","storyboard":{"vtt":"s.vtt","rows":21},"output":{"path":"s-%d.jpg"}}"#))
        XCTAssertNotNil(refusal(.thumbnail, #"{"input":"a","storyboard":{"vtt":"s.vtt","colums":2},"output":{"path":"s-%d.jpg"}}"#))
    }

    func testPreviewRules() throws {
        guard case .thumbnail(let t) = try spec(.thumbnail, #"{"input":"a.mp4","preview":{},"output":{"path":"p.gif"}}"#),
              case .preview(let p) = t.times else { return XCTFail() }
        XCTAssertEqual(p, Preview(span: .range(start: 0, duration: 3), fps: 10, loop: true), "the defaults")
        XCTAssertEqual(t.format, .gif)
        guard case .thumbnail(let m) = try spec(.thumbnail, #"{"input":"a","preview":{"moments":4,"fps":6,"loop":false},"output":{"path":"p.webp"}}"#),
              case .preview(let q) = m.times else { return XCTFail() }
        XCTAssertEqual(q, Preview(span: .moments(count: 4, duration: 1), fps: 6, loop: false))
        XCTAssertEqual(refusal(.thumbnail, #"{"input":"a","preview":{},"output":{"path":"p.jpg"}}"#)?.kind, .unsupported)
        XCTAssertEqual(refusal(.thumbnail, #"{"input":"a","at":[1],"output":{"path":"p.gif"}}"#)?.kind, .unsupported, "a still is never a GIF")
        XCTAssertEqual(refusal(.thumbnail, #"{"input":"a","preview":{"moments":3,"start":1},"output":{"path":"p.gif"}}"#)?.kind, .invalid)
        XCTAssertEqual(refusal(.thumbnail, #"{"input":"a","preview":{"momentDuration":1},"output":{"path":"p.gif"}}"#)?.message, "$.preview.momentDuration needs moments")
        XCTAssertEqual(refusal(.thumbnail, #"{"input":"a","preview":{"moments":20,"momentDuration":4},"output":{"path":"p.gif"}}"#)?.message, "$.preview 20 moments of 4.0 s make more than 60 s")
        XCTAssertNotNil(refusal(.thumbnail, #"{"input":"a","preview":{"duration":61},"output":{"path":"p.gif"}}"#))
        XCTAssertNotNil(refusal(.thumbnail, #"{"input":"a","preview":{"fps":31},"output":{"path":"p.gif"}}"#))
        XCTAssertNotNil(refusal(.thumbnail, #"{"input":"a","preview":{},"storyboard":{"vtt":"s.vtt"},"output":{"path":"p-%d.gif"}}"#))
        XCTAssertEqual(refusal(.thumbnail, #"{"input":"a","preview":{},"seek":"keyframe","output":{"path":"p.gif"}}"#)?.kind, .invalid)
        guard case .thumbnail(let fast) = try spec(.thumbnail, #"{"input":"a","at":[3],"seek":"keyframe","output":{"path":"s.jpg"}}"#) else { return XCTFail() }
        XCTAssertEqual(fast.seek, .keyframe)
    }

    func testPackageDefaultsAndRefusals() throws {
        guard case .package(let p) = try spec(.package, #"{"input":"a.mp4","output":{"path":"streams/a"}}"#) else { return XCTFail() }
        XCTAssertEqual(p.formats, .both); XCTAssertEqual(p.segmentSeconds, 4); XCTAssertNil(p.renditions)
        XCTAssertEqual(p.audio, [Package.AudioRendition(bitrateKbps: 128, channels: 2)]); XCTAssertEqual(p.preset, .veryfast)
        XCTAssertEqual(JobSpec.package(p).outputPaths, ["streams/a"]); XCTAssertEqual(JobSpec.package(p).inputPaths, ["a.mp4"])
        guard case .package(let q) = try spec(.package, #"{"input":"a.mp4","output":{"path":"s","overwrite":true},"formats":"hls","audio":[],"renditions":[{"width":640,"crf":20,"codec":"hevc"}],"storyboard":{"interval":2}}"#) else { return XCTFail() }
        XCTAssertEqual(q.renditions, [Package.Rendition(width: 640, crf: 20, codec: .hevc)])
        XCTAssertTrue(q.audio.isEmpty); XCTAssertTrue(q.overwrite); XCTAssertEqual(q.storyboard?.vtt, Package.storyboardVTT)
        let bad = [
            #"{"input":"a","output":{"path":"s/"}}"#: "must name the directory",
            #"{"input":"a","output":{"path":"s"},"renditions":[{"crf":20}]}"#: "needs a height or a width",
            #"{"input":"a","output":{"path":"s"},"renditions":[{"height":360,"crf":20,"bitrateKbps":500}]}"#: "not both",
            #"{"input":"a","output":{"path":"s"},"renditions":[{"height":360,"codec":"vp9"}]}"#: "h264 or hevc",
            #"{"input":"a","output":{"path":"s"},"renditions":[]}"#: "renditions",
            #"{"input":"a","output":{"path":"s"},"audio":[{"channels":4}]}"#: "1, 2 or 6",
            #"{"input":"a","output":{"path":"s"},"segmentSeconds":0.5}"#: "segmentSeconds",
            #"{"input":"a","output":{"path":"s"},"storyboard":{"vtt":"x.vtt"}}"#: "vtt",
        ]
        for (json, words) in bad {
            let e = refusal(.package, json)
            XCTAssertNotNil(e, json)
            XCTAssertTrue("\(e.map { "\($0)" } ?? "")".contains(words), "\(json): \(e.map { "\($0)" } ?? "nil")")
        }
    }
}
