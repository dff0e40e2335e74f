import Foundation
import SpoolKit
import SystemPackage
import XCTest

/// A fresh directory under /tmp, removed when the test ends.
func makeTempDir(_ test: XCTestCase, _ name: String = "t") -> FilePath {
    let p = FileManager.default.temporaryDirectory.appendingPathComponent("mediaspool-\(name)-\(UUID().uuidString.prefix(8))").path
    try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: p) }
    return FilePath(p)
}

func write(_ s: String, to p: FilePath) {
    try! FileManager.default.createDirectory(atPath: p.removingLastComponent().string, withIntermediateDirectories: true)
    try! Data(s.utf8).write(to: URL(fileURLWithPath: p.string))
}

func read(_ p: FilePath) -> [UInt8]? { FileManager.default.contents(atPath: p.string).map(Array.init) }

func parse(_ s: String, file: String? = nil) throws -> Manifest { try Manifest.parse(Array(s.utf8), fileID: file) }

func XCTAssertSpoolError(_ body: @autoclosure () throws -> Any, _ code: ErrorCode, contains: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected \(code.rawValue), got success", file: file, line: line)
    } catch let e as SpoolError {
        XCTAssertEqual(e.code, code, "\(e.message)", file: file, line: line)
        if let contains { XCTAssertTrue(e.message.contains(contains), "message \"\(e.message)\" lacks \"\(contains)\"", file: file, line: line) }
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}

/// A flag set once from one thread and read from another.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
