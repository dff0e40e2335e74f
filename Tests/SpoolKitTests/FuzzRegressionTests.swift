@testable import SpoolKit
import Foundation
import XCTest

/// The fuzz targets' properties (Fuzz/FuzzManifest) checked on every seed
/// and every input the fuzzers ever found (Fuzz/regressions/), so a finding
/// stays fixed without running libFuzzer.
final class FuzzRegressionTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let validationCodes: Set<ErrorCode> = [.manifestInvalid, .manifestTooLarge, .idInvalid, .idMismatch, .unsupported]

    func files(_ dir: String) throws -> [URL] {
        let d = Self.repo.appendingPathComponent(dir)
        return try FileManager.default.contentsOfDirectory(at: d, includingPropertiesForKeys: nil).filter { !$0.lastPathComponent.hasPrefix(".") }
    }

    func checkManifestProperty(_ bytes: [UInt8], _ name: String) {
        do {
            let m = try Manifest.parse(bytes, fileID: "fuzz-job")
            XCTAssert((-10...10).contains(m.priority), name)
        } catch {
            XCTAssert(Self.validationCodes.contains(error.code), "\(name): \(error)")
            XCTAssertFalse(error.message.isEmpty, name)
        }
        let (p, t) = Scanner.orderingFields(bytes)
        XCTAssert((-10...10).contains(p), name)
        XCTAssert(t.utf8.count <= 128, name)
    }

    func testSeedsAndRegressionsKeepTheManifestProperty() throws {
        let all = try files("Fuzz/corpus/manifest") + files("Fuzz/regressions/manifest")
        XCTAssertGreaterThan(all.count, 10)
        var parsed = 0
        for f in all {
            let bytes = Array(try Data(contentsOf: f))
            checkManifestProperty(bytes, f.lastPathComponent)
            if (try? Manifest.parse(bytes, fileID: nil)) != nil { parsed += 1 }
        }
        XCTAssertGreaterThan(parsed, 5, "the seed corpus should hold valid manifests too")
    }

    func testOutOfRangeNumbersOrderAsZero() {
        XCTAssertEqual(Scanner.orderingFields(Array(#"{"priority":1e300,"tenant":"t"}"#.utf8)).0, 0)
        XCTAssertEqual(Scanner.orderingFields(Array(#"{"priority":-9.3e18}"#.utf8)).0, 0)
        XCTAssertEqual(Scanner.orderingFields(Array(#"{"priority":7,"tenant":"t"}"#.utf8)).0, 7)
        XCTAssertSpoolError(try parse(#"{"version":1,"type":"probe","input":"a","priority":1e300}"#), .manifestInvalid, contains: "$.priority")
    }

    func testDeepNestingIsRefusedNotAStackOverflow() {
        let deep = String(repeating: "[", count: 1_000_000)  // just under the 1 MiB limit
        XCTAssertSpoolError(try parse(deep), .manifestInvalid, contains: "not valid JSON")
        XCTAssertEqual(Scanner.orderingFields(Array(deep.utf8)).0, 0)
        let nested = #"{"version":1,"type":"probe","input":"a","labels":"# + String(repeating: #"{"a":"#, count: 100_000) + "1" + String(repeating: "}", count: 100_001)
        XCTAssertSpoolError(try parse(nested), .manifestInvalid)
    }
}
