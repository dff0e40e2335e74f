import JobSchema

/// Job manifest v1 (../shared/spec/manifest-v1.md): the spool's envelope
/// (version, id, priority, tenant, labels, attempts, timeout), read here, and
/// the job's payload (`JobSpec`, with `decode`), whose fields and rules
/// JobSchema reads (JobSpec+Parsing.swift).
public struct Manifest: Sendable {
    public var type: JobType
    public var id: String?
    public var priority: Int
    public var tenant: String?
    public var labels: [String: String]
    public var maxAttempts: Int?
    public var timeoutSeconds: Double?
    public var job: JobSpec
    /// How inputs are read (extension of manifest v1, docs/manifest.md).
    public var decode = DecodeOptions()

    /// Every input path the job opens, in order, and every output path.
    public var inputPaths: [String] { job.inputPaths }
    public var outputPaths: [String] { job.outputPaths }
}

// MARK: - Parsing

extension Manifest {
    public static let maxBytes = 1 << 20
    static let priorityRange = -10...10
    static let tenantMaxBytes = 128

    /// What the scheduler orders by (Scanner.swift): priority, tenant and
    /// type, read by the same parser and field rules as `parse`, without
    /// validating the rest. A field that breaks its rule reads as 0, "" or ""
    /// (the claim then refuses the manifest with the reason).
    static func schedulingFields(_ bytes: [UInt8]) -> (priority: Int, tenant: String, type: String) {
        guard bytes.count <= maxBytes, let doc = try? JSONValue.parse(bytes), var r = try? ObjectReader(doc, at: "$") else { return (0, "", "") }
        let priority = (try? r.int("priority", priorityRange)).flatMap { $0 } ?? 0
        let tenant = (try? r.string("tenant", maxLength: tenantMaxBytes)).flatMap { $0 } ?? ""
        let type = (try? r.oneOf("type", JobType.self)).flatMap { $0 }?.rawValue ?? ""
        return (priority, tenant, type)
    }

    /// Parses and validates manifest bytes. `fileID` is the id taken from the
    /// file name, checked against an `id` field.
    public static func parse(_ bytes: [UInt8], fileID: String?) throws(SpoolError) -> Manifest {
        guard bytes.count <= maxBytes else {
            throw SpoolError(.manifestTooLarge, "manifest is \(bytes.count) bytes; the limit is 1 MiB (1048576 bytes)", step: "validate")
        }
        let doc: JSONValue
        do { doc = try JSONValue.parse(bytes) } catch {
            throw SpoolError(.manifestInvalid, "$ is not valid JSON (\(error)); write one UTF-8 JSON object", step: "validate")
        }
        var r = try validating { () throws(SchemaError) in try ObjectReader(doc, at: "$") }
        // In the order of the fields' checks: version, type, id, the rest.
        let (type, id) = try validating { () throws(SchemaError) in try readTypeAndID(&r) }
        if let id, !JobID.isValid(id) {
            throw SpoolError(.idInvalid, "$.id \"\(id)\" is not a valid job id: 1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit", step: "validate")
        }
        if let id, let fileID, id != fileID {
            throw SpoolError(.idMismatch, "$.id is \"\(id)\" but the file is named \(fileID).json; make them equal or drop the id field", step: "validate")
        }
        return try validating { () throws(SchemaError) in
            let envelope = try readEnvelope(&r, type: type, id: id)
            let decode = try DecodeOptions.parse(r.object("decode"))
            let job = try JobSpec.parse(envelope.type, &r)
            try r.finish()
            var m = envelope
            m.decode = decode
            m.job = job
            return m
        }
    }

    /// `version`, `type` and `id`, the fields checked first.
    private static func readTypeAndID(_ r: inout ObjectReader) throws(SchemaError) -> (JobType, String?) {
        guard try r.int("version", 1...1) != nil else { throw SchemaError.invalid("$.version", "is required and must be 1") }
        guard let type = try r.oneOf("type", JobType.self) else {
            if r.has("type") { throw SchemaError.invalid("$.type", "is unknown") }
            throw SchemaError.invalid("$.type", "is required: one of \"probe\", \"transcode\", \"thumbnail\", \"compose\", \"audio\"")
        }
        return (type, try r.string("id", maxLength: 128))
    }

    /// The rest of the envelope; `job` is a placeholder until the payload is read.
    private static func readEnvelope(_ r: inout ObjectReader, type: JobType, id: String?) throws(SchemaError) -> Manifest {
        let priority = try r.int("priority", priorityRange) ?? 0
        let tenant = try r.string("tenant", maxLength: tenantMaxBytes)
        var labels: [String: String] = [:]
        if let l = try r.object("labels") {
            guard l.fields.count <= 64 else { throw SchemaError.invalid("$.labels", "must have at most 64 entries") }
            var lr = l
            for k in l.fields.keys.sorted() {
                guard !k.isEmpty, k.utf8.count <= 128, !k.contains("=") else { throw SchemaError.invalid(l.sub(k), "label names must be 1-128 bytes without '='") }
                labels[k] = try lr.string(k, maxLength: 1024) ?? ""
            }
            try lr.finish()
        }
        let maxAttempts = try r.int("maxAttempts", 1...10)
        let timeout = try r.number("timeoutSeconds", 1...86400)
        return Manifest(type: type, id: id, priority: priority, tenant: tenant, labels: labels,
                        maxAttempts: maxAttempts, timeoutSeconds: timeout, job: .probe(input: ""))
    }
}

/// Runs a reader of JobSchema and gives its refusal the spool's stable code.
func validating<T>(_ body: () throws(SchemaError) -> T) throws(SpoolError) -> T {
    do { return try body() } catch { throw SpoolError(error) }
}

extension SpoolError {
    /// MANIFEST_INVALID or UNSUPPORTED, at the validate step.
    public init(_ error: SchemaError) {
        self.init(error.kind == .invalid ? .manifestInvalid : .unsupported, error.message, step: "validate")
    }
}
