/// One file a job wrote, as its result record lists it (manifest-v1.md
/// "outputs"): filled by the job side from the file it published.
public struct OutputRecord: Codable, Sendable, Equatable {
    public var path: String
    public var format: String
    public var sizeBytes: Int64
    public var durationSeconds: Double?
    public var width: Int?
    public var height: Int?
    public var videoCodec: String?
    public var audioCodec: String?
    public var sha256: String
    public init(path: String, format: String, sizeBytes: Int64, durationSeconds: Double? = nil, width: Int? = nil,
                height: Int? = nil, videoCodec: String? = nil, audioCodec: String? = nil, sha256: String) {
        self.path = path; self.format = format; self.sizeBytes = sizeBytes; self.durationSeconds = durationSeconds
        self.width = width; self.height = height; self.videoCodec = videoCodec; self.audioCodec = audioCodec; self.sha256 = sha256
    }
}
