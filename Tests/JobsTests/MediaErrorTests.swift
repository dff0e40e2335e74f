import JobSchema
import Foundation
@testable import Jobs
import Logging
import MediaKit
@testable import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// FFmpeg's errors in the spool's terms: one mapping (MediaErrors.swift),
/// every code a person acts on (issue 12's JobsTests).
final class MediaErrorTests: XCTestCase {
    func context(_ manifest: String = #"{"version":1,"type":"probe","input":"a.mp4","timeoutSeconds":30}"#) throws -> JobContext {
        let root = FilePath(NSTemporaryDirectory()).appending("mediaspool-jobs-\(UUID().uuidString.prefix(8))")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: root.string) }
        var limits = MediaLimits(); limits.maxStreams = 7
        return JobContext(id: "j", manifest: try Manifest.parse(Array(manifest.utf8), fileID: "j"), attempt: 1,
                          policy: PathPolicy(mediaRoot: root, allowedRoots: []), limits: limits, logger: Logger(label: "t"),
                          deadline: .now.advanced(by: .seconds(30)), layout: SpoolLayout(root: root), startedAt: Date())
    }

    func code(_ e: AVError, _ job: JobContext) -> (ErrorCode, String) {
        let s = SpoolError.media(e, "input a.mp4", step: "decode", job: job)
        XCTAssertEqual(s.step, "decode")
        return (s.code, s.message)
    }

    func testEveryFFmpegErrorGetsItsCode() throws {
        let job = try context()
        XCTAssertEqual(code(.errno(ENOSPC), job).0, .noSpace)
        XCTAssertEqual(code(.errno(EDQUOT), job).0, .noSpace)
        let streams = code(.errno(E2BIG), job)
        XCTAssertEqual(streams.0, .limitExceeded); XCTAssertTrue(streams.1.contains("maxStreams = 7"), streams.1)
        XCTAssertEqual(code(.noMemory, job).0, .limitExceeded)
        XCTAssertEqual(code(.errno(EIO), job).0, .ioError)
        XCTAssertEqual(code(.invalidData, job).0, .inputInvalid)
        XCTAssertEqual(code(.demuxerNotFound, job).0, .inputInvalid)
        let empty = code(.eof, job)
        XCTAssertEqual(empty.0, .inputInvalid); XCTAssertTrue(empty.1.contains("empty or truncated"), empty.1)
        XCTAssertEqual(code(.decoderNotFound, job).0, .unsupported)
        XCTAssertTrue(ErrorCode.noSpace.retryable && ErrorCode.ioError.retryable)
        XCTAssertFalse(ErrorCode.inputInvalid.retryable || ErrorCode.unsupported.retryable)
    }

    /// While an output is written, the disk's errors are about the output.
    func testWritingAnOutputTheDisksErrorsNameIt() throws {
        let job = try context()
        let full = SpoolError.media(.errno(ENOSPC), "compose", step: "compose", job: job, writing: "out/a.mp4")
        XCTAssertEqual(full.code, .noSpace); XCTAssertEqual(full.step, "write-output"); XCTAssertTrue(full.message.contains("out/a.mp4"))
        XCTAssertEqual(SpoolError.media(.errno(EIO), "compose", step: "compose", job: job, writing: "out/a.mp4").code, .ioError)
        let denied = SpoolError.media(.errno(EACCES), "input a.mp4", step: "write-output", job: job, writing: "out/a.mp4")
        XCTAssertEqual(denied.code, .ioError); XCTAssertEqual(denied.step, "write-output")
        XCTAssertEqual(SpoolError.media(.encoderNotFound, "compose", step: "compose", job: job).code, .unsupported)
        XCTAssertEqual(SpoolError.media(.invalidData, "compose", step: "compose", job: job, writing: "out/a.mp4").code, .inputInvalid)
    }

    /// AVERROR_EXIT is what FFmpeg returns when the interrupt callback asked
    /// it to stop: its code is the reason the job was stopped.
    func testAnInterruptedCallIsTheStopsReason() throws {
        let timedOut = try context()
        timedOut.cancel(.timeout)
        let t = code(.exit, timedOut)
        XCTAssertEqual(t.0, .timeout); XCTAssertTrue(t.1.contains("30 s"), t.1)
        let stopping = try context()
        stopping.cancel(.shutdown)
        XCTAssertEqual(code(.exit, stopping).0, .interrupted)
    }
}
