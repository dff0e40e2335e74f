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
        let src = SourceVideo(displayWidth: 240, displayHeight: 320, filters: ["bwdif=mode=send_frame:parity=auto:deint=all"], upright: [.transpose(.clock)])
        XCTAssertEqual(FilterText.videoChain(source: src, trim: Trim(start: 1, duration: 2), width: nil, height: 160, squarePixels: false, fps: 25, pixelFormat: "yuv420p"),
                       "trim=start=1:duration=2,setpts=PTS-STARTPTS,bwdif=mode=send_frame:parity=auto:deint=all,scale=160:-2,transpose=dir=clock,fps=25,format=yuv420p",
                       "scaled: the stored picture is scaled (sides swapped), then turned")
        XCTAssertEqual(FilterText.videoChain(source: src, trim: nil, width: nil, height: nil, squarePixels: false, fps: nil, pixelFormat: "yuv420p"),
                       "bwdif=mode=send_frame:parity=auto:deint=all,transpose=dir=clock,format=yuv420p", "not scaled: turned as the command does")
    }

    /// Scaling before turning asks the scale for the stored picture's
    /// sides, so the output is the size it would be when turned first.
    func testScaleBeforeUprightSwapsTheSides() {
        let portrait = SourceVideo(displayWidth: 1080, displayHeight: 1920, upright: [.transpose(.cclock)])
        func chain(_ s: SourceVideo, _ w: Int?, _ h: Int?, square: Bool = false) -> String {
            FilterText.videoChain(source: s, trim: nil, width: w, height: h, squarePixels: square, fps: nil, pixelFormat: "yuv420p")
        }
        XCTAssertEqual(chain(portrait, nil, 480), "scale=480:-2,transpose=dir=cclock,format=yuv420p")
        XCTAssertEqual(chain(portrait, 270, nil), "scale=-2:270,transpose=dir=cclock,format=yuv420p")
        XCTAssertEqual(chain(portrait, 360, 640), "scale=640:360,setsar=1,transpose=dir=cclock,format=yuv420p", "both sides: exactly that picture once turned")
        // An anamorphic portrait clip, 576x720 upright with SAR 45:64 (405x720 on screen), to square pixels.
        let dv = SourceVideo(displayWidth: 405, displayHeight: 720, anamorphic: true, upright: [.transpose(.clock)])
        XCTAssertEqual(FilterText.squareSize(width: nil, height: 360, source: dv).width, 202)
        XCTAssertEqual(chain(dv, nil, 360, square: true), "scale=360:202,setsar=1,transpose=dir=clock,format=yuv420p")
        XCTAssertEqual(chain(dv, nil, nil, square: true), "scale=720:405,setsar=1,transpose=dir=clock,format=yuv420p")
        // 180 degrees: flips keep the sides.
        let upsideDown = SourceVideo(displayWidth: 1920, displayHeight: 1080, upright: [.hflip, .vflip])
        XCTAssertEqual(chain(upsideDown, nil, 480), "scale=-2:480,hflip,vflip,format=yuv420p")
        // Any other angle: the rotate filter's size depends on its input, so it stays first.
        let tilted = SourceVideo(displayWidth: 640, displayHeight: 480, upright: [.rotate(45)])
        XCTAssertEqual(chain(tilted, nil, 240), "rotate=45*PI/180,scale=-2:240,format=yuv420p")
    }

    func testChannelLayouts() {
        XCTAssertEqual([1, 2, 6, 8].map(FilterText.layout), ["mono", "stereo", "5.1", "7.1"])
        XCTAssertEqual(Encoding.audioTarget(AudioSettings(), container: .m4a, inputRate: 44100, inputChannels: 6).channels, 2, "more than two: stereo unless asked")
        XCTAssertEqual(Encoding.audioTarget(AudioSettings(channels: 6), container: .m4a, inputRate: 44100, inputChannels: 6).channels, 6)
    }
}
