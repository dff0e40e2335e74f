import Foundation
import JobSchema
import MediaKit
import SpoolKit

/// A thumbnail job's `storyboard`: a tile every `interval` seconds from the
/// start, laid out in numbered sheets of columns x rows, and a WebVTT file
/// whose cues map each tile's time range to `sheet#xywh=x,y,w,h` (the
/// format seek-bar previews read: Mux, JW Player, Video.js plugins,
/// Jellyfin's trickplay). The input is decoded once, forward
/// (`FrameGrabber.frames(at:each:)`), and each sheet is encoded as soon as
/// it is full, so memory holds one sheet, not the whole board.
enum StoryboardMaker {
    static func run(_ job: JobContext, _ t: Thumbnail, _ board: Storyboard, grabber: FrameGrabber, started: Date) throws(SpoolError) -> JobOutcome {
        let duration = grabber.duration
        guard duration > 0 else {
            throw SpoolError(.inputInvalid, "input \(t.input) does not say how long it is; a storyboard needs its duration", step: "open-input")
        }
        let tiles = max(1, Int((duration / board.interval).rounded(.up)))
        guard tiles <= Storyboard.maxTiles else {
            throw SpoolError(.limitExceeded, "a storyboard of \(t.input) every \(FilterText.num(board.interval)) s would have \(tiles) tiles; at most \(Storyboard.maxTiles): raise storyboard.interval", step: "validate")
        }
        let width = t.width ?? (t.height == nil ? Storyboard.defaultTileWidth : nil)
        let renderer = StillRenderer(grabber: grabber, width: width, height: t.height, format: t.format,
                                     tile: .init(columns: board.columns, rows: board.rows, gap: 0))
        var sheets: [[UInt8]] = []
        try grabber.frames(at: (0..<tiles).map { Double($0) * board.interval }) { (i: Int, frame: Frame) throws(SpoolError) in
            sheets += try renderer.push(frame)
            job.progress(step: "decode", fraction: Double(i + 1) / Double(tiles) * 0.9)
            try job.checkCancelled(step: "decode")
        }
        sheets += try renderer.finish()
        guard let tile = renderer.frameSize else { preconditionFailure("a storyboard of \(tiles) tiles rendered none") }
        var outputs: [OutputRecord] = []
        var names: [String] = []
        for (i, bytes) in sheets.enumerated() {
            let rel = String(format: t.output, i + 1)
            // A URL relative to the WebVTT file (same directory), escaped.
            let name = String(rel.split(separator: "/").last ?? Substring(rel))
            names.append(name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? name)
            outputs.append(try ThumbnailJob.publish(bytes, to: rel, format: t.format.rawValue, job: job, overwrite: t.overwrite))
        }
        let cues = vtt(tiles: tiles, interval: board.interval, duration: duration, columns: board.columns, rows: board.rows,
                       tileWidth: tile.width, tileHeight: tile.height, sheets: names)
        let target = try job.openOutput(board.vtt, overwrite: t.overwrite)
        try target.write(Array(cues.utf8), manifestPath: board.vtt)
        outputs.append(OutputInspection.plainRecord(target, manifestPath: board.vtt, format: "vtt"))
        return JobOutcome(outputs: outputs, steps: [StepTiming(name: "decode+tile+encode", durationMs: Int(Date().timeIntervalSince(started) * 1000))])
    }

    /// The WebVTT text: one cue per tile, from its time to the next tile's
    /// (the last one to the end), naming the sheet and the tile's rectangle.
    static func vtt(tiles: Int, interval: Double, duration: Double, columns: Int, rows: Int,
                    tileWidth: Int, tileHeight: Int, sheets: [String]) -> String {
        var text = "WEBVTT\n"
        let perSheet = columns * rows
        for k in 0..<tiles {
            let start = Double(k) * interval, end = min(Double(k + 1) * interval, duration)
            let sheet = sheets[min(k / perSheet, sheets.count - 1)], at = k % perSheet
            let x = (at % columns) * tileWidth, y = (at / columns) * tileHeight
            text += "\n\(timestamp(start)) --> \(timestamp(max(end, start + 0.001)))\n\(sheet)#xywh=\(x),\(y),\(tileWidth),\(tileHeight)\n"
        }
        return text
    }

    /// `HH:MM:SS.mmm`, as WebVTT writes a time.
    static func timestamp(_ seconds: Double) -> String {
        let ms = Int((seconds * 1000).rounded())
        return String(format: "%02d:%02d:%02d.%03d", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
    }
}
