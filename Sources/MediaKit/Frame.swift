import CFFmpeg

/// An owned AVFrame (av_frame_alloc / av_frame_free).
public final class Frame {
    let raw: UnsafeMutablePointer<AVFrame>

    public init() {
        guard let f = av_frame_alloc() else { fatalError("av_frame_alloc: out of memory") }
        raw = f
    }

    deinit {
        var p: UnsafeMutablePointer<AVFrame>? = raw
        av_frame_free(&p)
    }

    public func unref() { av_frame_unref(raw) }
    /// A new Frame holding this one's picture or samples (av_frame_move_ref);
    /// this one is left empty, to be filled again.
    public func moved() -> Frame {
        let f = Frame()
        av_frame_move_ref(f.raw, raw)
        return f
    }

    /// A new Frame referencing the same picture or samples (av_frame_ref);
    /// this one keeps them.
    public func referenced() -> Frame {
        let f = Frame()
        guard av_frame_ref(f.raw, raw) >= 0 else { fatalError("av_frame_ref: out of memory") }
        return f
    }

    public var pts: Int64? {
        get { raw.pointee.pts == ms_nopts_value() ? nil : raw.pointee.pts }
        set { raw.pointee.pts = newValue ?? ms_nopts_value() }
    }
    /// The best guess of the timestamp (pts, else the decoder's estimate).
    public var bestEffortTimestamp: Int64? {
        let t = raw.pointee.best_effort_timestamp
        return t == ms_nopts_value() ? pts : t
    }
    public var width: Int { Int(raw.pointee.width) }
    public var height: Int { Int(raw.pointee.height) }
    public var sampleCount: Int { Int(raw.pointee.nb_samples) }
    public var pixelFormat: AVPixelFormat { AVPixelFormat(rawValue: raw.pointee.format) }
    public var sampleAspect: Rational { raw.pointee.sample_aspect_ratio }

    /// A value of metadata attached by a filter (ebur128's lavfi.r128.I, …).
    public func metadata(_ key: String) -> String? {
        guard let e = av_dict_get(raw.pointee.metadata, key, nil, 0), let v = e.pointee.value else { return nil }
        return String(cString: v)
    }
}

extension Frame {
    /// Lets the encoder choose the picture type (a decoded frame carries
    /// its source's I/P/B, which an encoder would otherwise follow).
    public func clearPictureType() { raw.pointee.pict_type = AV_PICTURE_TYPE_NONE }
    /// Asks the encoder to code this frame as a keyframe (an IDR with
    /// libx264's `forced-idr`, x265's default).
    public func forceKeyframe() { raw.pointee.pict_type = AV_PICTURE_TYPE_I }
}
