import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class OpenNoSymlinksTests: XCTestCase {
    func testRefusesASymlinkedComponent() throws {
        let root = makeTempDir(self, "nosym")
        write("x", to: root.appending("real/f"))
        XCTAssertEqual(symlink(root.appending("real").string, root.appending("link").string), 0)
        XCTAssertNoThrow(try Sys.openNoSymlinks(root.appending("real/f")).close())
        XCTAssertThrowsError(try Sys.openNoSymlinks(root.appending("link/f")))
    }
}
