import JobSchema
@testable import Jobs
import XCTest

/// The storyboard's WebVTT text, golden: cue times, sheets and rectangles.
final class StoryboardTextTests: XCTestCase {
    func testCuesNameTheirSheetAndRectangle() {
        let text = StoryboardMaker.vtt(tiles: 5, interval: 2.5, duration: 11.2, columns: 2, rows: 2,
                                       tileWidth: 160, tileHeight: 90, sheets: ["s-1.jpg", "s-2.jpg"])
        XCTAssertEqual(text, """
            WEBVTT

            00:00:00.000 --> 00:00:02.500
            s-1.jpg#xywh=0,0,160,90

            00:00:02.500 --> 00:00:05.000
            s-1.jpg#xywh=160,0,160,90

            00:00:05.000 --> 00:00:07.500
            s-1.jpg#xywh=0,90,160,90

            00:00:07.500 --> 00:00:10.000
            s-1.jpg#xywh=160,90,160,90

            00:00:10.000 --> 00:00:11.200
            s-2.jpg#xywh=0,0,160,90

            """)
    }

    func testSheetNamesAreEscapedAsRelativeURLs() {
        XCTAssertEqual(StoryboardMaker.urlName("my board #1 ?a:b 01.jpg"), "my%20board%20%231%20%3Fa%3Ab%2001.jpg")
        XCTAssertEqual(StoryboardMaker.urlName("a-01_x~.jpg"), "a-01_x~.jpg")
    }

    func testTimestamps() {
        XCTAssertEqual(StoryboardMaker.timestamp(0), "00:00:00.000")
        XCTAssertEqual(StoryboardMaker.timestamp(3723.4567), "01:02:03.457")
        XCTAssertEqual(StoryboardMaker.timestamp(36000), "10:00:00.000")
    }

    func testPreviewTicks() throws {
        // A stretch: fps ticks from its start, clipped to the input.
        XCTAssertEqual(try PreviewMaker.ticks(.init(span: .range(start: 2, duration: 1), fps: 4, loop: true), duration: 10, input: "a"), [2, 2.25, 2.5, 2.75])
        XCTAssertEqual(try PreviewMaker.ticks(.init(span: .range(start: 9.5, duration: 3), fps: 2, loop: true), duration: 10, input: "a"), [9.5])
        // Moments: evenly spaced stretches, centred in equal parts of the input.
        XCTAssertEqual(try PreviewMaker.ticks(.init(span: .moments(count: 2, duration: 1), fps: 2, loop: true), duration: 10, input: "a"), [2, 2.5, 7, 7.5])
        // Moments longer than the input's parts shrink to fit.
        XCTAssertEqual(try PreviewMaker.ticks(.init(span: .moments(count: 4, duration: 2), fps: 1, loop: true), duration: 4, input: "a"), [0, 1, 2, 3])
        XCTAssertThrowsError(try PreviewMaker.ticks(.init(span: .range(start: 10, duration: 1), fps: 1, loop: true), duration: 10, input: "a"))
        XCTAssertThrowsError(try PreviewMaker.ticks(.init(span: .moments(count: 2, duration: 1), fps: 1, loop: true), duration: 0, input: "a"))
    }
}
