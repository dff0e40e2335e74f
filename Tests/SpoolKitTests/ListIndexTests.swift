import Foundation
@testable import SpoolKit
import SystemPackage
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `list` over the finished-jobs index: the files stay the truth, the index
/// follows every change to done/ and failed/, and survives being deleted or
/// corrupted.
final class ListIndexTests: XCTestCase {
    var layout: SpoolLayout!

    override func setUp() {
        layout = SpoolLayout(root: makeTempDir(self, "list"))
        try! layout.create()
    }

    /// A finished job whose record was written `age` seconds ago.
    func finish(_ id: String, failed: Bool = false, age: Double, labels: [String: String] = [:], tenant: String? = nil) {
        let l = labels.isEmpty ? "" : #","labels":{"# + labels.map { #""\#($0)":"\#($1)""# }.joined(separator: ",") + "}"
        let t = tenant.map { #","tenant":"\#($0)""# } ?? ""
        let dir = failed ? layout.failed : layout.done
        write(#"{"version":1,"type":"probe","input":"a.mp4"\#(l)\#(t)}"#, to: dir.appending(id + ".json"))
        let rec = failed ? layout.errorRecord(id) : layout.result(id)
        write(failed ? #"{"id":"\#(id)","status":"failed","code":"INPUT_NOT_FOUND","message":"m","retryable":false,"attempts":2,"failedAt":"x","history":[]}"#
                     : #"{"id":"\#(id)","attempts":1}"#, to: rec)
        let when = Date().timeIntervalSince1970 - age
        var ts = [timespec(tv_sec: Int(when), tv_nsec: 0), timespec(tv_sec: Int(when), tv_nsec: 0)]
        utimensat(AT_FDCWD, rec.string, &ts, 0)
    }

    func ids(_ p: Inspector.Page) -> [String] { p.items.map(\.id) }
    func list(_ states: [Inspector.State] = [.done, .failed], label: (String, String)? = nil, tenant: String? = nil, limit: Int = 50, cursor: String? = nil) -> Inspector.Page {
        Inspector(layout: layout).list(states: states, label: label, tenant: tenant, limit: limit, cursor: cursor)
    }

    /// `watch`'s per-priority counts read each waiting manifest once, then
    /// only new or replaced ones.
    func testWaitingByPriorityReadsOnlyNewOrReplacedManifests() throws {
        let producer = Producer(layout: layout)
        func submit(_ id: String, _ prio: Int) throws {
            try producer.submit(Array(#"{"version":1,"type":"probe","input":"a.mp4","priority":\#(prio)}"#.utf8), id: id)
        }
        try submit("a", 5); try submit("b", 5); try submit("c", -2)
        let inspector = Inspector(layout: layout), cache = Inspector.PriorityCache()
        XCTAssertEqual(inspector.waitingByPriority(cache: cache), [5: 2, -2: 1])
        XCTAssertEqual(cache.reads, 3)
        XCTAssertEqual(inspector.waitingByPriority(cache: cache), [5: 2, -2: 1])
        XCTAssertEqual(cache.reads, 3, "nothing changed: nothing read")
        try submit("b", 9)   // a producer replaces b (rename over it: a new inode)
        try submit("d", 0)
        XCTAssertEqual(inspector.waitingByPriority(cache: cache), [5: 1, 9: 1, -2: 1, 0: 1])
        XCTAssertEqual(cache.reads, 5, "only the replaced and the new manifest read")
        try Sys.unlink(layout.manifest("a", in: layout.inbox))
        XCTAssertEqual(inspector.waitingByPriority(cache: cache), [9: 1, -2: 1, 0: 1])
        XCTAssertEqual(inspector.waitingByPriority(), [9: 1, -2: 1, 0: 1], "the same without a cache")
    }

    func testNewestFirstAndFollowsEveryChange() throws {
        for i in 0..<20 { finish("d\(i)", age: Double(100 - i), labels: ["k": "\(i % 3)"], tenant: i % 2 == 0 ? "acme" : nil) }
        finish("f1", failed: true, age: 150)
        XCTAssertEqual(ids(list(limit: 3)), ["d19", "d18", "d17"])
        let index = layout.root.appending("index/finished.tsv")
        XCTAssertTrue(Sys.exists(index), "the index was written")
        let f = try XCTUnwrap(list([.failed]).items.first)
        XCTAssertEqual(f.id, "f1"); XCTAssertEqual(f.code, "INPUT_NOT_FOUND"); XCTAssertEqual(f.attempts, 2); XCTAssertEqual(f.type, "probe")
        XCTAssertEqual(ids(list(label: ("k", "1"), limit: 3)), ["d19", "d16", "d13"])
        XCTAssertEqual(ids(list(tenant: "acme", limit: 2)), ["d18", "d16"])
        XCTAssertEqual(list([.done], limit: 50).items.first?.labels, ["k": "1"])

        // Changes after the index was written: a new job, a purged one, a replayed one.
        finish("new", age: 1)
        try Sys.unlink(layout.manifest("d19", in: layout.done))
        try Sys.rename(layout.manifest("d18", in: layout.done), layout.manifest("d18", in: layout.inbox))
        XCTAssertEqual(ids(list([.done], limit: 3)), ["new", "d17", "d16"])
        XCTAssertEqual(list(limit: 100).items.count, 20)
        XCTAssertEqual(list([.inbox, .done], limit: 100).items.count, 20, "live states merged in")

        // Deleted or garbage: rebuilt from the files.
        try Sys.unlink(index)
        XCTAssertEqual(ids(list([.done], limit: 2)), ["new", "d17"])
        write("garbage\n1\tx\n", to: index)
        XCTAssertEqual(ids(list([.done], limit: 2)), ["new", "d17"])
        XCTAssertTrue(String(decoding: read(index) ?? [], as: UTF8.self).hasPrefix("#mediaspool-finished-index 1 "))
    }

    /// A publish in the same clock tick as the change the index last saw
    /// leaves done/'s mtime as it was: the index must not call itself fresh
    /// on a recent mtime (the tick is simulated by putting the mtime back).
    func testAPublishInTheSameTickAsTheLastChangeIsListed() throws {
        finish("a", age: 10)
        var before = try Sys.stat(layout.done)
        XCTAssertEqual(ids(list([.done])), ["a"])
        let header = String(decoding: read(layout.root.appending("index/finished.tsv")) ?? [], as: UTF8.self).prefix { $0 != "\n" }
        XCTAssertEqual(header.split(separator: " ").dropFirst(2).first, "-2", "a done/ changed under 2 s ago is not trusted: \(header)")
        finish("b", age: 5)
        var ts = [before.st_atim, before.st_mtim]
        XCTAssertEqual(utimensat(AT_FDCWD, layout.done.string, &ts, 0), 0)
        before = try Sys.stat(layout.done)
        XCTAssertEqual(ids(list([.done])), ["b", "a"], "the job published in the same tick")
        XCTAssertEqual(FinishedIndex.settled(before.mtimeNanoseconds, now: before.mtimeNanoseconds + 3_000_000_000), before.mtimeNanoseconds,
                       "a settled mtime is written as it is")
        XCTAssertEqual(FinishedIndex.settled(-1, now: 5), -1, "a missing directory stays fresh")
        XCTAssertEqual(FinishedIndex.settled(10_000_000_000, now: 1_000_000_000), 10_000_000_000, "an mtime 9 s ahead of the clock is trusted")
    }

    func testCursorPagesCoverEveryJobOnce() {
        for i in 0..<57 { finish("j\(i)", failed: i % 5 == 0, age: Double(1000 - i)) }
        var seen: [String] = [], cursor: String?
        repeat {
            let p = list(limit: 10, cursor: cursor)
            XCTAssertLessThanOrEqual(p.items.count, 10)
            seen += ids(p)
            cursor = p.nextCursor
        } while cursor != nil
        XCTAssertEqual(seen, (0..<57).reversed().map { "j\($0)" })
    }
}
