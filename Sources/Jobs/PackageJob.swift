import Foundation
import JobSchema
import MediaKit
import SpoolKit

/// `package`: one input to an adaptive-streaming directory (docs/manifest.md
/// "package"): the ladder (PackageLadder: decoded once, every rendition
/// encoded from the same frames), HLS and/or DASH over the same fMP4
/// segments, and optionally a storyboard and an animated preview beside
/// them. The directory is written under a temporary name and published
/// whole by one rename (OutputTarget+Directory.swift), then the record.
public struct PackageJob: JobRunner {
    public init() {}

    public func run(_ job: JobContext) throws(SpoolError) -> JobOutcome {
        guard case .package(let p) = job.manifest.job else { preconditionFailure("PackageJob given a \(job.manifest.type) job") }
        let t0 = Date()
        job.progress(step: "check-paths", fraction: 0)
        let input = try job.policy.openInput(p.input)
        let target = try job.openOutput(p.output, overwrite: p.overwrite, directory: true)
        defer { target.discard() } // no partial directory under any name after a failure
        let url = try target.temporaryDirectoryURL()
        let ladder = try PackageLadder(job: job, inputFile: input, package: p)
        try ladder.run(directoryURL: url)
        var steps = [StepTiming(name: "decode+encode ladder", durationMs: Int(Date().timeIntervalSince(t0) * 1000))]

        if p.storyboard != nil || p.preview != nil {
            let t1 = Date()
            // Written into the temporary directory through the same path
            // checks and publishing as a thumbnail job's files.
            let inside = target.temporaryManifestPath(p.output)
            let grabber = try FrameGrabber(job: job, input: try job.policy.openInput(p.input), inputName: p.input, threads: job.threads)
            if var board = p.storyboard {
                board.vtt = inside + "/" + Package.storyboardVTT
                // The sheets' path is a format (its %02d numbers them): a %
                // of the manifest's own path is escaped, never a directive.
                let sheets = inside.replacingOccurrences(of: "%", with: "%%") + "/" + Package.storyboardSheets
                let t = Thumbnail(input: p.input, times: .storyboard(board), output: sheets, format: .jpg)
                _ = try StoryboardMaker.run(job, t, board, grabber: grabber, started: t1)
            }
            if let preview = p.preview {
                let t = Thumbnail(input: p.input, times: .preview(preview), output: inside + "/" + Package.previewName, format: .webp)
                _ = try PreviewMaker.run(job, t, preview, grabber: grabber, started: t1)
            }
            steps.append(StepTiming(name: "storyboard+preview", durationMs: Int(Date().timeIntervalSince(t1) * 1000)))
        }

        job.progress(step: "publish-output", fraction: 0.97)
        let files = Dictionary(target.directoryFiles().map { ($0.name, $0.size) }, uniquingKeysWith: { a, _ in a })
        func text(_ name: String) -> String? { target.readInDirectory(name).map { String(decoding: $0, as: UTF8.self) } }
        guard let master = text(Package.masterPlaylist) else {
            throw SpoolError(.internal, "the dash muxer wrote no \(Package.masterPlaylist) in \(p.output); this is a bug", step: "write-output")
        }
        var media: [String: HLSPlaylists.Media] = [:]
        func rates(_ uri: String) -> (peak: Int, average: Int)? {
            guard !uri.contains("/"), let m = media[uri] ?? text(uri).map(HLSPlaylists.parseMedia) else { return nil }
            media[uri] = m
            return HLSPlaylists.rates(m, size: { files[$0] })
        }
        let finished = HLSPlaylists.finishMaster(master, rates: rates)
        // The top rendition's playlist: the first variant's.
        let top = master.split(whereSeparator: \.isNewline).first { !$0.hasPrefix("#") && !$0.isEmpty }.map(String.init)
        let duration = top.flatMap { media[$0]?.duration } ?? ladder.durationSeconds
        if p.formats.hls {
            try target.writeInDirectory(Package.masterPlaylist, Array(finished.utf8))
        } else {
            for name in files.keys where name.hasSuffix(".m3u8") { target.removeInDirectory(name) }
        }
        if !p.formats.dash { target.removeInDirectory(Package.mpd) }
        if let left = try target.publishDirectory(manifestPath: p.output) {
            job.logger.warning("\(p.output): the package it replaced could not be removed; it is left as \(left) (retention removes it with this job)", metadata: ["STEP": "publish-output"])
        }
        steps.append(StepTiming(name: "total", durationMs: Int(Date().timeIntervalSince(t0) * 1000)))
        return JobOutcome(outputs: [record(target, package: p, ladder: ladder, duration: duration)], steps: steps)
    }

    /// The directory's record: its size, the top rendition's picture and
    /// codecs, the duration of its playlists, and as `sha256` the digest of
    /// its listing, one `sha256sum`-style line per file in name order
    /// (docs/manifest.md "package"), read back from the published files.
    func record(_ target: OutputTarget, package p: Package, ladder: PackageLadder, duration: Double?) -> OutputRecord {
        let files = target.directoryFiles()
        var listing = ""
        for f in files {
            let digest = target.openInDirectory(f.name).flatMap { fd -> String? in
                defer { try? fd.close() }
                return try? sha256Hex(ofFile: "/proc/self/fd/\(fd.rawValue)")
            } ?? ""
            listing += "\(digest)  \(f.name)\n"
        }
        let top = ladder.rungs.first
        return OutputRecord(path: p.output, format: "package", sizeBytes: files.reduce(0) { $0 + $1.size },
                            durationSeconds: duration.map { ($0 * 1000).rounded() / 1000 },
                            width: top?.width, height: top?.height, videoCodec: top?.codec.rawValue,
                            audioCodec: ladder.audioChannels.isEmpty ? nil : "aac", sha256: Digest.sha256Hex(Array(listing.utf8)))
    }
}
