import Foundation
import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 13 row 6: a job of one tenant overwrote another tenant's output,
/// any job read any file under the roots, and retention deleted an output
/// that another retained job still lists.
final class TenantTests: XCTestCase {
    func testTenantsStayUnderTheirRootsAndOutputsAreNotTakenOver() throws {
        let h = SpoolHarness(self)
        let acme = h.root.appending("tenants/acme"), evil = h.root.appending("tenants/evil")
        Fixtures.install(into: acme)
        Fixtures.install(into: evil)
        let config = h.root.appending("config.json")
        FileManager.default.createFile(atPath: config.string, contents: Data(#"{"tenants":{"acme":{"mediaRoot":"\#(acme)"},"evil":{"mediaRoot":"\#(evil)"}}}"#.utf8))
        h.start(workers: 2, args: ["--config", config.string])
        func transcode(_ input: String, _ output: String, tenant: String?, overwrite: Bool = false) -> String {
            #"{"version":1,"type":"transcode","input":"\#(input)",\#(tenant.map { #""tenant":"\#($0)","# } ?? "")"output":{"path":"\#(output)","video":{"height":120,"preset":"ultrafast"}\#(overwrite ? #","overwrite":true"# : "")}}"#
        }
        // acme's job resolves against acme's root.
        h.submit("a1", transcode("clips/v1.mp4", "out/master.mp4", tenant: "acme"))
        // evil reaches for acme's files by absolute path: refused both ways.
        h.submit("e1", transcode(acme.appending("clips/v1.mp4").string, "out/x.mp4", tenant: "evil"))
        h.submit("e2", transcode("../acme/clips/v1.mp4", "out/x.mp4", tenant: "evil"))
        h.submit("e3", transcode("clips/v1.mp4", acme.appending("out/master.mp4").string, tenant: "evil"))
        eventually(60, "the four ended") { ["a1", "e1", "e2", "e3"].allSatisfy { h.result($0) != nil || h.error($0) != nil } }
        XCTAssertNotNil(h.result("a1"), h.error("a1")?.message ?? "")
        XCTAssertNotNil(Probed(acme.appending("out/master.mp4").string))
        XCTAssertEqual(h.error("e1")?.code, "INPUT_NOT_ALLOWED")
        XCTAssertEqual(h.error("e2")?.code, "INPUT_NOT_ALLOWED")
        XCTAssertEqual(h.error("e3")?.code, "OUTPUT_NOT_ALLOWED")
        let before = try Data(contentsOf: URL(fileURLWithPath: acme.appending("out/master.mp4").string))

        // Within one tenant: a second job does not replace a retained job's output
        // unless it says overwrite.
        h.submit("a2", transcode("clips/v1.mp4", "out/master.mp4", tenant: "acme"))
        eventually(60, "a2 ended") { h.error("a2") != nil || h.result("a2") != nil }
        XCTAssertEqual(h.error("a2")?.code, "OUTPUT_NOT_ALLOWED")
        XCTAssertTrue(h.error("a2")?.message.contains("a1") ?? false, h.error("a2")?.message ?? "")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: acme.appending("out/master.mp4").string)), before)
        h.submit("a3", transcode("clips/v1.mp4", "out/master.mp4", tenant: "acme", overwrite: true))
        eventually(60, "a3 done") { h.result("a3") != nil || h.error("a3") != nil }
        XCTAssertNotNil(h.result("a3"), h.error("a3")?.message ?? "")
        h.stopAll()

        // Retention with retentionPurgesOutputs: purging a1 leaves the file a3 now owns.
        try Sys.setModificationTime(h.layout.result("a1"), seconds: Date().timeIntervalSince1970 - 10 * 86400)
        let env = ["MEDIASPOOL_RETAIN_DONE_DAYS": "7", "MEDIASPOOL_RETENTION_PURGES_OUTPUTS": "true"]
        var r = h.cli(["sweep", "--json", "--config", config.string], env: env)
        XCTAssertEqual(r.code, 0)
        XCTAssertNil(h.result("a1"), "a1 purged")
        XCTAssertTrue(Sys.exists(acme.appending("out/master.mp4")), "a3 still lists it")
        try Sys.setModificationTime(h.layout.result("a3"), seconds: Date().timeIntervalSince1970 - 10 * 86400)
        r = h.cli(["sweep", "--json", "--config", config.string], env: env)
        XCTAssertEqual(try JSONDecoder().decode(Recovery.Report.self, from: Data(r.out.utf8)).outputsPurged, 1)
        XCTAssertFalse(Sys.exists(acme.appending("out/master.mp4")), "gone with its last job")
    }
}
