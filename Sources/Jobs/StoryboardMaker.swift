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
    /// The largest sheet side, in pixels (WebP's limit is 16383; larger
    /// JPEG and PNG sheets are more than a browser wants to load).
    static let maxSheetSide = 16_383

    static func run(_ job: JobContext, _ t: Thumbnail, _ board: Storyboard, grabber: FrameGrabber, started: Date) throws(SpoolError) -> JobOutcome {
        let duration = grabber.duration
        guard duration > 0 else {
            throw SpoolError(.inputInvalid, "input \(t.input) does not say how long it is; a storyboard needs its duration (remux it to MP4 or Matroska first)", step: "open-input")
        }
        let tiles = max(1, Int((duration / board.interval).rounded(.up)))
        guard tiles <= Storyboard.maxTiles else {
            throw SpoolError(.limitExceeded, "a storyboard of \(t.input) every \(FilterText.num(board.interval)) s would have \(tiles) tiles; at most \(Storyboard.maxTiles): raise storyboard.interval", step: "validate")
        }
        let width = t.width ?? (t.height == nil ? Storyboard.defaultTileWidth : nil)
        // The sheet's size, known before anything is decoded.
        let tile = FilterText.squareSize(width: width, height: t.height, source: grabber.source)
        let sheetWidth = tile.width * board.columns, sheetHeight = tile.height * board.rows
        guard sheetWidth <= maxSheetSide, sheetHeight <= maxSheetSide else {
            throw SpoolError(.limitExceeded, "a sheet of \(board.columns) x \(board.rows) tiles of \(tile.width)x\(tile.height) would be \(sheetWidth)x\(sheetHeight); at most \(maxSheetSide) a side: lower storyboard.columns/rows or width/height", step: "validate")
        }
        try MemoryBudget.check(job, width: sheetWidth, height: sheetHeight, frames: 3, what: "a storyboard sheet")
        // The WebVTT file's path checks come first: a refusal leaves no sheet.
        let vttTarget = try job.openOutput(board.vtt, field: "storyboard.vtt", overwrite: t.overwrite)
        let renderer = StillRenderer(grabber: grabber, width: width, height: t.height, format: t.format,
                                     tile: .init(columns: board.columns, rows: board.rows, gap: 0))
        var outputs: [OutputRecord] = []
        var names: [String] = []
        // Each sheet is published as soon as it is full: memory holds one.
        func publish(_ sheets: [[UInt8]]) throws(SpoolError) {
            for bytes in sheets {
                let rel = String(format: t.output, names.count + 1)
                names.append(urlName(String(rel.split(separator: "/").last ?? Substring(rel))))
                outputs.append(try ThumbnailJob.publish(bytes, to: rel, format: t.format.rawValue, job: job, overwrite: t.overwrite))
            }
        }
        try grabber.frames(at: (0..<tiles).map { Double($0) * board.interval }) { (i: Int, frame: Frame) throws(SpoolError) in
            try publish(try renderer.push(frame))
            job.progress(step: "decode", fraction: Double(i + 1) / Double(tiles) * 0.9)
            try job.checkCancelled(step: "decode")
        }
        try publish(try renderer.finish())
        let perSheet = board.columns * board.rows
        guard names.count == (tiles + perSheet - 1) / perSheet, let made = renderer.frameSize else {
            throw SpoolError(.internal, "a storyboard of \(tiles) tiles made \(names.count) sheets; this is a bug", step: "encode")
        }
        let cues = vtt(tiles: tiles, interval: board.interval, duration: duration, columns: board.columns, rows: board.rows,
                       tileWidth: made.width, tileHeight: made.height, sheets: names)
        try vttTarget.write(Array(cues.utf8), manifestPath: board.vtt)
        outputs.append(OutputInspection.plainRecord(vttTarget, manifestPath: board.vtt, format: "vtt"))
        return JobOutcome(outputs: outputs, steps: [StepTiming(name: "decode+tile+encode", durationMs: Int(Date().timeIntervalSince(started) * 1000))])
    }

    /// A sheet's file name as a URL relative to the WebVTT file: everything
    /// but the unreserved characters escaped (a `:` would read as a scheme).
    static func urlName(_ name: String) -> String {
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return name.addingPercentEncoding(withAllowedCharacters: unreserved) ?? name
    }

    /// The WebVTT text: one cue per tile, from its time to the next tile's
    /// (the last one to the end), naming the sheet and the tile's rectangle.
    static func vtt(tiles: Int, interval: Double, duration: Double, columns: Int, rows: Int,
                    tileWidth: Int, tileHeight: Int, sheets: [String]) -> String {
        var text = "WEBVTT\n"
        let perSheet = columns * rows
        for k in 0..<tiles {
            let start = Double(k) * interval, end = min(Double(k + 1) * interval, duration)
            let sheet = sheets[k / perSheet], at = k % perSheet
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
