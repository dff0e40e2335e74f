import Foundation

/// A parsed JSON document, kept generic so the validator can name the JSON
/// path of every error and refuse unknown fields (Codable does neither well).
public enum JSONValue: Sendable, Equatable, Decodable {
    case null, bool(Bool), number(Double), string(String)
    case array([JSONValue]), object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    var typeName: String {
        switch self {
        case .null: "null"; case .bool: "a boolean"; case .number: "a number"
        case .string: "a string"; case .array: "an array"; case .object: "an object"
        }
    }
}

/// Reads one JSON object field by field; `finish()` refuses the fields nobody
/// asked for, so a typo is an error instead of a silently ignored option.
struct ObjectReader {
    let path: String
    let fields: [String: JSONValue]
    private var used: Set<String> = []

    init(_ value: JSONValue, at path: String) throws(SpoolError) {
        guard case .object(let f) = value else { throw ManifestError.invalid(path, "must be an object, found \(value.typeName)") }
        self.path = path
        self.fields = f
    }

    func sub(_ key: String) -> String { "\(path).\(key)" }
    func has(_ key: String) -> Bool { fields[key] != nil && fields[key] != .null }

    mutating func raw(_ key: String) -> JSONValue? {
        used.insert(key)
        guard let v = fields[key], v != .null else { return nil }
        return v
    }

    mutating func string(_ key: String, maxLength: Int = 4096) throws(SpoolError) -> String? {
        guard let v = raw(key) else { return nil }
        guard case .string(let s) = v else { throw ManifestError.invalid(sub(key), "must be a string, found \(v.typeName)") }
        guard !s.isEmpty else { throw ManifestError.invalid(sub(key), "must not be empty") }
        guard s.utf8.count <= maxLength, !s.utf8.contains(0) else { throw ManifestError.invalid(sub(key), "must be at most \(maxLength) bytes without NUL") }
        return s
    }

    mutating func requiredString(_ key: String) throws(SpoolError) -> String {
        guard let s = try string(key) else { throw ManifestError.invalid(sub(key), "is required") }
        return s
    }

    mutating func number(_ key: String, _ range: ClosedRange<Double>) throws(SpoolError) -> Double? {
        guard let v = raw(key) else { return nil }
        guard case .number(let d) = v, d.isFinite else { throw ManifestError.invalid(sub(key), "must be a number, found \(v.typeName)") }
        guard range.contains(d) else { throw ManifestError.invalid(sub(key), "must be between \(fmt(range.lowerBound)) and \(fmt(range.upperBound)), found \(fmt(d))") }
        return d
    }

    mutating func int(_ key: String, _ range: ClosedRange<Int>) throws(SpoolError) -> Int? {
        guard let v = raw(key) else { return nil }
        guard case .number(let d) = v, d.isFinite, d == d.rounded(), abs(d) < 1e15 else { throw ManifestError.invalid(sub(key), "must be an integer, found \(v.typeName == "a number" ? "a fraction" : v.typeName)") }
        let i = Int(d)
        guard range.contains(i) else { throw ManifestError.invalid(sub(key), "must be between \(range.lowerBound) and \(range.upperBound), found \(i)") }
        return i
    }

    mutating func bool(_ key: String) throws(SpoolError) -> Bool? {
        guard let v = raw(key) else { return nil }
        guard case .bool(let b) = v else { throw ManifestError.invalid(sub(key), "must be true or false, found \(v.typeName)") }
        return b
    }

    mutating func oneOf<E: RawRepresentable & CaseIterable>(_ key: String, _: E.Type) throws(SpoolError) -> E? where E.RawValue == String {
        guard let v = raw(key) else { return nil }
        guard case .string(let s) = v, let e = E(rawValue: s) else {
            throw ManifestError.invalid(sub(key), "must be one of \(E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        return e
    }

    mutating func object(_ key: String) throws(SpoolError) -> ObjectReader? {
        guard let v = raw(key) else { return nil }
        return try ObjectReader(v, at: sub(key))
    }

    mutating func array(_ key: String, count: ClosedRange<Int>) throws(SpoolError) -> [JSONValue]? {
        guard let v = raw(key) else { return nil }
        guard case .array(let a) = v else { throw ManifestError.invalid(sub(key), "must be an array, found \(v.typeName)") }
        guard count.contains(a.count) else { throw ManifestError.invalid(sub(key), "must have \(count.lowerBound) to \(count.upperBound) entries, found \(a.count)") }
        return a
    }

    func finish() throws(SpoolError) {
        if let extra = fields.keys.filter({ !used.contains($0) }).sorted().first {
            let known = used.sorted().joined(separator: ", ")
            throw ManifestError.invalid(sub(extra), "unknown field; the fields allowed here are: \(known)")
        }
    }
}

private func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d) }

enum ManifestError {
    static func invalid(_ path: String, _ what: String) -> SpoolError {
        SpoolError(.manifestInvalid, "\(path) \(what)", step: "validate")
    }
}
