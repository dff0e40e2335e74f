import JobSchema
import Foundation
import MediaKit
import SpoolKit
import SystemPackage

/// compose without re-encoding: when every clip is a video file with the
/// same codecs and parameters and nothing asks for a transition, a music
/// track, a cut or a change of size, rate or codec, the clips' packets are
/// written one after the other, timestamps shifted (a concat demuxer with
/// -c copy). No decoder is opened.
struct CopyJoiner {
    let job: JobContext
    let compose: Compose
    let clips: [ClipInput]
    let target: OutputTarget

    static func applies(_ c: Compose, clips: [ClipInput]) -> Bool {
        guard c.transition == .none, c.audio == nil, c.clips.allSatisfy({ $0.start == nil && $0.duration == nil && $0.motion == .none }),
              clips.allSatisfy({ !$0.isStill && $0.video != nil }) else { return false }
        let v = c.output.video, a = c.output.audio
        guard v.crf == nil, v.bitrateKbps == nil, v.preset == nil, v.pixelFormat == nil,
              a.bitrateKbps == nil, a.sampleRate == nil, a.channels == nil else { return false }
        let first = clips[0]
        let fv = first.fmt.stream(first.video!)
        func sameVideo(_ s: StreamRef) -> Bool {
            s.sameCoding(as: fv) && s.displayMatrix == fv.displayMatrix && s.fieldOrder == fv.fieldOrder && s.colour == fv.colour
        }
        guard clips.allSatisfy({ sameVideo($0.fmt.stream($0.video!)) }) else { return false }
        let wantW = c.width ?? v.width, wantH = c.height ?? v.height
        if let w = wantW, w != fv.width { return false }
        if let h = wantH, h != fv.height { return false }
        if let f = c.fps ?? v.fps, let have = fv.fps, abs(f - have) > 0.01 { return false }
        // The output codec must be what the clips have (or "copy").
        let codecName = fv.codecName
        guard v.codec == .copy || Encoding.videoEncoder(v.codec ?? .h264).map({ ffCodec($0) == codecName }) == true else { return false }
        guard c.output.container.allows(video: v.codec == .copy ? .h264 : (v.codec ?? .h264)) || v.codec == .copy else { return false }
        // Audio: all clips without, or all with the same parameters and a matching codec.
        let audios = clips.map { $0.audio.map { $0 } }
        if a.codec != AudioCodec.none && audios.contains(where: { $0 != nil }) {
            guard audios.allSatisfy({ $0 != nil }) else { return false }
            let fa = first.fmt.stream(first.audio!)
            for cl in clips {
                let s = cl.fmt.stream(cl.audio!)
                guard s.sameCodec(as: fa), s.sampleRate == fa.sampleRate, s.channels == fa.channels else { return false }
            }
            guard a.codec == .copy || Encoding.audioEncoder(a.codec ?? .aac, container: c.output.container).map({ ffCodec($0) == fa.codecName }) == true else { return false }
        }
        return true
    }

    /// FFmpeg codec name an encoder produces.
    static func ffCodec(_ encoder: String) -> String {
        switch encoder {
        case "libx264": "h264"; case "libx265": "hevc"; case "libvpx-vp9": "vp9"; case "libsvtav1": "av1"
        case "libopus": "opus"; case "libmp3lame": "mp3"; default: encoder
        }
    }

    func run() throws(SpoolError) -> OutputRecord {
        defer { target.discard() }
        let tempURL = try target.temporaryURL()
        do throws(AVError) {
            let out = try OutputFile(format: Encoding.muxer(compose.output.container), path: tempURL, shouldAbort: { [job] in job.shouldAbort })
            let first = clips[0]
            let withAudio = compose.output.audio.codec != AudioCodec.none && first.audio != nil
            let vo = try out.addStream(copying: first.fmt.stream(first.video!))
            let ao = withAudio ? try out.addStream(copying: first.fmt.stream(first.audio!)) : nil
            try out.writeHeader(fastStart: [.mp4, .m4v, .mov].contains(compose.output.container))
            let pkt = Packet()
            var offset = 0.0   // seconds where the current clip starts in the output
            let total = clips.map(\.duration).reduce(0, +)
            var lastDTS: [Int: Int64] = [:]   // per output stream, in its time base
            for (i, clip) in clips.enumerated() {
                // One shift for the whole clip (its container start), as
                // FFmpeg's concat demuxer does: shifting each stream by its own
                // first timestamp would move AAC's priming against the video.
                let start = clip.fmt.startSeconds
                let map: [Int: Int] = [clip.video!: vo].merging(withAudio ? [clip.audio!: ao!] : [:]) { a, _ in a }
                while try clip.fmt.read(into: pkt) {
                    if job.shouldAbort { throw AVError.exit }
                    guard let o = map[pkt.streamIndex] else { continue }
                    let tb = clip.fmt.stream(pkt.streamIndex).timeBase
                    let shift = Int64(((offset - start) / tb.doubleValue).rounded())
                    pkt.shiftTimestamps(by: -shift)
                    pkt.rescaleTimestamps(from: tb, to: out.timeBase(o))
                    // A tail of the previous clip (audio past its container
                    // end) may overlap: keep DTS increasing, as muxers require.
                    if let dts = pkt.keepDTS(after: lastDTS[o]) { lastDTS[o] = dts }
                    pkt.streamIndex = o
                    try out.write(pkt)
                }
                job.logger.debug("joined clip \(i) by stream copy at \(FilterText.num(offset)) s", metadata: ["STEP": "join"])
                offset += max(0.04, (clip.fmt.durationSeconds ?? clip.duration) - 0)
                job.progress(step: "join", fraction: min(1, offset / max(0.001, total)))
            }
            try out.finish()
        } catch {
            throw SpoolError.media(error, "compose", step: "join", job: job, writing: compose.output.path)
        }
        try target.publish(manifestPath: compose.output.path)
        return try OutputInspection.record(target, manifestPath: compose.output.path, container: compose.output.container)
    }
}
