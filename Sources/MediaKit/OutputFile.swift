import CFFmpeg
import Foundation

/// An output container being written (avformat_alloc_output_context2 +
/// avio_open), owned: closed and freed on deinit. Writes to the path given;
/// callers give a temporary name and rename it into place when `finish`
/// has succeeded.
public final class OutputFile {
    let ctx: UnsafeMutablePointer<AVFormatContext>
    private var opened = false
    private var headerWritten = false
    private let interrupt: InterruptHandler

    /// `format` is the muxer name mediaspool picked for the container
    /// (mp4, matroska, webm, …), `path` a plain file path.
    public init(format: String, path: String, shouldAbort: @escaping @Sendable () -> Bool) throws(AVError) {
        var c: UnsafeMutablePointer<AVFormatContext>?
        try check(avformat_alloc_output_context2(&c, nil, format, path))
        ctx = c!
        interrupt = InterruptHandler(shouldAbort)
        interrupt.install(on: ctx)
        // A muxer that opens its own files (dash, hls: segments, playlists)
        // opens them through the context, limited to plain files too.
        av_opt_set(ctx, "protocol_whitelist", "file", 0)
        if ctx.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 {
            var cb = ctx.pointee.interrupt_callback
            let opts = AVOptions([("protocol_whitelist", "file")])
            try check(avio_open2(&ctx.pointee.pb, path, AVIO_FLAG_WRITE, &cb, &opts.raw))
            opened = true
        }
    }

    deinit {
        if opened { avio_closep(&ctx.pointee.pb) }
        avformat_free_context(ctx)
    }

    /// Whether the muxer wants codec extradata out of band (set the
    /// encoder's global-header flag).
    public var needsGlobalHeader: Bool { ctx.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 }

    /// Adds a stream fed by `encoder`; returns its index.
    public func addStream(from encoder: Encoder) throws(AVError) -> Int {
        guard let s = avformat_new_stream(ctx, nil) else { throw .noMemory }
        try check(avcodec_parameters_from_context(s.pointee.codecpar, encoder.ctx))
        s.pointee.time_base = encoder.timeBase
        s.pointee.sample_aspect_ratio = encoder.ctx.pointee.sample_aspect_ratio
        return Int(s.pointee.index)
    }

    /// Adds a stream copied from an input stream (remux).
    public func addStream(copying input: StreamRef) throws(AVError) -> Int {
        guard let s = avformat_new_stream(ctx, nil) else { throw .noMemory }
        try check(avcodec_parameters_copy(s.pointee.codecpar, input.codecParameters))
        s.pointee.codecpar.pointee.codec_tag = 0
        s.pointee.time_base = input.timeBase
        s.pointee.sample_aspect_ratio = input.raw.pointee.sample_aspect_ratio
        // The display matrix, HDR metadata and such go along unchanged, as
        // the ffmpeg command's stream copy does.
        let index = Int(s.pointee.index)
        var all: [(AVPacketSideDataType, [UInt8])] = []
        for i in 0..<Int(input.raw.pointee.nb_side_data) {
            let sd = input.raw.pointee.side_data[i]
            all.append((sd.type, Array(UnsafeBufferPointer(start: sd.data, count: Int(sd.size)))))
        }
        try addSideData(all, stream: index)
        return index
    }

    /// Attaches stream side data (display matrix, mastering display, content
    /// light level) that the muxer writes into the container.
    public func addSideData(_ items: [(AVPacketSideDataType, [UInt8])], stream: Int) throws(AVError) {
        let s = ctx.pointee.streams[stream]!
        for (kind, bytes) in items where !bytes.isEmpty {
            guard let p = av_stream_new_side_data(s, kind, bytes.count) else { throw .noMemory }
            bytes.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: bytes.count) }
        }
    }

    /// The stream's time base: the muxer may change it in writeHeader.
    public func timeBase(_ stream: Int) -> AVRational { ctx.pointee.streams[stream]!.pointee.time_base }

    /// `options`: the muxer's own (an animation's `loop`), set by mediaspool.
    public func writeHeader(fastStart: Bool = false, options: [(String, String)] = []) throws(AVError) {
        let opts = AVOptions((fastStart ? [("movflags", "+faststart")] : []) + options)
        try check(avformat_write_header(ctx, &opts.raw))
        headerWritten = true
    }

    /// Writes a packet (its timestamps already in the stream's time base).
    public func write(_ p: Packet) throws(AVError) {
        try check(av_interleaved_write_frame(ctx, p.raw))
    }

    /// Writes every packet `encoder` has ready to stream `stream`. Video
    /// encoders leave packet durations at 0, and mp4 then cuts the last frame
    /// with its edit list: such packets get one frame's duration, as the
    /// ffmpeg command sets it.
    public func writePackets(from encoder: Encoder, stream: Int, using p: Packet, isVideo: Bool) throws(AVError) {
        while try encoder.receive(into: p) == .packet {
            let fr = encoder.ctx.pointee.framerate
            if isVideo && p.raw.pointee.duration == 0 && fr.num > 0 {
                p.raw.pointee.duration = av_rescale_q(1, av_inv_q(fr), encoder.timeBase)
            }
            p.rescaleTimestamps(from: encoder.timeBase, to: timeBase(stream))
            p.streamIndex = stream
            try write(p)
        }
    }

    public func finish() throws(AVError) {
        if headerWritten { try check(av_write_trailer(ctx)) }
        if opened { avio_closep(&ctx.pointee.pb); opened = false }
    }
}

/// SHA-256 of a file with libavutil's av_sha (no extra dependency).
public func sha256Hex(ofFile path: String) throws -> String {
    guard let sha = av_sha_alloc() else { throw AVError.noMemory }
    defer { av_free(UnsafeMutableRawPointer(sha)) }
    av_sha_init(sha, 256)
    guard let h = FileHandle(forReadingAtPath: path) else { throw AVError.errno(ENOENT) }
    defer { try? h.close() }
    while true {
        let d = h.readData(ofLength: 1 << 20)
        if d.isEmpty { break }
        d.withUnsafeBytes { av_sha_update(sha, $0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
    }
    var digest = [UInt8](repeating: 0, count: 32)
    av_sha_final(sha, &digest)
    return digest.map { String(format: "%02x", $0) }.joined()
}
