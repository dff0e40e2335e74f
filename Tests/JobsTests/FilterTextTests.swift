import JobSchema
import CFFmpeg
@testable import Jobs
import MediaKit
@testable import SpoolKit
import XCTest

/// Golden filter text: what the chains say for each case, so a change to
/// them is a visible change to a test (issue 12's JobsTests).
final class FilterTextTests: XCTestCase {
    let square = SourceVideo(displayWidth: 320, displayHeight: 240)
    let pal169 = SourceVideo(displayWidth: 1024, displayHeight: 576, anamorphic: true)

    func testScaleKeepsTheSampleAspectOrMakesSquarePixels() {
        XCTAssertEqual(FilterText.scale(width: nil, height: 288, squarePixels: false, source: pal169), ["scale=-2:288"])
        XCTAssertEqual(FilterText.scale(width: nil, height: 288, squarePixels: true, source: pal169), ["scale=512:288", "setsar=1"])
        XCTAssertEqual(FilterText.scale(width: 640, height: nil, squarePixels: true, source: pal169), ["scale=640:360", "setsar=1"])
        XCTAssertEqual(FilterText.scale(width: nil, height: nil, squarePixels: true, source: pal169), ["scale=1024:576", "setsar=1"])
        XCTAssertEqual(FilterText.scale(width: nil, height: nil, squarePixels: true, source: square), [], "square already: nothing")
        XCTAssertEqual(FilterText.scale(width: 640, height: 360, squarePixels: false, source: pal169), ["scale=640:360", "setsar=1"], "both sides: exactly that")
        XCTAssertEqual(FilterText.scale(width: 321, height: nil, squarePixels: true, source: square), ["scale=321:240", "setsar=1"])
    }

    func testUprightStepsAreFFmpegsAutorotate() {
        XCTAssertEqual(FilterText.orient(.transpose(.clock)), "transpose=dir=clock")
        XCTAssertEqual(FilterText.orient(.transpose(.cclockFlip)), "transpose=dir=cclock_flip")
        XCTAssertEqual(FilterText.orient(.hflip), "hflip")
        XCTAssertEqual(FilterText.orient(.rotate(45)), "rotate=45*PI/180")
        XCTAssertEqual(FilterText.orient(.rotate(12.5)), "rotate=12.500000*PI/180")
    }

    func testToneMapNamesTheInputAndEndsInYUV() {
        let pq = ColourTags(primaries: AVCOL_PRI_BT2020, transfer: AVCOL_TRC_SMPTE2084, space: AVCOL_SPC_BT2020_NCL, range: AVCOL_RANGE_MPEG)
        XCTAssertEqual(FilterText.toneMap(from: pq), [
            "zscale=transfer=linear:npl=100:transferin=16:primariesin=9:matrixin=9:rangein=limited", "format=gbrpf32le",
            "zscale=primaries=bt709", "tonemap=tonemap=hable:desat=0", "zscale=transfer=bt709:matrix=bt709:range=limited", "format=yuv420p10le"])
        let hlgUntagged = ColourTags(transfer: AVCOL_TRC_ARIB_STD_B67)
        XCTAssertEqual(FilterText.toneMap(from: hlgUntagged).first, "zscale=transfer=linear:npl=100:transferin=18:rangein=limited")
    }

    func testVideoChainOrder() {
        let src = SourceVideo(displayWidth: 240, displayHeight: 320, filters: ["transpose=dir=clock"])
        XCTAssertEqual(FilterText.videoChain(source: src, trim: Trim(start: 1, duration: 2), width: nil, height: 160, squarePixels: false, fps: 25, pixelFormat: "yuv420p"),
                       "trim=start=1:duration=2,setpts=PTS-STARTPTS,transpose=dir=clock,scale=-2:160,fps=25,format=yuv420p")
    }

    func testChannelLayouts() {
        XCTAssertEqual([1, 2, 6, 8].map(FilterText.layout), ["mono", "stereo", "5.1", "7.1"])
        XCTAssertEqual(Encoding.audioTarget(AudioSettings(), container: .m4a, inputRate: 44100, inputChannels: 6).channels, 2, "more than two: stereo unless asked")
        XCTAssertEqual(Encoding.audioTarget(AudioSettings(channels: 6), container: .m4a, inputRate: 44100, inputChannels: 6).channels, 6)
    }
}
