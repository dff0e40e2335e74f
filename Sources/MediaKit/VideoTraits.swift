import CFFmpeg

/// The display transform a container stores beside a video track (MP4's
/// `tkhd` matrix, Matroska's projection): what phones write instead of
/// rotating the pixels. Nine 16.16/2.30 fixed-point values, row-major.
public struct DisplayMatrix: Sendable, Equatable {
    public let values: [Int32]

    public init?(_ values: [Int32]) {
        guard values.count == 9 else { return nil }
        self.values = values
    }

    /// Degrees the picture must turn clockwise to be upright, in 0..<360,
    /// as the ffmpeg command computes it (cmdutils' `get_rotation`).
    public var rotation: Double {
        var theta = -values.withUnsafeBufferPointer { av_display_rotation_get($0.baseAddress!) }.rounded()
        if theta.isNaN { return 0 }
        theta -= 360 * (theta / 360 + 0.9 / 360).rounded(.down)
        return theta
    }

    /// Whole degrees, for records (`probe`'s `rotation`).
    public var rotationDegrees: Int { Int(rotation.rounded()) % 360 }

    /// Whether the matrix mirrors the picture (a determinant below zero).
    public var isMirrored: Bool {
        Double(values[0]) * Double(values[4]) - Double(values[1]) * Double(values[3]) < 0
    }

    /// Whether applying it swaps width and height.
    public var swapsDimensions: Bool {
        let r = rotation
        return abs(r - 90) < 1 || abs(r - 270) < 1
    }

    public var isIdentity: Bool { abs(rotation) < 1 && !isMirrored }

    /// The steps that make the stored picture upright, exactly as the ffmpeg
    /// command's autorotate chooses them (fftools/ffmpeg_filter.c).
    public enum Step: Sendable, Equatable {
        case transpose(Transpose)
        case hflip, vflip
        /// Any other angle, clockwise degrees (the rotate filter).
        case rotate(Double)
    }
    public enum Transpose: String, Sendable { case clock, cclock, clockFlip = "clock_flip", cclockFlip = "cclock_flip" }

    public var uprightSteps: [Step] {
        let theta = rotation, m = values
        if abs(theta - 90) < 1 { return [.transpose(m[3] > 0 ? .cclockFlip : .clock)] }
        if abs(theta - 180) < 1 { return (m[0] < 0 ? [.hflip] : []) + (m[4] < 0 ? [.vflip] : []) }
        if abs(theta - 270) < 1 { return [.transpose(m[3] < 0 ? .clockFlip : .cclock)] }
        if abs(theta) > 1 { return [.rotate(theta)] }
        return m[4] < 0 ? [.vflip] : []
    }
}

/// The colour description of a video stream or frame (H.273 code points).
public struct ColourTags: Sendable, Equatable {
    public var primaries: AVColorPrimaries
    public var transfer: AVColorTransferCharacteristic
    public var space: AVColorSpace
    public var range: AVColorRange

    public init(primaries: AVColorPrimaries = AVCOL_PRI_UNSPECIFIED, transfer: AVColorTransferCharacteristic = AVCOL_TRC_UNSPECIFIED,
                space: AVColorSpace = AVCOL_SPC_UNSPECIFIED, range: AVColorRange = AVCOL_RANGE_UNSPECIFIED) {
        self.primaries = primaries; self.transfer = transfer; self.space = space; self.range = range
    }

    /// BT.709, limited range: what an SDR HD output is tagged with.
    public static let bt709 = ColourTags(primaries: AVCOL_PRI_BT709, transfer: AVCOL_TRC_BT709, space: AVCOL_SPC_BT709, range: AVCOL_RANGE_MPEG)

    /// PQ (HDR10, Dolby Vision's base) or HLG.
    public var isHDR: Bool { transfer == AVCOL_TRC_SMPTE2084 || transfer == AVCOL_TRC_ARIB_STD_B67 }
    public var isPQ: Bool { transfer == AVCOL_TRC_SMPTE2084 }

    /// The tags of frames that swscale converted between these pixel formats
    /// (names): a yuvj (full range) format to a plain one is squeezed to
    /// limited range and the other way round; RGB to YUV gets swscale's
    /// BT.601 matrix.
    public func converted(from: String, to: String) -> ColourTags {
        var c = self
        let fromJ = from.hasPrefix("yuvj"), toJ = to.hasPrefix("yuvj")
        if fromJ && !toJ { c.range = AVCOL_RANGE_MPEG }
        if toJ { c.range = AVCOL_RANGE_JPEG }
        func isRGB(_ f: String) -> Bool { f.hasPrefix("gbr") || f.hasPrefix("rgb") || f.hasPrefix("bgr") }
        if (isRGB(from) || space == AVCOL_SPC_RGB) && !isRGB(to) {
            c.space = AVCOL_SPC_SMPTE170M
            if !toJ { c.range = AVCOL_RANGE_MPEG }
        }
        return c
    }

    /// H.273 code points (what zscale's options take), nil when unspecified.
    /// (A value past what this FFmpeg knows, from a damaged or future file,
    /// counts as unspecified: zscale would refuse it.)
    public var primariesCode: Int? { primaries == AVCOL_PRI_UNSPECIFIED || primaries.rawValue >= AVCOL_PRI_NB.rawValue ? nil : Int(primaries.rawValue) }
    public var transferCode: Int? { transfer == AVCOL_TRC_UNSPECIFIED || transfer.rawValue >= AVCOL_TRC_NB.rawValue ? nil : Int(transfer.rawValue) }
    public var spaceCode: Int? { space == AVCOL_SPC_UNSPECIFIED || space.rawValue >= AVCOL_SPC_NB.rawValue ? nil : Int(space.rawValue) }
    public var isFullRange: Bool { range == AVCOL_RANGE_JPEG }
    /// BT.709 matrix (what swscale must be told; its default is BT.601).
    public var isBT709Matrix: Bool { space == AVCOL_SPC_BT709 }
    public var isBT2020Matrix: Bool { space == AVCOL_SPC_BT2020_NCL || space == AVCOL_SPC_BT2020_CL }

    public var primariesName: String? { primaries == AVCOL_PRI_UNSPECIFIED ? nil : av_color_primaries_name(primaries).map { String(cString: $0) } }
    public var transferName: String? { transfer == AVCOL_TRC_UNSPECIFIED ? nil : av_color_transfer_name(transfer).map { String(cString: $0) } }
    public var spaceName: String? { space == AVCOL_SPC_UNSPECIFIED ? nil : av_color_space_name(space).map { String(cString: $0) } }
    public var rangeName: String? { range == AVCOL_RANGE_UNSPECIFIED ? nil : av_color_range_name(range).map { String(cString: $0) } }
}

/// How a video stream's frames are coded in time.
public enum FieldOrder: String, Sendable {
    case progressive, topFirst = "tff", bottomFirst = "bff", unknown
}

extension StreamRef {
    /// The stream's display matrix, when the container has one.
    public var displayMatrix: DisplayMatrix? {
        var size: Int = 0
        guard let p = av_stream_get_side_data(raw, AV_PKT_DATA_DISPLAYMATRIX, &size), size >= 36 else { return nil }
        return p.withMemoryRebound(to: Int32.self, capacity: 9) { DisplayMatrix(Array(UnsafeBufferPointer(start: $0, count: 9))) }
    }

    public var colour: ColourTags {
        ColourTags(primaries: par.pointee.color_primaries, transfer: par.pointee.color_trc, space: par.pointee.color_space, range: par.pointee.color_range)
    }

    public var fieldOrder: FieldOrder {
        switch par.pointee.field_order {
        case AV_FIELD_PROGRESSIVE: .progressive
        case AV_FIELD_TT, AV_FIELD_TB: .topFirst
        case AV_FIELD_BB, AV_FIELD_BT: .bottomFirst
        default: .unknown
        }
    }

    /// Frames at irregular intervals (phones): the average rate differs
    /// from the base rate by more than 1%.
    public var isVariableFrameRate: Bool {
        let avg = raw.pointee.avg_frame_rate, base = raw.pointee.r_frame_rate
        guard avg.num > 0, avg.den > 0, base.num > 0, base.den > 0 else { return false }
        return abs(av_q2d(avg) / av_q2d(base) - 1) > 0.01
    }

    /// Marked as the track to play by default (MP4/MKV `default` flag).
    public var isDefault: Bool { raw.pointee.disposition & AV_DISPOSITION_DEFAULT != 0 }

    /// The size the picture is shown at: sample aspect applied (widening or
    /// heightening, never shrinking below the stored size), then the display
    /// matrix (90 and 270 degrees swap the sides). Even numbers.
    public func displaySize(applyingMatrix: Bool = true) -> (width: Int, height: Int) {
        var w = width, h = height
        let sar = sampleAspect
        if sar.num > 0, sar.den > 0, sar.num != sar.den {
            if sar.num > sar.den { w = Int((Double(w) * Double(sar.num) / Double(sar.den)).rounded()) }
            else { h = Int((Double(h) * Double(sar.den) / Double(sar.num)).rounded()) }
        }
        w += w & 1; h += h & 1
        if applyingMatrix, displayMatrix?.swapsDimensions == true { swap(&w, &h) }
        return (w, h)
    }

    /// The display matrix as side data, to carry it to an output unchanged.
    public var displayMatrixSideData: [(AVPacketSideDataType, [UInt8])] { sideData([AV_PKT_DATA_DISPLAYMATRIX]) }
    /// The HDR10 side data (mastering display, content light level), to
    /// carry to an output that keeps HDR.
    public var hdrSideData: [(AVPacketSideDataType, [UInt8])] {
        sideData([AV_PKT_DATA_MASTERING_DISPLAY_METADATA, AV_PKT_DATA_CONTENT_LIGHT_LEVEL])
    }

    /// The stream side data of the given kinds (HDR mastering metadata,
    /// content light level), to copy onto an output stream.
    public func sideData(_ kinds: [AVPacketSideDataType]) -> [(AVPacketSideDataType, [UInt8])] {
        kinds.compactMap { kind in
            var size: Int = 0
            guard let p = av_stream_get_side_data(raw, kind, &size), size > 0 else { return nil }
            return (kind, Array(UnsafeBufferPointer(start: p, count: size)))
        }
    }

    /// HDR10 mastering display metadata, as x265's `master-display` text
    /// (chromaticities in 0.00002 units, luminance in 0.0001 cd/m²).
    public var masteringDisplayX265: String? {
        var size: Int = 0
        guard let p = av_stream_get_side_data(raw, AV_PKT_DATA_MASTERING_DISPLAY_METADATA, &size),
              size >= MemoryLayout<AVMasteringDisplayMetadata>.size else { return nil }
        let m = UnsafeRawPointer(p).loadUnaligned(as: AVMasteringDisplayMetadata.self)
        guard m.has_primaries != 0, m.has_luminance != 0 else { return nil }
        func q(_ r: AVRational, _ scale: Double) -> Int { r.den == 0 ? 0 : Int((av_q2d(r) * scale).rounded()) }
        let p3 = m.display_primaries
        // x265 orders G, B, R; FFmpeg stores R, G, B.
        return "G(\(q(p3.1.0, 50000)),\(q(p3.1.1, 50000)))B(\(q(p3.2.0, 50000)),\(q(p3.2.1, 50000)))R(\(q(p3.0.0, 50000)),\(q(p3.0.1, 50000)))"
            + "WP(\(q(m.white_point.0, 50000)),\(q(m.white_point.1, 50000)))L(\(q(m.max_luminance, 10000)),\(q(m.min_luminance, 10000)))"
    }

    /// HDR10 content light level as x265's `max-cll` text ("MaxCLL,MaxFALL").
    public var contentLightX265: String? {
        var size: Int = 0
        guard let p = av_stream_get_side_data(raw, AV_PKT_DATA_CONTENT_LIGHT_LEVEL, &size),
              size >= MemoryLayout<AVContentLightMetadata>.size else { return nil }
        let c = UnsafeRawPointer(p).loadUnaligned(as: AVContentLightMetadata.self)
        return "\(c.MaxCLL),\(c.MaxFALL)"
    }
}

extension Decoder {
    /// The pixel format the decoder produces ("yuvj420p", "yuv420p10le", …).
    public var pixelFormatName: String { av_get_pix_fmt_name(ctx.pointee.pix_fmt).map { String(cString: $0) } ?? "none" }
}

extension Encoder {
    /// Tags the encoded stream's colour (written to the bitstream's VUI and
    /// the container's `colr` box / Colour element).
    public func setColour(_ c: ColourTags) {
        ctx.pointee.color_primaries = c.primaries
        ctx.pointee.color_trc = c.transfer
        ctx.pointee.colorspace = c.space
        ctx.pointee.color_range = c.range
    }
}

extension InputFormat {
    /// The input's audio streams, in file order.
    public var audioStreamIndices: [Int] {
        streams.filter { $0.mediaType == AVMEDIA_TYPE_AUDIO }.map(\.index)
    }

    /// The audio stream to use when the manifest names none: the first one
    /// flagged default when some are and some are not (a player's choice),
    /// else FFmpeg's best (av_find_best_stream: most channels, then bit rate).
    public var preferredAudioStream: Int? {
        let audio = streams.filter { $0.mediaType == AVMEDIA_TYPE_AUDIO }
        let defaults = audio.filter(\.isDefault)
        if !defaults.isEmpty && defaults.count < audio.count { return defaults[0].index }
        return bestStream(AVMEDIA_TYPE_AUDIO)
    }

    /// The best video stream (no cover art), or nil.
    public var videoStream: Int? { bestStream(AVMEDIA_TYPE_VIDEO) }
}
