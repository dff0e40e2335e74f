import JobSchema
import Foundation
import MediaKit
import SpoolKit
import SystemPackage

/// `thumbnail`: still images at given times (or evenly spaced), as numbered
/// files or one contact sheet. Each time is reached by seeking to the
/// keyframe before it and decoding forward, never from the start.
public struct ThumbnailJob: JobRunner {
    public init() {}

    public func run(_ job: JobContext) throws(SpoolError) -> JobOutcome {
        guard case .thumbnail(let t) = job.manifest.job else { preconditionFailure("ThumbnailJob given a \(job.manifest.type) job") }
        let t0 = Date()
        job.progress(step: "check-paths", fraction: 0)
        let input = try job.policy.openInput(t.input)
        let grabber = try FrameGrabber(job: job, input: input, inputName: t.input, threads: job.threads)
        let duration = grabber.duration
        let times: [Double]
        switch t.times {
        case .at(let a): times = a
        case .count(let n): times = (0..<n).map { duration * (Double($0) + 0.5) / Double(n) }
        case .storyboard(let s): return try StoryboardMaker.run(job, t, s, grabber: grabber, started: t0)
        case .preview(let p): return try PreviewMaker.run(job, t, p, grabber: grabber, started: t0)
        }
        for time in times where duration > 0 && time > duration + 0.5 {
            throw SpoolError(.inputInvalid, "thumbnail at \(FilterText.num(time)) s is past the end of \(t.input) (\(FilterText.num((duration * 100).rounded() / 100)) s)", step: "seek")
        }
        // Decoded frames, scaled (and for a sheet, tiled), in output pixels.
        var images: [Frame] = []
        for (i, time) in times.enumerated() {
            try job.checkCancelled(step: "seek")
            images.append(try grabber.frame(at: time, keyframe: t.seek == .keyframe))
            job.progress(step: "decode", fraction: Double(i + 1) / Double(times.count) * 0.8)
        }
        let encoded = try grabber.render(images, width: t.width, height: t.height, format: t.format, sheetColumns: t.sheetColumns)
        var outputs: [OutputRecord] = []
        for (i, bytes) in encoded.enumerated() {
            let rel = encoded.count > 1 || Thumbnail.hasNumberPattern(t.output) ? String(format: t.output, i + 1) : t.output
            outputs.append(try Self.publish(bytes, to: rel, format: t.format.rawValue, job: job, overwrite: t.overwrite))
        }
        return JobOutcome(outputs: outputs, steps: [StepTiming(name: "seek+decode+encode", durationMs: Int(Date().timeIntervalSince(t0) * 1000))])
    }
}

extension ThumbnailJob {
    /// Writes one file the job made (an image, a WebVTT file) at `rel` and
    /// returns its record.
    static func publish(_ bytes: [UInt8], to rel: String, format: String, job: JobContext, overwrite: Bool) throws(SpoolError) -> OutputRecord {
        let target = try job.openOutput(rel, overwrite: overwrite)
        try target.write(bytes, manifestPath: rel)
        var rec = try OutputInspection.record(target, manifestPath: rel, container: .mp4)
        rec.format = format
        rec.durationSeconds = nil
        return rec
    }
}

/// Seeks and decodes single frames of the best video stream.
final class FrameGrabber {
    let job: JobContext
    let inputName: String
    private let fmt: InputFormat
    private let dec: Decoder
    private let stream: StreamRef
    /// Upright, deinterlaced, SDR: what every still is made from.
    let source: SourceVideo

    /// `threads` for the decoder (0: as many as cores). Frame threading only
    /// pays when a still is far from its keyframe and the cores are free.
    init(job: JobContext, input: InputFile, inputName: String, threads: Int) throws(SpoolError) {
        self.job = job
        self.inputName = inputName
        do throws(AVError) {
            // Stream info is read (it sets the start time every still's time
            // counts from: a fragmented MP4 with B-frames starts at 0.08 s,
            // and its stills came 2 frames early without it), but an H.264
            // MP4 is described from its SPS instead of decoding a frame.
            fmt = try InputFormat(url: input.openedPath, limits: OpenLimits(maxStreams: job.limits.maxStreams, quickStreamInfo: true, h264FromParameterSets: true), shouldAbort: { [job] in job.shouldAbort })
            guard let v = fmt.bestStream(.video) else { throw AVError.invalidData }
            stream = fmt.stream(v)
            if stream.width > job.limits.maxWidth || stream.height > job.limits.maxHeight {
                throw AVError.errno(E2BIG)
            }
            dec = try Decoder(stream, threads: threads)
            source = SourceVideo(stream: stream, decode: job.manifest.decode, still: true)
        } catch {
            if error == .invalidData { throw SpoolError(.inputInvalid, "input \(inputName) has no video stream to take stills from", step: "open-input", cause: error) }
            if error.posixErrno == E2BIG { throw SpoolError(.limitExceeded, "input \(inputName) is larger than the configured limits (limits.maxWidth/maxHeight/maxStreams)", step: "open-input") }
            throw SpoolError.media(error, "input \(inputName)", step: "open-input", job: job)
        }
        try MemoryBudget.check(job, width: stream.width, height: stream.height, frames: MemoryBudget.framesDecoding, what: "input \(inputName)")
    }

    var duration: Double { fmt.durationSeconds ?? stream.durationSeconds ?? 0 }

    /// The first frame at or after `time` (the last one if the stream ends
    /// first), as the ffmpeg command's accurate seek picks it: one pass of
    /// `frames(at:)`, seeking first. With `keyframe`, the keyframe at or
    /// before it instead: one frame decoded, for posters and `seek:
    /// "keyframe"`, where the exact time does not matter.
    func frame(at wanted: Double, keyframe: Bool = false) throws(SpoolError) -> Frame {
        if keyframe { return try self.keyframe(at: wanted) }
        var chosen: Frame?
        try frames(at: [wanted], seekingFirst: true) { _, f in chosen = f.referenced() }
        guard let chosen else { preconditionFailure("frames(at:) hands out a frame for every time or throws") }
        return chosen
    }

    /// The keyframe at or before `wanted` (the first one for a time before
    /// it), as the command's `-noaccurate_seek` takes it: the last keyframe
    /// packet at or before the time after the seek (a byte seek in MPEG-TS
    /// may land a keyframe early), decoded alone and drained, so no reordering
    /// (an open GOP's leading pictures) hands out another picture. A seek
    /// that lands past the time (MPEG-TS seeks by bytes) is made again further
    /// back, twice as far each time; one that lands on nothing (past the
    /// last keyframe, into the missing end of a file cut short) 2 s earlier
    /// each time, so the last keyframe there is is found; then from the start.
    private func keyframe(at wanted: Double) throws(SpoolError) -> Frame {
        let tb = stream.timeBase
        let time = wanted + fmt.startSeconds
        let pkt = Packet(), best = Packet()
        let decode = DecodeStage(decoder: dec)
        var backOff = 0.0, target = time, tries = 0
        do throws(AVError) {
            while true {
                tries += 1
                if tries > 500 { target = 0 }
                if job.shouldAbort { throw AVError.exit }
                if target > 0 { try fmt.seek(stream: stream.index, to: target) } else { try fmt.rewind() }
                decode.flush()
                var found = false
                while (try? fmt.read(into: pkt)) == true {
                    if pkt.streamIndex == stream.index && pkt.isKeyframe { found = true; break }
                }
                let landedPast = found && target > 0 && pkt.pts.map { Double($0) * tb.doubleValue > time + 0.001 } == true
                if found && !landedPast {
                    // Later keyframes at or before the time win: read on
                    // (packets only) until the decoding order passes it.
                    pkt.move(to: best)
                    while (try? fmt.read(into: pkt)) == true {
                        guard pkt.streamIndex == stream.index else { continue }
                        if let d = pkt.dts ?? pkt.pts, Double(d) * tb.doubleValue > time + 0.001 { break }
                        if pkt.isKeyframe, let p = pkt.pts, Double(p) * tb.doubleValue <= time + 0.001 { pkt.move(to: best) }
                    }
                    best.move(to: pkt)
                }
                if landedPast {
                    backOff = max(backOff * 2, 2)
                    target = max(0, time - backOff)
                    continue
                }
                if !found {
                    guard target > 0 else { throw AVError.invalidData }
                    target = max(0, target - 2)
                    continue
                }
                var chosen: Frame?
                do {
                    _ = try decode.decode(pkt) { f in chosen = f.moved(); return false }
                    if chosen == nil { _ = try decode.decode(nil) { f in chosen = f.moved(); return false } }
                } catch { throw error.error }
                decode.flush() // drained: ready for the next still
                guard let chosen else { throw AVError.invalidData }
                job.logger.debug("decoded 1 frames for the still at \(time) s (its keyframe)", metadata: ["STEP": "decode"])
                return chosen
            }
        } catch {
            if error == .invalidData {
                throw SpoolError(.inputInvalid, "input \(inputName): no keyframe could be decoded at or before \(FilterText.num(wanted)) s", step: "decode", cause: error)
            }
            throw SpoolError.media(error, "input \(inputName)", step: "decode", job: job)
        }
    }

    /// A gap to the next time longer than this (seconds) is crossed by a
    /// seek to the keyframe before that time, and so is one that reaches past
    /// the next keyframe (the longest keyframe interval seen so far after the
    /// last keyframe read): a seek then decodes less than decoding on would.
    static let seekGap = 10.0

    /// The frames at `times` (ascending), forward: for each time the first
    /// frame at or after it, as `frame(at:)` picks it (the last one for
    /// times past the end), handed to `each` with the time's index (the same
    /// frame for two times it both covers). Frames far from the next time
    /// are decoded only as references, as `frame(at:)` does after its seek;
    /// a gap over `seekGap` is crossed by a seek. For a storyboard, a tile
    /// every few seconds is cheaper to reach by decoding on than by a seek
    /// back to the keyframe for each; a preview's moments, far apart, by
    /// seeks. A seek that lands past its time (MPEG-TS seeks by bytes)
    /// makes the pass decode on from the start, without seeking again.
    /// `seekingFirst`: seek to the first time however near the start (a
    /// single still), rather than decode on from the start up to `seekGap`.
    func frames(at wanted: [Double], seekingFirst: Bool = false, each: (Int, Frame) throws(SpoolError) -> Void) throws(SpoolError) {
        guard !wanted.isEmpty else { return }
        let tb = stream.timeBase
        let times = wanted.map { $0 + fmt.startSeconds }
        let pkt = Packet()
        let decode = DecodeStage(decoder: dec)
        let margin = 2 / max(1, stream.fps ?? 25)
        var next = 0
        var last: Frame?
        var delivered: SpoolError?
        // Seeks: allowed until the pass falls back to the start; the time of
        // the one just made (its first keyframe packet is checked against
        // it: packets before that keyframe are dropped, as a byte seek in
        // MPEG-TS lands mid-GOP); how far before the time the next try goes
        // after landing past; one wanted.
        var seeking = true, seekedTo: Double?, wantSeek = false, backOff = 0.0
        // Keyframes read since the last seek (or the start), and frames
        // decoded: a seek never lands where the one before it did, and a
        // seek into missing data (a file cut short) is noticed.
        var keyframesSinceSeek = 0, framesSinceSeek = 0, seeks = 0
        // The time the last seek was for: one seek per time at most.
        var seekedFor = -1
        // Keyframe spacing seen so far: when a gap is worth a seek.
        var lastKeyframe: Double?, longestGOP = 0.0
        // A seek lands on the keyframe at or before the target: worth it when
        // that is past the keyframe after the last one read (decoding on
        // would decode a whole keyframe interval for nothing), or the gap is
        // long. Only once a keyframe after the one the last seek landed on
        // has been read, and only forward of it: so every seek lands later
        // than the one before, and the pass always ends.
        func worthASeek(_ target: Double, from ts: Double) -> Bool {
            guard seeking, next != seekedFor, keyframesSinceSeek >= 2, let k = lastKeyframe, target > k + 0.001 else { return false }
            if target - ts > Self.seekGap { return true }
            return longestGOP > 0 && target >= k + longestGOP - 0.001 && target - ts > 2 * margin
        }
        defer { dec.skip = .none }
        do throws(AVError) {
            // After every move of the read position: the decoder flushed,
            // and what was counted since the last move forgotten. `time`:
            // what a seek was for (its landing is checked), nil from the start.
            func moved(seekingFor time: Double?) {
                decode.flush()
                seekedTo = time
                lastKeyframe = nil
                keyframesSinceSeek = 0; framesSinceSeek = 0
            }
            func seek(to time: Double) throws(AVError) {
                try fmt.seek(stream: stream.index, to: max(0, time - backOff))
                moved(seekingFor: time)
                seeks += 1
                dec.skip = .nonReference
            }
            func fromTheStart() throws(AVError) {
                try fmt.rewind()
                moved(seekingFor: nil)
                dec.skip = times[next] > margin ? .nonReference : .none
            }
            // After a seek that landed past its time, or found nothing to
            // decode (past the last keyframe of an MPEG-TS, into the missing
            // end of a file cut short): again, further back each time
            // (twice as far), then from the start, seeking no more.
            func seekFurtherBack(_ time: Double, _ why: String) throws(AVError) {
                backOff = max(backOff * 2, max(2, longestGOP) + margin)
                if time - backOff > 0 {
                    try fmt.seek(stream: stream.index, to: time - backOff)
                    moved(seekingFor: time)
                } else {
                    seeking = false
                    job.logger.debug("\(why) \(FilterText.num(time)) s; decoding on from the start", metadata: ["STEP": "decode"])
                    try fromTheStart()
                }
            }
            if times[0] > (seekingFirst ? margin : Self.seekGap) { seekedFor = 0; try seek(to: times[0]) } else { try fromTheStart() }
            // Every frame decoded: hands it to the times it covers, keeps it
            // as the last one, and goes back to references only (or asks for
            // a seek) when the next time is far.
            func take(_ f: Frame) -> Bool {
                let ts = f.bestEffortTimestamp.map { Double($0) * tb.doubleValue } ?? times[min(next, times.count - 1)]
                framesSinceSeek += 1
                while next < times.count, ts + 0.001 >= times[next] {
                    do { try each(next, f) } catch { delivered = error; return false }
                    next += 1
                }
                last = f.moved()
                guard next < times.count else { return false }
                if worthASeek(times[next], from: ts) { wantSeek = true; return false }
                if times[next] - ts > 2 * margin { dec.skip = .nonReference }
                return true
            }
            func decodeFrames(_ p: Packet?) throws(AVError) -> CodecResult {
                do { return try decode.decode(p, each: take) } catch { throw error.error }
            }
            while next < times.count, delivered == nil {
                if wantSeek {
                    wantSeek = false
                    backOff = 0
                    seekedFor = next
                    try seek(to: times[next])
                    continue
                }
                // A file cut short (an upload that stopped) ends where its
                // data does: the times past it get the last frame.
                var more = false
                func endsEarly(_ error: AVError) throws(AVError) {
                    guard error == .invalidData, let last, let t = last.bestEffortTimestamp else { throw error }
                    job.logger.warning("input \(inputName) ends early (damaged) at \(String(format: "%.2f", Double(t) * tb.doubleValue - fmt.startSeconds)) s; later times get that frame", metadata: ["STEP": "decode"])
                }
                do { more = try fmt.read(into: pkt) } catch {
                    if seekedTo != nil || (seeks > 0 && framesSinceSeek == 0) { more = false } else { try endsEarly(error) }
                }
                // A seek into data that is not there (the index of a file cut
                // short lists keyframes past the cut): decode on from the
                // start instead, seeking no more.
                if !more, seeks > 0, framesSinceSeek == 0, seeking {
                    try seekFurtherBack(seekedTo ?? times[next], "nothing decodable after the seek to")
                    continue
                }
                if more {
                    guard pkt.streamIndex == stream.index else { continue }
                    if let time = seekedTo {
                        // Just after a seek: up to its first keyframe packet,
                        // nothing is decodable (a byte seek lands mid-GOP).
                        guard pkt.isKeyframe else { continue }
                        seekedTo = nil
                        if let p = pkt.pts, Double(p) * tb.doubleValue > time + 0.001 {
                            try seekFurtherBack(time, "a seek landed past")
                            continue
                        }
                    }
                    // A packet without a pts (AVI) cannot tell: decode it.
                    if dec.skip != .none, pkt.pts.map({ Double($0) * tb.doubleValue >= times[next] - margin }) ?? true { dec.skip = .none }
                    if pkt.isKeyframe, let p = pkt.pts {
                        let t = Double(p) * tb.doubleValue
                        if let k = lastKeyframe, t > k { longestGOP = max(longestGOP, t - k) }
                        lastKeyframe = t
                        keyframesSinceSeek += 1
                    }
                    _ = try decodeFrames(pkt)
                } else {
                    // The end of the input: drain the decoder (whose last,
                    // cut-off frames may fail).
                    do { _ = try decodeFrames(nil) } catch { try endsEarly(error) }
                    break
                }
                if job.shouldAbort { throw AVError.exit }
            }
            job.logger.debug("decoded \(decode.framesDecoded) frames for \(times.count == 1 ? "the still at \(times[0]) s" : "\(times.count) times")", metadata: ["STEP": "decode"])
        } catch {
            if error == .invalidData {
                throw SpoolError(.inputInvalid, "input \(inputName): no frame could be decoded near \(FilterText.num(wanted[min(next, wanted.count - 1)])) s", step: "decode", cause: error)
            }
            throw SpoolError.media(error, "input \(inputName)", step: "decode", job: job)
        }
        if let delivered { throw delivered }
        // Times past the last frame (the container's duration rounds up).
        guard next < times.count else { return }
        guard let last else {
            throw SpoolError(.inputInvalid, "input \(inputName): no frame could be decoded", step: "decode")
        }
        while next < times.count { try each(next, last); next += 1 }
    }

    /// Scales (and tiles, for a sheet) the frames and encodes each image.
    func render(_ frames: [Frame], width: Int?, height: Int?, format: ImageFormat, sheetColumns: Int?) throws(SpoolError) -> [[UInt8]] {
        let tile = sheetColumns.map { c in StillRenderer.Tile(columns: c, rows: (frames.count + c - 1) / c, gap: 4) }
        let renderer = StillRenderer(grabber: self, width: width, height: height, format: format, tile: tile)
        var out: [[UInt8]] = []
        for frame in frames { out += try renderer.push(frame) }
        return out + (try renderer.finish())
    }
}

/// Turns decoded frames into encoded images, one by one as they come: each
/// scaled (upright, SDR, square pixels) and, with a tile, laid out in
/// sheets of columns x rows. One thread for the graph and the image
/// encoder: small images, where starting threads costs more than they save.
final class StillRenderer {
    struct Tile { var columns: Int, rows: Int, gap: Int }
    private let grabber: FrameGrabber
    private let width: Int?, height: Int?
    private let format: ImageFormat
    private let tile: Tile?
    private var graph: FilterGraph?
    private var pushed = 0
    private let out = Frame()
    /// The size of one scaled frame (a tile), known after the first image.
    private(set) var frameSize: (width: Int, height: Int)?

    init(grabber: FrameGrabber, width: Int?, height: Int?, format: ImageFormat, tile: Tile?) {
        self.grabber = grabber; self.width = width; self.height = height; self.format = format; self.tile = tile
    }

    private var encoderName: String {
        switch format {
        case .jpg: "mjpeg"; case .png: "png"; case .webp: "libwebp"
        case .gif: preconditionFailure("a still is never a GIF (the manifest check refuses it)")
        }
    }

    /// The graph for frames like `first`: the source's fixes, the scale,
    /// and the image's pixel format and matrix.
    /// The filters from a decoded frame to an image's pixels, shared by
    /// stills, storyboards and previews: the source's fixes (upright,
    /// deinterlaced, SDR), the scale to square pixels, `tile` if any, and the
    /// image format's matrix, range and pixel format.
    static func pictureChain(source: SourceVideo, width: Int?, height: Int?, format: ImageFormat, tile: String? = nil) -> [String] {
        // Stills have square pixels: image viewers ignore a JPEG's or PNG's
        // pixel aspect, so an anamorphic frame is scaled to its display size.
        var chain = source.filters
        chain += FilterText.scale(width: width, height: height, squarePixels: true, source: source)
        chain.append("setsar=1")
        if let tile { chain.append(tile) }
        // JPEG (JFIF) and lossy WebP are BT.601, JPEG full range; RGB (PNG,
        // and GIF's palette) needs the source's matrix. swscale is told the
        // source's matrix (it takes BT.601 otherwise) and converts; the
        // JPEG's range is set here and tagged on the frame, instead of asking
        // for yuvj420p, the deprecated format swscale warns about on every image.
        let matrix = source.colour.isBT709Matrix ? "bt709" : source.colour.isBT2020Matrix ? "bt2020" : "bt601"
        switch format {
        case .jpg: chain += ["scale=in_color_matrix=\(matrix):out_color_matrix=bt601:out_range=full", "format=yuv420p"]
        case .webp: chain += ["scale=in_color_matrix=\(matrix):out_color_matrix=bt601", "format=yuv420p"]
        case .png, .gif: chain += ["scale=in_color_matrix=\(matrix)", "format=rgb24"]
        }
        return chain
    }

    /// The graph for frames like `first`.
    private func makeGraph(for first: Frame) throws(AVError) -> FilterGraph {
        let tileFilter = tile.map { t in
            t.gap > 0 ? "tile=\(t.columns)x\(t.rows):padding=\(t.gap):margin=\(t.gap)" : "tile=\(t.columns)x\(t.rows)"
        }
        let chain = Self.pictureChain(source: grabber.source, width: width, height: height, format: format, tile: tileFilter)
        return try FilterGraph(description: "[in0]\(chain.joined(separator: ","))[out0]",
                               sources: [.video(width: first.width, height: first.height,
                                                pixelFormat: first.pixelFormat,
                                                timeBase: Rational(num: 1, den: 1), sampleAspect: first.sampleAspect, frameRate: nil)],
                               sinks: [.video], threads: 1)
    }

    /// Adds a frame (the graph keeps its own reference: the same frame may
    /// be pushed again); returns the images it completed.
    func push(_ frame: Frame) throws(SpoolError) -> [[UInt8]] {
        try run { () throws(AVError) in
            if graph == nil { graph = try makeGraph(for: frame) }
            frame.pts = Int64(pushed)
            pushed += 1
            frame.clearPictureType()
            try graph!.push(frame)
        }
    }

    /// The end: the images still in the graph (a last, partly filled sheet).
    func finish() throws(SpoolError) -> [[UInt8]] {
        guard graph != nil else { return [] }
        return try run { () throws(AVError) in try graph!.push(nil) }
    }

    private func run(_ body: () throws(AVError) -> Void) throws(SpoolError) -> [[UInt8]] {
        do throws(AVError) {
            try body()
            var images: [[UInt8]] = []
            while try graph!.pull(into: out) == .frame {
                if frameSize == nil {
                    frameSize = tile.map { (out.width / $0.columns, out.height / $0.rows) } ?? (out.width, out.height)
                }
                images.append(try Encoder.encodeStill(out, encoder: encoderName, jpegQuality: format == .jpg ? 3 : nil))
                out.unref()
            }
            return images
        } catch {
            if error == .encoderNotFound { throw SpoolError(.unsupported, "this build has no \(encoderName) encoder for .\(format.rawValue)", step: "encode") }
            throw SpoolError.media(error, "input \(grabber.inputName)", step: "encode", job: grabber.job)
        }
    }
}
