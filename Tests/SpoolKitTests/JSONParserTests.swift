import JobSchema
import SpoolKit
import XCTest

/// The one JSON parser (JSONValue.parse), against RFC 8259 and against what
/// a hostile manifest tries (issue 13: duplicate keys, nesting bombs).
final class JSONParserTests: XCTestCase {
    func parseJSON(_ s: String) throws -> JSONValue { try JSONValue.parse(Array(s.utf8)) }

    func testValues() throws {
        XCTAssertEqual(try parseJSON(#" {"a": [1, -2.5e3, true, false, null, "x"], "b": {}} "#),
                       .object(["a": .array([.number(1), .number(-2500), .bool(true), .bool(false), .null, .string("x")]), "b": .object([:])]))
        XCTAssertEqual(try parseJSON(#""\u00e9\ud83d\ude00\n\t\"\\\/""#), .string("é😀\n\t\"\\/"))
        XCTAssertEqual(try parseJSON("0"), .number(0))
        XCTAssertEqual(try parseJSON(#""é""#), .string("é"))
    }

    func testRefusals() {
        for bad in ["", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "+1", "1e", "tru", "nul", "\"a", "{\"a\" 1}", "[1 2]",
                    "{} x", "\"\u{01}\"", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "1e999", "{1:2}", "'a'"] {
            XCTAssertThrowsError(try parseJSON(bad), "\(bad) accepted")
        }
        XCTAssertThrowsError(try JSONValue.parse([0x22, 0xFF, 0x22]), "invalid UTF-8 accepted")
    }

    func testDuplicateKeysAreRefusedAtEveryDepth() {
        XCTAssertThrowsError(try parseJSON(#"{"a":1,"a":2}"#)) { XCTAssertTrue("\($0)".contains("\"a\" appears twice"), "\($0)") }
        XCTAssertThrowsError(try parseJSON(#"{"x":{"a":1,"\u0061":2}}"#), "escaped duplicates are duplicates")
        XCTAssertNoThrow(try parseJSON(#"[{"a":1},{"a":2}]"#))
    }

    func testNestingIsBounded() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try parseJSON(deep)) { XCTAssertTrue("\($0)".contains("nested deeper")) }
        XCTAssertNoThrow(try parseJSON(String(repeating: "[", count: 64) + String(repeating: "]", count: 64)))
    }

    /// Issue 13 row 18: the scheduler took the last of two duplicate
    /// priorities, the validator the first. Now the manifest is refused and
    /// the scheduler orders it as default.
    func testADuplicateKeyIsManifestInvalid() {
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","priority":1,"priority":10}"#), .manifestInvalid, contains: "appears twice")
    }
}
