@testable import SpoolKit
import XCTest
import Foundation

final class ScannerTests: XCTestCase {
    func testOrderingFieldsAreReadCheaplyAndSafely() {
        func f(_ s: String) -> (Int, String) { Scanner.orderingFields(Array(s.utf8)) }
        XCTAssertTrue(f(#"{"priority":5,"tenant":"acme"}"#) == (5, "acme"))
        XCTAssertTrue(f(#"{"priority":-10}"#) == (-10, ""))
        XCTAssertTrue(f(#"{"priority":11}"#) == (0, ""))
        XCTAssertTrue(f(#"{"priority":1.5}"#) == (0, ""))
        XCTAssertTrue(f(#"{"priority":true}"#) == (0, ""))
        XCTAssertTrue(f("garbage") == (0, ""))
    }
}
