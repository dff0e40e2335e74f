import CFFmpeg

/// H.264 in Matroska from its parameter sets (`OpenLimits.h264InMatroska`).
///
/// Why more than in MP4: Matroska gives video packets a pts and no dts, and
/// libavformat (5.1, demux.c) dates an H.264 stream only once it knows the
/// decoder's delay. Decoding the first picture sets that delay (has_b_frames)
/// to the SPS's max_num_reorder_frames; from then on compute_pkt_fields
/// derives a dts from the pts of the last delay + 1 packets, the first one at
/// packet delay + 2, and update_initial_timestamps makes the pts of the
/// stream's first packet its start time (with no reorder depth the delay
/// counts as guessed after 7 decoded pictures: at packet 8). Without the
/// decode, no dts comes, the stream gets no start time, and estimate_timings
/// fills in the container's start and duration (0 instead of 0.021 s for an
/// x264 stream muxed after its AAC priming, and a duration where ffprobe
/// says N/A). So the start time is read here from the stream's first packet,
/// and the duration left unknown, when the packets show that libavformat's
/// decoding pass would have come that far.
extension InputFormat {
    /// Reads stream information with the H.264 streams that have a reorder
    /// depth in their SPS described from it. True when done; false when the
    /// file is one whose decode this cannot stand in for (the caller opens
    /// it again and decodes), after having changed the context.
    func findMatroskaStreamInfoFromParameterSets() throws(AVError) -> Bool {
        let c = ctx
        var depth: [Int: Int] = [:]
        for s in streams where s.raw.pointee.avg_frame_rate.num > 0 {
            // The frame rate must be the header's (DefaultDuration): else
            // it is estimated from however many packets were read.
            if let sps = s.h264ParameterSets(fileSize: nil), let n = sps.reorderFrames { depth[s.index] = n }
        }
        // Left to libavformat: a header without a duration (estimate_timings
        // then derives one from the streams' start times), and any stream
        // but audio and described video (a subtitle stream's start time
        // depends on whether its first packet came within the packets the
        // decoding pass read, else it gets the container's; this one reads
        // fewer).
        guard !depth.isEmpty, c.pointee.duration != ms_nopts_value(),
              streams.allSatisfy({ $0.mediaType == AVMEDIA_TYPE_AUDIO || depth[$0.index] != nil }) else {
            try check(avformat_find_stream_info(c, nil))
            return true
        }
        for (i, _) in depth {
            let s = stream(i)
            s.h264ParameterSets(fileSize: nil)?.apply(to: s.par)
        }
        // The described streams will get no dts there: without this,
        // avformat_find_stream_info would wait for one through 50 packets
        // of each (max_ts_probe), about half the probe's time on a 1080p clip.
        // An audio stream has its dts from its first packet either way.
        let tsProbe = c.pointee.max_ts_probe
        c.pointee.max_ts_probe = 1
        try findStreamInfo(skippingPicturesOf: Set(depth.keys))
        c.pointee.max_ts_probe = tsProbe
        guard let first = firstPacketTimes(packetsNeeded: depth.mapValues { $0 > 0 ? $0 + 2 : 8 }) else { return false }

        // Every stream without a start time was given the container's; so
        // were the described ones. Decoding would have taken their first
        // pts into the container's start time (the earliest stream's)
        // before that: the same one only if none starts before it.
        let us = AVRational(num: 1, den: ms_time_base())
        let oldStart = c.pointee.start_time
        var start = Int64.max
        for (i, pts) in first {
            let s = stream(i).raw
            let t = av_rescale_q(pts, s.pointee.time_base, us)
            if depth.count < streamCount { guard oldStart != ms_nopts_value(), t >= oldStart else { return false } }
            start = min(start, t)
        }
        for (i, pts) in first {
            let s = stream(i).raw
            s.pointee.start_time = pts
            s.pointee.duration = ms_nopts_value()
        }
        if depth.count == streamCount { c.pointee.start_time = start }
        return true
    }

    /// The pts of the first packet of each stream in `packetsNeeded`, read
    /// from the packets avformat_find_stream_info buffered (and on): nil
    /// unless each stream's first packet is a keyframe with a pts and its
    /// decoding pass would have read as many packets of it as needed
    /// before the input ended or one of that pass's limits stopped it
    /// (probesize bytes, max_analyze_duration of any stream; kept well
    /// within).
    private func firstPacketTimes(packetsNeeded: [Int: Int]) -> [Int: Int64]? {
        let c = ctx
        let byteLimit = c.pointee.probesize / 2
        let analyzeLimit = 0.6 * (c.pointee.max_analyze_duration > 0 ? Double(c.pointee.max_analyze_duration) / Double(ms_time_base()) : 5)
        var seen: [Int: Int] = [:], first: [Int: Int64] = [:], streamStart: [Int: Double] = [:]
        var bytes: Int64 = 0
        let p = Packet()
        while packetsNeeded.contains(where: { seen[$0.key, default: 0] < $0.value }) {
            guard (try? read(into: p)) == true else { return nil }
            let pkt = p.raw.pointee, i = Int(pkt.stream_index)
            bytes += Int64(pkt.size)
            guard bytes < byteLimit else { return nil }
            if pkt.pts != ms_nopts_value() {
                let t = Double(pkt.pts) * av_q2d(stream(i).timeBase)
                if let t0 = streamStart[i] { guard t - t0 < analyzeLimit else { return nil } } else { streamStart[i] = t }
            }
            guard packetsNeeded[i] != nil else { continue }
            if first[i] == nil {
                guard pkt.pts != ms_nopts_value(), pkt.flags & AV_PKT_FLAG_KEY != 0 else { return nil }
                first[i] = pkt.pts
            }
            seen[i, default: 0] += 1
        }
        return first
    }
}
