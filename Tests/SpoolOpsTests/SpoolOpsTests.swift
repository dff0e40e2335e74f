import Foundation
import SpoolKit
import SpoolOps
import SystemPackage
import XCTest

/// The operators' views on their own, without the CLI.
final class SpoolOpsTests: XCTestCase {
    func spool() throws -> SpoolLayout {
        let root = FilePath(NSTemporaryDirectory()).appending("mediaspool-ops-\(UUID().uuidString.prefix(8))")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: root.string) }
        let layout = SpoolLayout(root: root)
        try layout.create()
        return layout
    }

    /// A gallery page escapes what manifests and records say.
    func testAGalleryPageEscapesSpoolText() {
        var card = GalleryPage.Card(id: "a", state: .failed, type: "probe", time: "2026-01-01T00:00:00Z",
                                    tenant: "<b>t</b>", labels: ["k": "\"><script>x</script>"])
        card.code = "INPUT_INVALID"; card.message = "<img src=x onerror=alert(1)>"
        let html = GalleryPage(spool: "/s", cards: [card], page: 1, pages: 1, total: 1, selection: []).html()
        XCTAssertFalse(html.contains("<script>x"), html)
        XCTAssertFalse(html.contains("<img src=x"), html)
        XCTAssertTrue(html.contains("&lt;img src=x onerror=alert(1)&gt;"))
        XCTAssertEqual(GalleryPage.fileName(1), "index.html")
        XCTAssertEqual(GalleryPage.fileName(3), "page-3.html")
    }

    /// The watch screen: lines no wider than asked, counts from the spool,
    /// no raw control characters from a job's id.
    func testAWatchFrameFitsItsWidthAndEscapesIds() throws {
        let layout = try spool()
        try Producer(layout: layout).submit(Array(#"{"version":1,"type":"probe","input":"a.mp4"}"#.utf8), id: "w1")
        var config = Config(); config.spool = layout.root
        let lines = WatchView(inspector: Inspector(layout: layout), health: Inspector.HealthPolicy(config)).frame(width: 70)
        XCTAssertTrue(lines.allSatisfy { $0.count <= 70 }, lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains { $0.contains("inbox 1") }, lines.joined(separator: "\n"))
        XCTAssertFalse(lines.joined().unicodeScalars.contains { $0.value < 0x20 })
    }

    /// GET /metrics on a Unix socket answers the body; anything else 404.
    func testTheMetricsServerAnswersGetMetrics() throws {
        let layout = try spool()
        let socket = layout.root.appending("metrics.sock")
        let server = try MetricsServer(endpoint: .unix(socket)) { Array("up 1\n".utf8) }
        defer { server.stop() }
        func get(_ path: String) throws -> String {
            let fd = try Sys.connectUnix(socket)
            defer { try? fd.close() }
            try Sys.writeAll(fd, Array("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            return String(decoding: try Sys.readAll(fd, limit: 1 << 16) ?? [], as: UTF8.self)
        }
        let ok = try get("/metrics")
        XCTAssertTrue(ok.hasPrefix("HTTP/1.1 200 OK"), ok)
        XCTAssertTrue(ok.hasSuffix("\r\n\r\nup 1\n"), ok)
        XCTAssertTrue(try get("/other").hasPrefix("HTTP/1.1 404"))
    }
}
