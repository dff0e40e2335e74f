import CFFmpeg

/// What an H.264 stream's sequence parameter set says about its pictures,
/// read from the `avcC` record an MP4 or Matroska header carries.
///
/// Why by hand: libavformat learns an H.264 stream's pixel format, colour
/// and sample aspect only by decoding its first picture (the SPS is parsed
/// inside libavcodec, and FFmpeg exports no SPS reader). For a probe, that
/// one decode of a 1080p keyframe is most of the work: ~7 ms of ~9 ms on a
/// phone clip. The SPS up to the colour description is a few dozen fields
/// of ITU-T H.264 7.3.2.1.1 and E.1.1; anything this reader does not know
/// (a malformed or truncated record, 4:0:0, interlaced coding, other bit
/// depths) makes it give up, and the caller falls back to decoding.
public struct H264SequenceHeader: Equatable, Sendable {
    public var chromaFormat: Int          // 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4
    public var bitDepth: Int              // luma = chroma: 8 or 10
    /// The picture size after the SPS's cropping (what the decoder outputs).
    public var width: Int, height: Int
    /// VUI aspect_ratio_info: nil when absent.
    public var sampleAspect: (num: Int32, den: Int32)?
    /// VUI video_signal_type: nil when absent.
    public var fullRange: Bool?
    /// VUI colour_description (ISO/IEC 23091-4 code points): nil when absent.
    public var colour: (primaries: Int, transfer: Int, matrix: Int)?
    /// VUI bitstream_restriction's max_num_reorder_frames: nil when absent
    /// (or when the VUI ends before it, as libavcodec reads it). It is the
    /// delay the decoder gives the stream (has_b_frames), from which
    /// libavformat dates a Matroska stream's first packets (InputFormat).
    public var reorderFrames: Int?

    public static func == (a: Self, b: Self) -> Bool {
        a.chromaFormat == b.chromaFormat && a.bitDepth == b.bitDepth && a.width == b.width && a.height == b.height && a.sampleAspect?.num == b.sampleAspect?.num
            && a.sampleAspect?.den == b.sampleAspect?.den && a.fullRange == b.fullRange
            && a.colour?.primaries == b.colour?.primaries && a.colour?.transfer == b.colour?.transfer && a.colour?.matrix == b.colour?.matrix
            && a.reorderFrames == b.reorderFrames
    }

    /// The first SPS of an `avcC` record (ISO/IEC 14496-15 5.3.3.1), or nil
    /// when the record or the SPS is not one this reader fully understands.
    public init?(avcC: [UInt8]) {
        // configurationVersion 1, profile, compatibility, level,
        // 6 bits reserved + lengthSizeMinusOne, 3 bits reserved + numOfSPS.
        guard avcC.count > 8, avcC[0] == 1, avcC[5] & 0x1f == 1 else { return nil }  // one SPS: which one a picture uses is the decoder's business
        let length = Int(avcC[6]) << 8 | Int(avcC[7])
        // Then numOfPPS: none, and nothing decodes (the decoder says so).
        guard length > 1, 8 + length < avcC.count, avcC[8 + length] > 0 else { return nil }
        self.init(nal: avcC[8..<(8 + length)])
    }

    /// One SPS NAL unit (with its one-byte header).
    init?(nal: ArraySlice<UInt8>) {
        guard let header = nal.first, header & 0x1f == 7 else { return nil }
        var r = BitReader(rbsp: nal.dropFirst())
        guard let parsed = try? Self.parse(&r) else { return nil }
        self = parsed
    }

    private init(chromaFormat: Int, bitDepth: Int, width: Int, height: Int) {
        self.chromaFormat = chromaFormat; self.bitDepth = bitDepth; self.width = width; self.height = height
    }

    private static let highProfiles: Set<UInt32> = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]

    /// 7.3.2.1.1 seq_parameter_set_data, then E.1.1 up to colour_description.
    private static func parse(_ r: inout BitReader) throws(BitReader.End) -> Self? {
        let profile = try r.bits(8)
        _ = try r.bits(16)                          // constraint flags, level_idc
        guard try r.ue() <= 31 else { return nil }  // seq_parameter_set_id
        var chroma = 1, depthLuma = 8, depthChroma = 8
        if highProfiles.contains(profile) {
            chroma = Int(try r.ue())
            guard (1...3).contains(chroma) else { return nil }   // 4:0:0: let the decoder say
            if chroma == 3, try r.bit() { return nil }            // separate_colour_plane_flag
            depthLuma = Int(try r.ue()) + 8
            depthChroma = Int(try r.ue()) + 8
            _ = try r.bit()                                       // qpprime_y_zero_transform_bypass_flag
            if try r.bit() {                                      // seq_scaling_matrix_present_flag
                for i in 0..<(chroma == 3 ? 12 : 8) where try r.bit() {
                    try r.skipScalingList(size: i < 6 ? 16 : 64)
                }
            }
        }
        guard depthLuma == depthChroma, depthLuma == 8 || depthLuma == 10 else { return nil }
        guard try r.ue() <= 12 else { return nil }  // log2_max_frame_num_minus4
        switch try r.ue() {                         // pic_order_cnt_type
        case 0: guard try r.ue() <= 12 else { return nil }
        case 1:
            _ = try r.bit(); _ = try r.se(); _ = try r.se()
            let cycle = try r.ue()
            guard cycle <= 255 else { return nil }
            for _ in 0..<cycle { _ = try r.se() }
        case 2: break
        default: return nil
        }
        _ = try r.ue(); _ = try r.bit()             // max_num_ref_frames, gaps_in_frame_num_value_allowed_flag
        let mbsWide = Int(try r.ue()) + 1, mbsHigh = Int(try r.ue()) + 1   // pic_width_in_mbs_minus1, pic_height_in_map_units_minus1
        guard mbsWide <= 1024, mbsHigh <= 1024 else { return nil }
        guard try r.bit() else { return nil }       // frame_mbs_only_flag: interlaced coding, let the decoder say
        _ = try r.bit()                             // direct_8x8_inference_flag
        // frame_cropping, in units of the chroma sampling (7.4.2.1.1).
        var crop = (left: 0, right: 0, top: 0, bottom: 0)
        if try r.bit() { crop = (Int(try r.ue()), Int(try r.ue()), Int(try r.ue()), Int(try r.ue())) }
        let unitX = chroma == 3 ? 1 : 2, unitY = chroma == 1 ? 2 : 1
        let width = mbsWide * 16 - unitX * (crop.left + crop.right), height = mbsHigh * 16 - unitY * (crop.top + crop.bottom)
        guard width > 0, height > 0 else { return nil }
        var sps = Self(chromaFormat: chroma, bitDepth: depthLuma, width: width, height: height)
        guard try r.bit() else { return sps }       // vui_parameters_present_flag
        if try r.bit() {                            // aspect_ratio_info_present_flag
            let idc = Int(try r.bits(8))
            if idc == 255 {
                // A zero denominator reads as 1, as libavcodec reads it.
                let n = Int32(try r.bits(16)), d = Int32(try r.bits(16))
                sps.sampleAspect = (n, d == 0 ? 1 : d)
            } else {
                guard idc < pixelAspect.count else { return nil }   // FFmpeg refuses the SPS
                sps.sampleAspect = pixelAspect[idc]
            }
        }
        if try r.bit() { _ = try r.bit() }          // overscan_info_present_flag, overscan_appropriate_flag
        if try r.bit() {                            // video_signal_type_present_flag
            _ = try r.bits(3)                       // video_format
            sps.fullRange = try r.bit()
            if try r.bit() {                        // colour_description_present_flag
                sps.colour = (Int(try r.bits(8)), Int(try r.bits(8)), Int(try r.bits(8)))
            }
        }
        // The rest of the VUI matters only for the reorder depth: a VUI
        // that ends early leaves it unknown (the fields above still stand,
        // as in libavcodec), one whose values libavcodec refuses refuses
        // the SPS (the decoder would not use it).
        var tail = r
        switch try? readReorderFrames(&tail) {
        case .refused?: return nil
        case .frames(let n)?: sps.reorderFrames = n
        case nil: break
        }
        return sps
    }

    private enum Reorder { case frames(Int), refused }

    /// E.1.1 from chroma_loc_info_present_flag to max_num_reorder_frames,
    /// with h264_ps.c decode_vui_parameters' reading of a short VUI: nil
    /// where it stops early or finds no bitstream_restriction.
    private static func readReorderFrames(_ r: inout BitReader) throws(BitReader.End) -> Reorder? {
        if try r.bit() { _ = try r.ue(); _ = try r.ue() }   // chroma_loc_info_present_flag, top and bottom field types
        if try r.peekBit(), r.bitsLeft < 10 { return nil }  // "Truncated VUI": libavcodec stops here
        if try r.bit() { _ = try r.bits(32); _ = try r.bits(32); _ = try r.bit() }   // timing_info_present_flag
        let nalHRD = try r.bit()
        if nalHRD, try !r.skipHRDParameters() { return .refused }
        let vclHRD = try r.bit()
        if vclHRD, try !r.skipHRDParameters() { return .refused }
        if nalHRD || vclHRD { _ = try r.bit() }             // low_delay_hrd_flag
        _ = try r.bit()                                     // pic_struct_present_flag
        guard r.bitsLeft > 0, try r.bit() else { return nil }   // bitstream_restriction_flag
        _ = try r.bit()                                     // motion_vectors_over_pic_boundaries_flag
        for _ in 0..<4 { _ = try r.ue() }                   // max_bytes_per_pic_denom … log2_max_mv_length_vertical
        let reorder = try r.ue()
        _ = try r.ue()                                      // max_dec_frame_buffering
        guard r.bitsLeft >= 0 else { return nil }           // overread: libavcodec drops the restriction
        return reorder > 16 ? .refused : .frames(Int(reorder))
    }

    /// Table E-1, as libavcodec's ff_h264_pixel_aspect.
    private static let pixelAspect: [(num: Int32, den: Int32)] = [
        (0, 1), (1, 1), (12, 11), (10, 11), (16, 11), (40, 33), (24, 11), (20, 11), (32, 11),
        (80, 33), (18, 11), (15, 11), (64, 33), (160, 99), (4, 3), (3, 2), (2, 1),
    ]
}

extension H264SequenceHeader {
    /// What libavcodec's H.264 decoder sets on its context from this SPS
    /// (h264_slice.c: init_dimensions, h264_init_ps, get_pixel_format), on
    /// top of what the container said: applied to the stream's parameters,
    /// they are what avformat_find_stream_info would have copied back after
    /// decoding the first picture.
    func apply(to par: UnsafeMutablePointer<AVCodecParameters>) {
        if let (n, d) = sampleAspect, n > 0, d > 0 {
            par.pointee.sample_aspect_ratio = AVRational(num: n, den: d)
        } else {
            par.pointee.sample_aspect_ratio = AVRational(num: 0, den: 1)
        }
        if let full = fullRange {
            par.pointee.color_range = full ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG
            if let c = colour {
                // Values FFmpeg has no name for become "unspecified", as in h264_ps.c.
                let p = AVColorPrimaries(rawValue: UInt32(c.primaries)), t = AVColorTransferCharacteristic(rawValue: UInt32(c.transfer))
                let m = AVColorSpace(rawValue: UInt32(c.matrix))
                par.pointee.color_primaries = av_color_primaries_name(p) != nil ? p : AVCOL_PRI_UNSPECIFIED
                par.pointee.color_trc = av_color_transfer_name(t) != nil ? t : AVCOL_TRC_UNSPECIFIED
                par.pointee.color_space = av_color_space_name(m) != nil ? m : AVCOL_SPC_UNSPECIFIED
            }
        }
        let jpeg = par.pointee.color_range == AVCOL_RANGE_JPEG, rgb = par.pointee.color_space == AVCOL_SPC_RGB
        let format: AVPixelFormat = switch (bitDepth, chromaFormat) {
        case (8, 3): rgb ? AV_PIX_FMT_GBRP : jpeg ? AV_PIX_FMT_YUVJ444P : AV_PIX_FMT_YUV444P
        case (8, 2): jpeg ? AV_PIX_FMT_YUVJ422P : AV_PIX_FMT_YUV422P
        case (8, _): jpeg ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV420P
        case (_, 3): rgb ? AV_PIX_FMT_GBRP10LE : AV_PIX_FMT_YUV444P10LE
        case (_, 2): AV_PIX_FMT_YUV422P10LE
        default: AV_PIX_FMT_YUV420P10LE
        }
        par.pointee.format = format.rawValue
    }
}

/// Reads an RBSP: bits most significant first, emulation prevention bytes
/// (00 00 03) dropped, exp-Golomb codes. Reading past the end throws.
struct BitReader {
    struct End: Error {}
    private var bytes: [UInt8] = []
    private var position = 0   // in bits
    /// The RBSP's length in bits without its trailing zero bytes and stop
    /// bit: libavcodec's get_bits_left counts from it (h2645_parse.c
    /// get_bit_length), and its VUI reading stops on it.
    private var length = 0

    init(rbsp nal: ArraySlice<UInt8>) {
        bytes.reserveCapacity(nal.count)
        var zeros = 0
        for b in nal {
            if zeros >= 2 && b == 3 { zeros = 0; continue }
            zeros = b == 0 ? zeros + 1 : 0
            bytes.append(b)
        }
        if let last = bytes.lastIndex(where: { $0 != 0 }) {
            length = 8 * (last + 1) - (bytes[last].trailingZeroBitCount + 1)
        }
    }

    /// Bits before the stop bit (negative once read past it).
    var bitsLeft: Int { length - position }

    func peekBit() throws(End) -> Bool {
        var copy = self
        return try copy.bit()
    }

    mutating func bit() throws(End) -> Bool {
        guard position < bytes.count * 8 else { throw End() }
        defer { position += 1 }
        return bytes[position >> 3] & (0x80 >> UInt8(position & 7)) != 0
    }

    mutating func bits(_ n: Int) throws(End) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<n { v = v << 1 | (try bit() ? 1 : 0) }
        return v
    }

    /// ue(v), at most 32 bits of value (longer codes are not H.264).
    mutating func ue() throws(End) -> UInt32 {
        var zeros = 0
        while try !bit() {
            zeros += 1
            guard zeros < 32 else { throw End() }
        }
        return (UInt32(1) << UInt32(zeros)) - 1 + (try bits(zeros))
    }

    mutating func se() throws(End) -> Int32 {
        let k = try ue()
        return k & 1 == 1 ? Int32(bitPattern: (k + 1) / 2) : -Int32(bitPattern: k / 2)
    }

    /// E.1.2 hrd_parameters, read and dropped: false for a cpb_cnt_minus1
    /// over 31, which libavcodec refuses.
    mutating func skipHRDParameters() throws(End) -> Bool {
        let count = try ue()
        guard count <= 31 else { return false }
        _ = try bits(8)                                 // bit_rate_scale, cpb_size_scale
        for _ in 0...count { _ = try ue(); _ = try ue(); _ = try bit() }
        _ = try bits(20)                                // four delay and offset lengths
        return true
    }

    /// 7.3.2.1.1.1 scaling_list, read and dropped.
    mutating func skipScalingList(size: Int) throws(End) {
        var last: Int32 = 8, next: Int32 = 8
        for _ in 0..<size where next != 0 {
            let delta = try se()
            guard (-128...127).contains(delta) else { throw End() }
            next = (last + delta + 256) % 256
            last = next == 0 ? last : next
        }
    }
}
