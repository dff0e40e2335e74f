/// Limits on untrusted media (LIMIT_EXCEEDED beyond them): the config file's
/// `limits` object (docs/configuration.md).
public struct MediaLimits: Sendable, Equatable {
    public var maxWidth = 8192
    public var maxHeight = 8192
    public var maxDurationSeconds: Double = 6 * 3600
    public var maxStreams = 64
    public var maxAllocBytes = 1 << 30
    /// The memory one job may plan to use; nil: the daemon's memory limit
    /// (its cgroup's memory.max, i.e. MemoryMax=, else the machine's RAM)
    /// shared by the workers.
    public var maxJobMemoryBytes: Int?
    public init() {}

    /// Reads the `limits` object of the config file over these values.
    public mutating func read(_ l: inout ObjectReader) throws(SchemaError) {
        if let v = try l.int("maxWidth", 16...65536) { maxWidth = v }
        if let v = try l.int("maxHeight", 16...65536) { maxHeight = v }
        if let v = try l.number("maxDurationSeconds", 1...864_000) { maxDurationSeconds = v }
        if let v = try l.int("maxStreams", 1...10_000) { maxStreams = v }
        if let v = try l.int("maxAllocBytes", 1 << 20...Int(Int32.max)) { maxAllocBytes = v }
        if let v = try l.int("maxJobMemoryBytes", 1 << 20...(1 << 50)) { maxJobMemoryBytes = v }
        try l.finish()
    }
}
