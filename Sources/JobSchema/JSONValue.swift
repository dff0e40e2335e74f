import Foundation

/// A parsed JSON document, kept generic so the validator can name the JSON
/// path of every error and refuse unknown fields (Codable does neither well).
public enum JSONValue: Sendable, Equatable {
    case null, bool(Bool), number(Double), string(String)
    case array([JSONValue]), object([String: JSONValue])

    /// Parses one JSON text (RFC 8259). The one parser of manifests and
    /// config, for scheduling and validation alike: a key given twice in an
    /// object is an error (two readers could otherwise take different
    /// values), as are nesting deeper than `maxDepth`, control characters or
    /// invalid UTF-8 in strings, and anything after the value.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { buf throws(JSONParseError) in
            var p = JSONParser(bytes: buf, maxDepth: maxDepth)
            let v = try p.value(depth: 0)
            p.skipSpace()
            guard p.at == buf.count else { throw p.error("unexpected text after the JSON value") }
            return v
        }
    }

    public var typeName: String {
        switch self {
        case .null: "null"; case .bool: "a boolean"; case .number: "a number"
        case .string: "a string"; case .array: "an array"; case .object: "an object"
        }
    }
}

/// Reads one JSON object field by field; `finish()` refuses the fields nobody
/// asked for, so a typo is an error instead of a silently ignored option.
public struct ObjectReader {
    public let path: String
    public let fields: [String: JSONValue]
    private var used: Set<String> = []

    public init(_ value: JSONValue, at path: String) throws(SchemaError) {
        guard case .object(let f) = value else { throw SchemaError.invalid(path, "must be an object, found \(value.typeName)") }
        self.path = path
        self.fields = f
    }

    public func sub(_ key: String) -> String { "\(path).\(key)" }
    public func has(_ key: String) -> Bool { fields[key] != nil && fields[key] != .null }

    public mutating func raw(_ key: String) -> JSONValue? {
        used.insert(key)
        guard let v = fields[key], v != .null else { return nil }
        return v
    }

    public mutating func string(_ key: String, maxLength: Int = 4096) throws(SchemaError) -> String? {
        guard let v = raw(key) else { return nil }
        guard case .string(let s) = v else { throw SchemaError.invalid(sub(key), "must be a string, found \(v.typeName)") }
        guard !s.isEmpty else { throw SchemaError.invalid(sub(key), "must not be empty") }
        guard s.utf8.count <= maxLength, !s.utf8.contains(0) else { throw SchemaError.invalid(sub(key), "must be at most \(maxLength) bytes without NUL") }
        return s
    }

    public mutating func requiredString(_ key: String) throws(SchemaError) -> String {
        guard let s = try string(key) else { throw SchemaError.invalid(sub(key), "is required") }
        return s
    }

    public mutating func number(_ key: String, _ range: ClosedRange<Double>) throws(SchemaError) -> Double? {
        guard let v = raw(key) else { return nil }
        guard case .number(let d) = v, d.isFinite else { throw SchemaError.invalid(sub(key), "must be a number, found \(v.typeName)") }
        guard range.contains(d) else { throw SchemaError.invalid(sub(key), "must be between \(fmt(range.lowerBound)) and \(fmt(range.upperBound)), found \(fmt(d))") }
        return d
    }

    public mutating func int(_ key: String, _ range: ClosedRange<Int>) throws(SchemaError) -> Int? {
        guard let v = raw(key) else { return nil }
        guard case .number(let d) = v, d.isFinite, d == d.rounded(), abs(d) < 1e15 else { throw SchemaError.invalid(sub(key), "must be an integer, found \(v.typeName == "a number" ? "a fraction" : v.typeName)") }
        let i = Int(d)
        guard range.contains(i) else { throw SchemaError.invalid(sub(key), "must be between \(range.lowerBound) and \(range.upperBound), found \(i)") }
        return i
    }

    public mutating func bool(_ key: String) throws(SchemaError) -> Bool? {
        guard let v = raw(key) else { return nil }
        guard case .bool(let b) = v else { throw SchemaError.invalid(sub(key), "must be true or false, found \(v.typeName)") }
        return b
    }

    public mutating func oneOf<E: RawRepresentable & CaseIterable>(_ key: String, _: E.Type) throws(SchemaError) -> E? where E.RawValue == String {
        guard let v = raw(key) else { return nil }
        guard case .string(let s) = v, let e = E(rawValue: s) else {
            throw SchemaError.invalid(sub(key), "must be one of \(E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        return e
    }

    public mutating func object(_ key: String) throws(SchemaError) -> ObjectReader? {
        guard let v = raw(key) else { return nil }
        return try ObjectReader(v, at: sub(key))
    }

    public mutating func array(_ key: String, count: ClosedRange<Int>) throws(SchemaError) -> [JSONValue]? {
        guard let v = raw(key) else { return nil }
        guard case .array(let a) = v else { throw SchemaError.invalid(sub(key), "must be an array, found \(v.typeName)") }
        guard count.contains(a.count) else { throw SchemaError.invalid(sub(key), "must have \(count.lowerBound) to \(count.upperBound) entries, found \(a.count)") }
        return a
    }

    public func finish() throws(SchemaError) {
        if let extra = fields.keys.filter({ !used.contains($0) }).sorted().first {
            let known = used.sorted().joined(separator: ", ")
            throw SchemaError.invalid(sub(extra), "unknown field; the fields allowed here are: \(known)")
        }
    }
}

private func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d) }


/// Why a JSON text was refused, and where (a byte offset).
public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var offset: Int
    public var description: String { "\(message) at byte \(offset)" }
}

/// Written by hand (no package parses JSON with duplicate keys refused and a
/// depth bound, and Foundation's decoders keep one of two duplicates
/// silently): a recursive descent over the bytes, bounded in depth.
struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var at = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) { self.bytes = bytes; self.maxDepth = maxDepth }

    func error(_ message: String) -> JSONParseError { JSONParseError(message: message, offset: at) }

    mutating func skipSpace() {
        while at < bytes.count, bytes[at] == 0x20 || bytes[at] == 0x0A || bytes[at] == 0x0D || bytes[at] == 0x09 { at += 1 }
    }

    mutating func literal(_ word: StaticString, _ v: JSONValue) throws(JSONParseError) -> JSONValue {
        let n = word.utf8CodeUnitCount
        guard at + n <= bytes.count else { throw error("unexpected end of input") }
        for i in 0..<n where bytes[at + i] != word.utf8Start[i] { throw error("invalid literal") }
        at += n
        return v
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        skipSpace()
        guard at < bytes.count else { throw error("unexpected end of input") }
        switch bytes[at] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error("unexpected character")
        }
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw error("nested deeper than \(maxDepth) levels") }
        at += 1
        var fields: [String: JSONValue] = [:]
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(fields) }
        while true {
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let keyAt = at
            let key = try string()
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw error("expected ':'") }
            at += 1
            let v = try value(depth: depth)
            guard fields.updateValue(v, forKey: key) == nil else {
                throw JSONParseError(message: "the key \"\(key)\" appears twice in one object", offset: keyAt)
            }
            skipSpace()
            guard at < bytes.count else { throw error("unexpected end of input") }
            if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
            if bytes[at] == UInt8(ascii: "}") { at += 1; return .object(fields) }
            throw error("expected ',' or '}'")
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw error("nested deeper than \(maxDepth) levels") }
        at += 1
        var items: [JSONValue] = []
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
        while true {
            items.append(try value(depth: depth))
            skipSpace()
            guard at < bytes.count else { throw error("unexpected end of input") }
            if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
            if bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
            throw error("expected ',' or ']'")
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard at + 4 <= bytes.count else { throw error("unexpected end of input in \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[at]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
            at += 1
        }
        return v
    }

    mutating func string() throws(JSONParseError) -> String {
        at += 1 // the opening quote
        let start = at
        // Fast path: no escapes.
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: "\"") {
                guard let s = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
                at += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("a control character in a string (escape it)") }
            at += 1
        }
        var out = Array(bytes[start..<at])
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: "\"") {
                at += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
                return s
            }
            if c < 0x20 { throw error("a control character in a string (escape it)") }
            if c != UInt8(ascii: "\\") { out.append(c); at += 1; continue }
            at += 1
            guard at < bytes.count else { break }
            let e = bytes[at]
            at += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard at + 2 <= bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else { throw error("a lone surrogate in a \\u escape") }
                    at += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("a lone surrogate in a \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw error("a lone surrogate in a \\u escape")
                }
                guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw error("invalid escape")
            }
        }
        throw error("unterminated string")
    }

    mutating func number() throws(JSONParseError) -> Double {
        let start = at
        func digits(_ p: inout JSONParser) -> Int {
            let s = p.at
            while p.at < p.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p.bytes[p.at]) { p.at += 1 }
            return p.at - s
        }
        if bytes[at] == UInt8(ascii: "-") { at += 1 }
        let intStart = at
        guard digits(&self) > 0 else { throw error("invalid number") }
        if bytes[intStart] == UInt8(ascii: "0"), at - intStart > 1 { throw error("a number with a leading zero") }
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
            at += 1
            guard digits(&self) > 0 else { throw error("invalid number") }
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
            at += 1
            if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard digits(&self) > 0 else { throw error("invalid number") }
        }
        guard let d = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)), d.isFinite else {
            throw JSONParseError(message: "a number out of range", offset: start)
        }
        return d
    }
}
