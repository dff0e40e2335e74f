import JobSchema
import Foundation
import MediaKit
import SpoolKit
import SystemPackage

/// The facts of a finished output file, for the result record.
enum OutputInspection {
    /// The record of a file that is not media (a WebVTT file): its size and
    /// digest, read back from what was published.
    static func plainRecord(_ target: OutputTarget, manifestPath: String, format: String) -> OutputRecord {
        guard let url = target.readbackURL else { preconditionFailure("record of an output never written") }
        let size = (try? Sys.stat(FilePath(url)).st_size).map(Int64.init) ?? 0
        return OutputRecord(path: manifestPath, format: format, sizeBytes: size, sha256: (try? sha256Hex(ofFile: url)) ?? "")
    }

    /// Read back through the published file's own descriptor (the inode
    /// written, whatever happened to the path since).
    static func record(_ target: OutputTarget, manifestPath: String, container: Container) throws(SpoolError) -> OutputRecord {
        guard let url = target.readbackURL else { preconditionFailure("record of an output never written") }
        do {
            let f = try InputFormat(url: url, limits: OpenLimits(quickStreamInfo: true), demuxers: allowedDemuxers + ",image2", shouldAbort: { false })
            let info = f.info()
            let v = info.streams.first { $0.kind == .video }, a = info.streams.first { $0.kind == .audio }
            let size = (try? Sys.stat(FilePath(url)).st_size).map(Int64.init) ?? 0
            let sha = (try? sha256Hex(ofFile: url)) ?? ""
            return OutputRecord(path: manifestPath, format: container.rawValue, sizeBytes: size,
                                durationSeconds: info.durationSeconds.map { ($0 * 1000).rounded() / 1000 },
                                width: v?.width, height: v?.height, videoCodec: v?.codec, audioCodec: a?.codec, sha256: sha)
        } catch {
            throw SpoolError(.internal, "the output \(manifestPath) was written but cannot be read back (\(error)); this is a bug", step: "inspect-output")
        }
    }
}
