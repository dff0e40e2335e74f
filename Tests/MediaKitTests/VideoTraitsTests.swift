import CFFmpeg
import MediaKit
import XCTest

/// DisplayMatrix and ColourTags on their own (VideoTraits.swift).
final class VideoTraitsTests: XCTestCase {
    /// A matrix as av_display_rotation_set writes it, optionally mirrored.
    func matrix(_ degreesCounterClockwise: Double, hflip: Bool = false) -> DisplayMatrix {
        var m = [Int32](repeating: 0, count: 9)
        m.withUnsafeMutableBufferPointer { av_display_rotation_set($0.baseAddress!, degreesCounterClockwise) }
        if hflip { m.withUnsafeMutableBufferPointer { av_display_matrix_flip($0.baseAddress!, 1, 0) } }
        return DisplayMatrix(m)!
    }

    func testRotationAndUprightStepsMatchFFmpeg() {
        // av_display_rotation_set(90): shown turned 90 degrees clockwise
        // (fftools' get_rotation gives 90 and inserts transpose=clock).
        XCTAssertEqual(matrix(90).rotationDegrees, 90)
        XCTAssertEqual(matrix(90).uprightSteps, [.transpose(.clock)])
        XCTAssertEqual(matrix(-90).rotationDegrees, 270)
        XCTAssertEqual(matrix(-90).uprightSteps, [.transpose(.cclock)])
        XCTAssertEqual(matrix(180).uprightSteps, [.hflip, .vflip])
        XCTAssertEqual(matrix(0).uprightSteps, [])
        XCTAssertTrue(matrix(0).isIdentity)
        XCTAssertTrue(matrix(0, hflip: true).isMirrored)
        XCTAssertEqual(matrix(0, hflip: true).uprightSteps, [.hflip])
        XCTAssertTrue(matrix(90).swapsDimensions); XCTAssertFalse(matrix(180).swapsDimensions)
        XCTAssertNil(DisplayMatrix([1, 2, 3]), "nine values or none")
    }

    func testColourAfterConversion() {
        let full = ColourTags(primaries: AVCOL_PRI_BT709, transfer: AVCOL_TRC_BT709, space: AVCOL_SPC_BT709, range: AVCOL_RANGE_JPEG)
        XCTAssertEqual(full.converted(from: "yuvj420p", to: "yuv420p").range, AVCOL_RANGE_MPEG, "squeezed to limited")
        XCTAssertEqual(full.converted(from: "yuv420p", to: "yuv420p").range, AVCOL_RANGE_JPEG, "no conversion, no change")
        let rgb = ColourTags(space: AVCOL_SPC_RGB)
        XCTAssertEqual(rgb.converted(from: "gbrp", to: "yuv420p").space, AVCOL_SPC_SMPTE170M, "swscale's BT.601")
        XCTAssertTrue(ColourTags(transfer: AVCOL_TRC_ARIB_STD_B67).isHDR)
        XCTAssertFalse(ColourTags.bt709.isHDR)
        XCTAssertEqual(ColourTags.bt709.transferName, "bt709")
        XCTAssertNil(ColourTags().primariesName)
    }
}
