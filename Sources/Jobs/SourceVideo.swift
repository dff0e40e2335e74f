import JobSchema
import MediaKit
import SpoolKit

/// What every job does to a decoded video stream before its own filters,
/// the way a player shows it: upright (the display matrix), progressive
/// (deinterlaced), and SDR when the output is SDR (tone-mapped). Built once
/// per input stream from the stream's facts and the manifest's `decode`
/// options; the filters are text made only from constants and numbers.
struct SourceVideo {
    /// Filters that run first, in order: deinterlace, upright, tone map.
    var filters: [String] { deinterlace + upright + toneMap }
    /// The parts of `filters`. A transcode may run `upright` after its
    /// scale instead (`FilterText.videoChain`).
    let deinterlace: [String]
    let upright: [String]
    let toneMap: [String]
    /// Whether `upright` may run after a scale instead of before it: only
    /// transposes and flips (which turn a scaled picture exactly as they
    /// turn the full one), not the rotate filter (its output size and
    /// fill depend on its input's).
    let uprightCommutesWithScale: Bool
    /// Whether `upright` swaps width and height (a transpose).
    let uprightSwapsSides: Bool
    /// The colour of the frames after `filters`.
    let colour: ColourTags
    /// Width and height of the picture after `filters`, with its sample
    /// aspect ratio applied: what a viewer sees.
    let displayWidth: Int
    let displayHeight: Int
    /// Whether the picture's sample aspect ratio is not square.
    let anamorphic: Bool
    let rotation: Int
    let deinterlaced: Bool
    let toneMapped: Bool

    init(stream s: StreamRef, decode: DecodeOptions, hdr: HDRMode = .tonemap, still: Bool = false) {
        var f: [String] = []
        // Deinterlacing comes first: fields are rows of the stored picture.
        let order = s.fieldOrder
        // A stream that does not say (HEVC, VP9, AV1, images) is taken as progressive.
        switch (decode.deinterlace, order) {
        case (.off, _), (.auto, .progressive), (.auto, .unknown): deinterlaced = false
        case (.on, _), (.auto, .topFirst), (.auto, .bottomFirst):
            // Stills have no neighbouring frames for bwdif's temporal half: a
            // spatial deinterlacer for them.
            f.append(still ? "estdif=mode=frame:parity=auto:deint=all" : "bwdif=mode=send_frame:parity=auto:deint=all"); deinterlaced = true
        }
        deinterlace = f
        let matrix = decode.autorotate ? s.displayMatrix : nil
        let steps = matrix?.uprightSteps ?? []
        upright = steps.map(FilterText.orient)
        uprightCommutesWithScale = !steps.contains { if case .rotate = $0 { true } else { false } }
        uprightSwapsSides = steps.contains { if case .transpose = $0 { true } else { false } }
        rotation = matrix?.rotationDegrees ?? 0
        let input = s.colour
        if input.isHDR && hdr == .tonemap {
            toneMap = FilterText.toneMap(from: input)
            colour = .bt709
            toneMapped = true
        } else {
            toneMap = []
            colour = input
            toneMapped = false
        }
        let d = s.displaySize(applyingMatrix: decode.autorotate)
        displayWidth = d.width; displayHeight = d.height
        let sar = s.sampleAspect
        anamorphic = sar.num > 0 && sar.den > 0 && sar.num != sar.den
    }
}

extension SourceVideo {
    /// A source described by its numbers (golden tests of the chains).
    /// `filters` run before `upright`; `upright` are the steps that turn
    /// the stored picture (whose size is the display size, sides swapped
    /// when they transpose).
    init(displayWidth: Int, displayHeight: Int, anamorphic: Bool = false, filters: [String] = [], upright: [DisplayMatrix.Step] = [],
         colour: ColourTags = ColourTags()) {
        deinterlace = filters; self.upright = upright.map(FilterText.orient); toneMap = []
        uprightCommutesWithScale = !upright.contains { if case .rotate = $0 { true } else { false } }
        uprightSwapsSides = upright.contains { if case .transpose = $0 { true } else { false } }
        self.colour = colour; self.displayWidth = displayWidth; self.displayHeight = displayHeight
        self.anamorphic = anamorphic; rotation = 0; deinterlaced = false; toneMapped = false
    }

    /// The same source before `upright`: the stored picture's display size.
    var stored: SourceVideo {
        uprightSwapsSides ? SourceVideo(displayWidth: displayHeight, displayHeight: displayWidth, anamorphic: anamorphic) : self
    }

    /// One line for the debug log.
    var summary: String {
        "display \(displayWidth)x\(displayHeight), rotation \(rotation), deinterlaced \(deinterlaced), tone-mapped \(toneMapped), filters \(filters.joined(separator: ","))"
    }
}

extension FilterText {
    static func orient(_ step: DisplayMatrix.Step) -> String {
        switch step {
        case .transpose(let t): "transpose=dir=\(t.rawValue)"
        case .hflip: "hflip"
        case .vflip: "vflip"
        case .rotate(let degrees): "rotate=\(num(degrees))*PI/180"
        }
    }

    /// PQ or HLG to BT.709 SDR: linear light at 100 nits nominal peak, BT.709
    /// primaries in float RGB, Hable's curve without desaturation, back to
    /// BT.709 transfer and matrix, limited range. The input's code points
    /// (H.273 numbers) are given explicitly, so a frame without tags of its
    /// own is read as what its stream says.
    static func toneMap(from c: ColourTags) -> [String] {
        var input = "transferin=\(c.transferCode ?? 16)"
        if let p = c.primariesCode { input += ":primariesin=\(p)" }
        if let m = c.spaceCode { input += ":matrixin=\(m)" }
        input += ":rangein=\(c.isFullRange ? "full" : "limited")"
        // The last zscale must produce YUV itself: left to negotiate, the
        // link after it stays RGB and swscale would convert with BT.601.
        return ["zscale=transfer=linear:npl=100:\(input)", "format=gbrpf32le", "zscale=primaries=bt709",
                "tonemap=tonemap=hable:desat=0", "zscale=transfer=bt709:matrix=bt709:range=limited", "format=yuv420p10le"]
    }

    /// The size a picture is scaled to with square pixels: the requested
    /// one, one side with the display aspect (rounded to even), or the
    /// display size. A storyboard's tiles are laid out by it.
    static func squareSize(width: Int?, height: Int?, source: SourceVideo) -> (width: Int, height: Int) {
        let dw = Double(max(1, source.displayWidth)), dh = Double(max(1, source.displayHeight))
        func even(_ x: Double) -> Int { max(2, Int((x / 2).rounded()) * 2) }
        return switch (width, height) {
        case let (w?, h?): (w, h)
        case let (w?, nil): (w, even(Double(w) * dh / dw))
        case let (nil, h?): (even(Double(h) * dw / dh), h)
        case (nil, nil): (source.displayWidth, source.displayHeight)
        }
    }

    /// The scaling part of a video chain. Without `squarePixels`, like the
    /// ffmpeg command's `scale`: the sample aspect ratio is kept (one side
    /// alone keeps the display aspect). With it, the picture is scaled to
    /// its display size (or the requested one) with square pixels.
    static func scale(width: Int?, height: Int?, squarePixels: Bool, source: SourceVideo) -> [String] {
        if squarePixels {
            let (w, h) = squareSize(width: width, height: height, source: source)
            if width == nil && height == nil && !source.anamorphic { return [] }
            return ["scale=\(w):\(h)", "setsar=1"]
        }
        switch (width, height) {
        // Both sides: exactly that picture, square pixels (manifest v1's
        // meaning; the command would keep the display aspect in the SAR).
        case let (w?, h?): return ["scale=\(w):\(h)", "setsar=1"]
        case let (w?, nil): return ["scale=\(w):-2"]
        case let (nil, h?): return ["scale=-2:\(h)"]
        case (nil, nil): return []
        }
    }
}

/// Which audio stream of an input a job uses (`decode.audioTrack`).
enum SourceAudio {
    enum Choice { case stream(Int), noAudio, missing(SpoolError) }

    /// The named track, else the default one; a named track that does not
    /// exist is the manifest's mistake (INPUT_INVALID, with the count).
    static func choose(_ input: InputFormat, decode: DecodeOptions, inputName: String) -> Choice {
        let all = input.audioStreamIndices
        guard let track = decode.audioTrack else { return input.preferredAudioStream.map(Choice.stream) ?? .noAudio }
        guard track < all.count else {
            return .missing(SpoolError(.inputInvalid, "$.decode.audioTrack is \(track) but input \(inputName) has \(all.count) audio track\(all.count == 1 ? "" : "s") (counted from 0)", step: "open-input"))
        }
        return .stream(all[track])
    }

    /// nil when the input has no audio at all.
    static func stream(of input: InputFormat, decode: DecodeOptions, inputName: String) throws(SpoolError) -> Int? {
        switch choose(input, decode: decode, inputName: inputName) {
        case .stream(let i): return i
        case .noAudio: return nil
        case .missing(let error): throw error
        }
    }
}
