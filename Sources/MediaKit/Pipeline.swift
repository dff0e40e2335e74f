/// The one decode → filter → encode route every job type drives (the
/// transcode's lanes, the compose's clips and sinks, the loudness meter;
/// the stills' frame grabber decodes only),
/// in two stages, so damaged input, timestamps and errors are treated one
/// way everywhere. Owned by one job's thread, as the objects they drive.
///
///   packets ─▶ DecodeStage ─▶ FilterGraph source … sink ─▶ EncodeStage ─▶ OutputFile
///
/// A stage throws `MediaFailure`: the AVError and the step it came from
/// (decode, filter, encode, write-output), which the job turns into its
/// record's step and code.

/// Where in the route an error came from.
public enum MediaStep: String, Sendable { case decode, filter, encode, write = "write-output" }

public struct MediaFailure: Error, Sendable {
    public let step: MediaStep
    public let error: AVError
    public init(_ step: MediaStep, _ error: AVError) { self.step = step; self.error = error }

    /// Runs stage calls where only the AVError matters (a job that reports
    /// one step for its whole route).
    public static func unwrapping(_ body: () throws(MediaFailure) -> Void) throws(AVError) {
        do { try body() } catch { throw error.error }
    }
}

/// What damaged input gets, in one place: a packet or frame the demuxer or
/// the decoder calls invalid data is skipped (FFmpeg's command does the
/// same), up to `limit` of them for one counter (a decode stage's, a
/// transcode's demuxer's); past that the input is refused with that error.
public struct DamagePolicy: Sendable {
    public static let limit = 100
    /// Invalid-data errors skipped so far.
    private(set) var skipped = 0

    public init() {}

    /// Returns when `error` is invalid data within the limit (the caller
    /// skips what failed); throws `error` otherwise.
    public mutating func absorb(_ error: AVError) throws(AVError) {
        guard error == .invalidData else { throw error }
        skipped += 1
        if skipped > Self.limit { throw error }
    }
}

/// A decoder feeding one source of a filter graph (`feed`, `finish`), or,
/// made without a graph, handing its frames to the caller (`decode`: the
/// stills, which pick one frame and seek between them).
public final class DecodeStage {
    public let decoder: Decoder
    let graph: FilterGraph?
    let source: Int
    /// Subtracted from every frame's timestamp (the input's start, so
    /// outputs start at zero as the ffmpeg command's do).
    let origin: Int64
    private let frame = Frame()
    public private(set) var framesDecoded = 0
    private var damage = DamagePolicy()

    public init(decoder: Decoder, graph: FilterGraph, source: Int = 0, origin: Int64 = 0) {
        self.decoder = decoder; self.graph = graph; self.source = source; self.origin = origin
    }

    /// A stage without a graph: `decode(_:each:)` hands the frames to the caller.
    public init(decoder: Decoder, origin: Int64 = 0) {
        self.decoder = decoder; self.graph = nil; self.source = 0; self.origin = origin
    }

    private func absorb(_ error: AVError) throws(MediaFailure) {
        do { try damage.absorb(error) } catch { throw MediaFailure(.decode, error) }
    }

    /// Decodes one packet and pushes what it yields into the graph;
    /// `afterEach` runs after every frame pushed (to pull the sinks).
    public func feed(_ packet: Packet, afterEach: () throws(MediaFailure) -> Void = {}) throws(MediaFailure) {
        try decode(packet) { f throws(MediaFailure) in try push(f, then: afterEach); return true }
    }

    /// The end of the input: drains the decoder into the graph and closes
    /// the graph's source.
    public func finish(afterEach: () throws(MediaFailure) -> Void = {}) throws(MediaFailure) {
        try decode(nil) { f throws(MediaFailure) in try push(f, then: afterEach); return true }
        try push(nil, then: afterEach)
    }

    /// Decodes `packet`, or with nil drains the decoder, and hands each
    /// frame it yields to `body`: the stage's frame, its timestamp counted
    /// from `origin`, emptied when `body` returns (`Frame.moved()` keeps
    /// it). `body` returns false to take no more frames now; those left stay
    /// in the decoder for the next call (or a `flush`). Returns what
    /// stopped it: `.needsInput` (it wants the next packet), `.endOfStream`
    /// (drained to the end), `.frame` (`body` stopped at a frame).
    @discardableResult
    public func decode(_ packet: Packet?, each body: (Frame) throws(MediaFailure) -> Bool) throws(MediaFailure) -> CodecResult {
        if let packet {
            do { try decoder.send(packet) } catch { try absorb(error) }
        } else {
            do { try decoder.send(nil) } catch { throw MediaFailure(.decode, error) }
        }
        while true {
            let r: CodecResult
            do { r = try decoder.receive(into: frame) } catch { try absorb(error); continue }
            guard r == .frame else { return r }
            framesDecoded += 1
            frame.pts = frame.bestEffortTimestamp.map { $0 - origin }
            let more = try body(frame)
            frame.unref()
            if !more { return .frame }
        }
    }

    /// After a seek: forgets the frames and packets in the decoder and its
    /// end of stream (avcodec_flush_buffers), so decoding starts afresh
    /// from the next keyframe. What `DamagePolicy` counted stays counted.
    public func flush() { decoder.flush() }

    /// Pushes a decoded frame (then lets go of it), or nil for the end,
    /// into the graph, then runs `afterEach`.
    private func push(_ f: Frame?, then afterEach: () throws(MediaFailure) -> Void) throws(MediaFailure) {
        guard let graph else { preconditionFailure("DecodeStage.feed/finish on a stage without a graph") }
        do { try graph.push(f, source: source) } catch { throw MediaFailure(.filter, error) }
        f?.unref()
        try afterEach()
    }
}

/// A filter graph's sink feeding an encoder and one output stream.
public final class EncodeStage {
    let graph: FilterGraph
    let sink: Int
    public let encoder: Encoder
    let output: OutputFile
    let stream: Int
    let isVideo: Bool
    private let filtered = Frame(), packet = Packet()
    private var lastPTS: Int64?
    /// The sink has ended and the encoder is flushed.
    public private(set) var finished = false
    /// Seconds between forced keyframes (an adaptive-streaming ladder's
    /// segments): the first frame, then the first frame at least this long
    /// after the last forced one, is coded as a keyframe: the same frame in
    /// every rendition fed by one graph. Counted from the last keyframe, not
    /// on a grid of multiples, as the dash muxer cuts a segment at the first
    /// keyframe at least its length after the segment's start: on a grid, a
    /// 29.97 fps clip's boundary frames land 0-33 ms late by turns, a gap
    /// shorter than a segment is not cut, and segments of twice the length
    /// came out.
    public var keyframeEvery: Double?
    private var nextKeyframe = -Double.infinity

    public init(graph: FilterGraph, sink: Int = 0, encoder: Encoder, output: OutputFile, stream: Int, isVideo: Bool) {
        self.graph = graph; self.sink = sink; self.encoder = encoder; self.output = output; self.stream = stream; self.isVideo = isVideo
    }

    /// Encodes and writes every frame the sink has now. Frames go to the
    /// encoder's time base; a video frame that would share a tick with the
    /// one before is dropped (a variable-rate source at a coarser base);
    /// `onFrame` gets each frame's time in seconds. At the sink's end the
    /// encoder is flushed and `finished` set.
    public func drain(onFrame: (Double) -> Void = { _ in }) throws(MediaFailure) {
        while !finished {
            let r: CodecResult
            do { r = try graph.pull(into: filtered, sink: sink) } catch { throw MediaFailure(.filter, error) }
            if r == .endOfStream {
                finished = true
                do { try encoder.send(nil) } catch { throw MediaFailure(.encode, error) }
                try write()
                return
            }
            guard r == .frame else { return }
            let sinkBase = graph.timeBase(sink: sink)
            var seconds: Double?
            if let p = filtered.pts {
                seconds = Double(p) * sinkBase.doubleValue
                onFrame(seconds!)
                filtered.pts = rescale(p, from: sinkBase, to: encoder.timeBase)
            }
            if isVideo, let p = filtered.pts {
                if let last = lastPTS, p <= last { filtered.unref(); continue }
                lastPTS = p
            }
            if isVideo { filtered.clearPictureType() }
            if isVideo, let every = keyframeEvery, let t = seconds, t >= nextKeyframe - 1e-9 {
                filtered.forceKeyframe()
                nextKeyframe = t + every
            }
            do { try encoder.send(filtered) } catch { throw MediaFailure(.encode, error) }
            filtered.unref()
            try write()
        }
    }

    private func write() throws(MediaFailure) {
        do { try output.writePackets(from: encoder, stream: stream, using: packet, isVideo: isVideo) } catch {
            throw MediaFailure(error.posixErrno != nil ? .write : .encode, error)
        }
    }
}
