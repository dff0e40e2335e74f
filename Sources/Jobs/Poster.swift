import JobSchema
import Foundation
import MediaKit
import SpoolKit

/// The gallery's poster of a video output: one JPEG, 320 pixels wide, of the
/// keyframe at or before 10% of the duration (at most 2 s in, past a fade
/// from black; one frame decoded, so a stream-copy job stays cheap),
/// made when the job completes and kept beside its result as the side file
/// `poster.jpg` (done/<id>.side-poster.jpg). A poster is an aid, not the
/// job: failing to make one is logged and the job is done all the same.
public enum Poster {
    /// The side file's name, which the gallery reads.
    public static let sideFileName = "poster.jpg"

    static func make(_ job: JobContext, output rel: String, record: OutputRecord) -> [SideFile] {
        guard let bytes = image(job, output: rel, record: record) else { return [] }
        return [SideFile(name: sideFileName, bytes: bytes)]
    }

    private static func image(_ job: JobContext, output rel: String, record: OutputRecord) -> [UInt8]? {
        guard record.videoCodec != nil, let d = record.durationSeconds, d > 0 else { return nil }
        do throws(SpoolError) {
            let input = try job.policy.openInput(rel, field: "output")
            let grabber = try FrameGrabber(job: job, input: input, inputName: rel, threads: 1)
            let frame = try grabber.frame(at: min(2, d * 0.1), keyframe: true)
            return try grabber.render([frame], width: 320, height: nil, format: .jpg, sheetColumns: nil).first
        } catch {
            job.logger.warning("no poster for \(rel): \(error.message)", metadata: ["STEP": "poster"])
            return nil
        }
    }
}
