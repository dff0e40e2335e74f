/// The one decode → filter → encode route every job type drives (the
/// transcode's lanes, the compose's clips and sinks, the loudness meter),
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

/// A decoder feeding one source of a filter graph.
public final class DecodeStage {
    public let decoder: Decoder
    let graph: FilterGraph
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

    private func absorb(_ error: AVError) throws(MediaFailure) {
        do { try damage.absorb(error) } catch { throw MediaFailure(.decode, error) }
    }

    /// Decodes one packet and pushes what it yields into the graph;
    /// `afterEach` runs after every frame pushed (to pull the sinks).
    public func feed(_ packet: Packet, afterEach: () throws(MediaFailure) -> Void = {}) throws(MediaFailure) {
        do { try decoder.send(packet) } catch { try absorb(error) }
        try pushFrames(afterEach)
    }

    /// The end of the input: drains the decoder into the graph and closes
    /// the graph's source.
    public func finish(afterEach: () throws(MediaFailure) -> Void = {}) throws(MediaFailure) {
        do { try decoder.send(nil) } catch { throw MediaFailure(.decode, error) }
        try pushFrames(afterEach)
        do { try graph.push(nil, source: source) } catch { throw MediaFailure(.filter, error) }
        try afterEach()
    }

    private func pushFrames(_ afterEach: () throws(MediaFailure) -> Void) throws(MediaFailure) {
        while true {
            let r: CodecResult
            do { r = try decoder.receive(into: frame) } catch { try absorb(error); continue }
            guard r == .frame else { return }
            framesDecoded += 1
            frame.pts = frame.bestEffortTimestamp.map { $0 - origin }
            do { try graph.push(frame, source: source) } catch { throw MediaFailure(.filter, error) }
            frame.unref()
            try afterEach()
        }
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
            if let p = filtered.pts {
                onFrame(Double(p) * sinkBase.doubleValue)
                filtered.pts = rescale(p, from: sinkBase, to: encoder.timeBase)
            }
            if isVideo, let p = filtered.pts {
                if let last = lastPTS, p <= last { filtered.unref(); continue }
                lastPTS = p
            }
            if isVideo { filtered.clearPictureType() }
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
