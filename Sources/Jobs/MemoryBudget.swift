import SpoolKit

/// The memory a job's frames will take, estimated from the picture size
/// before anything is decoded, against the job's share (JobContext.
/// memoryBudget). A picture within limits.maxWidth/maxHeight can still be
/// a decompression bomb for one worker's share: an 8192x8192 stream holds
/// ~128 MiB per frame, and a decoder, its filters and an encoder's
/// lookahead hold dozens.
enum MemoryBudget {
    /// Frames held at once: a decoder's references and frame threads, the
    /// filter queues, and for an encoder its lookahead and B-frames.
    static let framesDecoding = 16, framesTranscoding = 40

    /// Throws LIMIT_EXCEEDED when `frames` pictures of width x height (at up
    /// to 2 bytes a pixel: 10-bit 4:2:0) exceed the job's budget.
    static func check(_ job: JobContext, width: Int, height: Int, frames: Int, what: String) throws(SpoolError) {
        let bytes = width * height * 2 * frames
        guard bytes > job.memoryBudget else { return }
        throw SpoolError(.limitExceeded, "\(what) is \(width)x\(height): its frames take about \(bytes >> 20) MiB, more than this job's share of memory (\(job.memoryBudget >> 20) MiB: limits.maxJobMemoryBytes, else the daemon's memory limit shared by the workers); scale it down first, or lower the worker count or raise the limit", step: "open-input")
    }

    /// Throws LIMIT_EXCEEDED when pictures of these sizes, each held
    /// `frames` times (a ladder's input and its renditions), exceed the
    /// job's budget.
    static func check(_ job: JobContext, pictures: [(width: Int, height: Int, frames: Int)], what: String) throws(SpoolError) {
        let bytes = pictures.reduce(0) { $0 + $1.width * $1.height * 2 * $1.frames }
        guard bytes > job.memoryBudget else { return }
        let sizes = pictures.map { "\($0.width)x\($0.height)" }.joined(separator: ", ")
        throw SpoolError(.limitExceeded, "\(what) (\(sizes)): their frames take about \(bytes >> 20) MiB, more than this job's share of memory (\(job.memoryBudget >> 20) MiB: limits.maxJobMemoryBytes, else the daemon's memory limit shared by the workers); ask for fewer or smaller renditions, or lower the worker count or raise the limit", step: "open-input")
    }
}
