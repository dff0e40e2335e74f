import Foundation
import JobSchema
import MediaKit
import SpoolKit

/// A thumbnail job's `preview`: a short animation of the input (one
/// stretch, or `moments` evenly spaced ones) at `fps`, as an animated WebP
/// (libwebp_anim) or a GIF whose palette is made for the clip (palettegen,
/// then paletteuse). The frames are the ones a still at each tick would be
/// (`FrameGrabber.frames(at:each:)`: the first at or after each time),
/// scaled as stills are, encoded as they come.
enum PreviewMaker {
    static func run(_ job: JobContext, _ t: Thumbnail, _ preview: Preview, grabber: FrameGrabber, started: Date) throws(SpoolError) -> JobOutcome {
        let times = try ticks(preview, duration: grabber.duration, input: t.input)
        let width = t.width ?? (t.height == nil ? Preview.defaultWidth : nil)
        let target = try job.openOutput(t.output, overwrite: t.overwrite)
        defer { target.discard() } // no partial output under any name after a failure
        let url = try target.temporaryURL()
        // A failure of the animation's graph, encoder or muxer, in the job's terms.
        func failed(_ error: MediaFailure) -> SpoolError {
            if error.error == .encoderNotFound {
                return SpoolError(.unsupported, "this build has no encoder for animated .\(t.format.rawValue)", step: "encode")
            }
            return SpoolError.media(error.error, "output \(t.output)", step: error.step.rawValue, job: job)
        }
        var animation: Animation?
        try grabber.frames(at: times) { (i: Int, frame: Frame) throws(SpoolError) in
            do throws(MediaFailure) {
                if animation == nil {
                    animation = try Animation(first: frame, url: url, preview: preview, format: t.format, width: width, height: t.height, grabber: grabber)
                }
                try animation!.add(frame, index: i)
            } catch { throw failed(error) }
            job.progress(step: "encode", fraction: Double(i + 1) / Double(times.count) * 0.95)
            try job.checkCancelled(step: "encode")
        }
        guard let animation else { preconditionFailure("frames(at:) handed no frame for \(times.count) times") }
        do { try animation.finish() } catch { throw failed(error) }
        let size = animation.size
        try target.publish(manifestPath: t.output)
        var rec = OutputInspection.plainRecord(target, manifestPath: t.output, format: t.format.rawValue)
        rec.width = size.width; rec.height = size.height
        rec.videoCodec = t.format == .gif ? "gif" : "webp"
        rec.durationSeconds = Double(times.count) / Double(preview.fps)
        return JobOutcome(outputs: [rec], steps: [StepTiming(name: "decode+encode", durationMs: Int(Date().timeIntervalSince(started) * 1000))])
    }

    /// The input times of the frames: `fps` ticks over each stretch, clipped
    /// to the input; a stretch past the end is INPUT_INVALID.
    static func ticks(_ preview: Preview, duration: Double, input: String) throws(SpoolError) -> [Double] {
        let step = 1 / Double(preview.fps)
        var spans: [(Double, Double)] = []
        switch preview.span {
        case .range(let start, let length):
            if duration > 0 && start >= duration {
                throw SpoolError(.inputInvalid, "preview.start \(FilterText.num(start)) s is past the end of \(input) (\(FilterText.num((duration * 100).rounded() / 100)) s)", step: "seek")
            }
            spans = [(start, duration > 0 ? min(start + length, duration) : start + length)]
        case .moments(let count, let length):
            guard duration > 0 else {
                throw SpoolError(.inputInvalid, "input \(input) does not say how long it is; preview.moments needs its duration (give start and duration instead)", step: "open-input")
            }
            let each = min(length, duration / Double(count))
            spans = (0..<count).map { i in
                let start = max(0, min(duration - each, duration * (Double(i) + 0.5) / Double(count) - each / 2))
                return (start, start + each)
            }
        }
        var times: [Double] = []
        for (start, end) in spans {
            let n = max(1, Int(((end - start) / step).rounded()))
            times += (0..<n).map { start + Double($0) * step }
        }
        return times.sorted()
    }
}

/// One animated image being written: the graph from decoded frames to the
/// image's pixels (and GIF's palette), its encoder and the muxer.
private final class Animation {
    let graph: FilterGraph
    let encodeStage: EncodeStage
    let output: OutputFile
    private(set) var size: (width: Int, height: Int)

    init(first: Frame, url: String, preview: Preview, format: ImageFormat, width: Int?, height: Int?, grabber: FrameGrabber) throws(MediaFailure) {
        let fps = Rational(num: Int32(preview.fps), den: 1), tick = Rational(num: 1, den: Int32(preview.fps))
        let chain = StillRenderer.pictureChain(source: grabber.source, width: width, height: height, format: format).joined(separator: ",")
        // GIF: one palette for the whole clip, from every frame (palettegen
        // waits for the end), then each frame mapped to it.
        let description = format == .gif
            ? "[in0]\(chain),split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=bayer:bayer_scale=3[out0]"
            : "[in0]\(chain)[out0]"
        do throws(AVError) {
            graph = try FilterGraph(description: description,
                                    sources: [.video(width: first.width, height: first.height, pixelFormat: first.pixelFormat,
                                                     timeBase: tick, sampleAspect: first.sampleAspect, frameRate: fps)],
                                    sinks: [.video], threads: 1)
            let w = graph.width(sink: 0), h = graph.height(sink: 0)
            size = (w, h)
            let encoder = try Encoder(name: format == .gif ? "gif" : "libwebp_anim", threads: 1)
            encoder.setVideo(width: w, height: h, pixelFormat: graph.pixelFormat(sink: 0), sampleAspect: Rational(num: 1, den: 1),
                             timeBase: tick, frameRate: fps)
            output = try OutputFile(format: format == .gif ? "gif" : "webp", path: url, shouldAbort: { [job = grabber.job] in job.shouldAbort })
            try encoder.open(globalHeader: output.needsGlobalHeader)
            let stream = try output.addStream(from: encoder)
            // loop: 0 is forever for both muxers; once is -1 (GIF) or 1 (WebP).
            try output.writeHeader(options: [("loop", preview.loop ? "0" : format == .gif ? "-1" : "1")])
            encodeStage = EncodeStage(graph: graph, encoder: encoder, output: output, stream: stream, isVideo: true)
        } catch {
            throw MediaFailure(.encode, error)
        }
    }

    /// Adds the frame for tick `index` (the same frame may come twice).
    func add(_ frame: Frame, index: Int) throws(MediaFailure) {
        frame.pts = Int64(index)
        frame.clearPictureType()
        do { try graph.push(frame) } catch { throw MediaFailure(.filter, error) }
        try encodeStage.drain()
    }

    func finish() throws(MediaFailure) {
        do { try graph.push(nil) } catch { throw MediaFailure(.filter, error) }
        try encodeStage.drain()
        do { try output.finish() } catch { throw MediaFailure(.write, error) }
    }
}
