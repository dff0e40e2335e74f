import Foundation
import SpoolKit
import XCTest

/// `mediaspool gallery` rendered by headless Chromium (Debian's chromium):
/// the DOM after load, the load time of 50 posters, a screenshot.
final class GalleryTests: XCTestCase {
    let chromium = "/usr/bin/chromium"

    func browse(_ page: String, _ flags: [String]) -> String {
        runProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--allow-file-access-from-files"] + flags + ["file://" + page],
                   env: ["HOME": FileManager.default.temporaryDirectory.path]).out
    }

    func count(_ needle: String, in s: String) -> Int { s.components(separatedBy: needle).count - 1 }

    func attr(_ name: String, in dom: String) -> Int? {
        guard let r = dom.range(of: #"\#(name)="(\d+)""#, options: .regularExpression) else { return nil }
        return Int(dom[r].split(separator: "\"")[1])
    }

    func testPagesPostersFiltersAndChromiumRendersThemFast() throws {
        let h = SpoolHarness(self)
        h.start(workers: 2)
        var ids: [String] = []
        for i in 0..<52 {
            let id = "v\(i)"
            let tenant = i % 2 == 0 ? #","tenant":"acme""# : ""
            h.submit(id, #"{"version":1,"type":"transcode","input":"clips/v1.mp4","labels":{"event":"e\#(i % 4)"}\#(tenant),"output":{"path":"out/\#(id).mp4","video":{"width":160,"preset":"ultrafast"}}}"#)
            ids.append(id)
        }
        h.submit("still", #"{"version":1,"type":"thumbnail","input":"clips/v1.mp4","at":[1],"output":{"path":"out/still.jpg"}}"#)
        for i in 0..<3 { h.submit("bad\(i)", probeManifest("clips/<script>alert(\(i))</script>.mp4")) }
        for i in 0..<4 { h.submit("p\(i)", probeManifest("clips/v1.mp4")) }
        eventually(stall: 60, "all 60 ended", progress: { h.finishedCount }) { h.finishedCount == 60 }
        h.stopAll()
        for id in ids { XCTAssertTrue(Sys.exists(h.layout.sideFile(id, "poster.jpg")), "\(id) has its poster beside its result") }
        XCTAssertFalse(Sys.exists(h.layout.sideFile("p0", "poster.jpg")), "no poster without a video output")

        let out = h.root.string + "/gallery"
        var (code, text) = h.cli(["gallery", "--out", out])
        XCTAssertEqual(code, 0, text)
        XCTAssertTrue(text.contains("60 jobs on 2 page(s)"), text)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: out)), ["index.html", "page-2.html", "posters"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out + "/posters").count, 53, "52 posters and the thumbnail")

        // Page 1 in Chromium: 50 newest, their images all loaded, fast; no
        // script but ours (the hostile paths are text).
        let dom = browse(out + "/index.html", ["--dump-dom", "--virtual-time-budget=5000"])
        XCTAssertEqual(count("<article class=\"job", in: dom), 50, dom.prefix(500).description)
        let cardsWithImages = count("<img class=\"poster\"", in: dom)
        XCTAssertGreaterThan(cardsWithImages, 35)
        XCTAssertEqual(attr("data-images-loaded", in: dom), cardsWithImages, "every poster decoded")
        let loadMs = try XCTUnwrap(attr("data-load-ms", in: dom))
        print("gallery: page of 50 with \(cardsWithImages) posters loaded in \(loadMs) ms")
        XCTAssertLessThan(loadMs, 500)
        XCTAssertEqual(count("<script", in: dom), 1)
        XCTAssertTrue(dom.contains("&lt;script&gt;alert(") || !dom.contains("bad0"), "hostile text escaped")
        XCTAssertTrue(dom.contains("rel=\"next\" href=\"page-2.html\""))
        XCTAssertTrue(dom.contains("tenant acme") && dom.contains(">event=e1<"))
        XCTAssertTrue(dom.contains("160×120") && dom.contains("h264+aac"), "size and codecs of the outputs")
        // Newest first: the order of the cards follows the records' times.
        let order = dom.components(separatedBy: "data-id=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        let times = order.map { id -> Date in
            let p = Sys.exists(h.layout.result(id)) ? h.layout.result(id) : h.layout.errorRecord(id)
            return (try? FileManager.default.attributesOfItem(atPath: p.string)[.modificationDate] as? Date) ?? .distantPast
        }
        XCTAssertEqual(times, times.sorted(by: >), "newest first")

        let dom2 = browse(out + "/page-2.html", ["--dump-dom"])
        XCTAssertEqual(count("<article class=\"job", in: dom2), 10)
        XCTAssertTrue(dom2.contains("rel=\"prev\" href=\"index.html\""))
        XCTAssertTrue(dom2.contains("INPUT_NOT_FOUND") || dom.contains("INPUT_NOT_FOUND"), "failed jobs with their codes")

        // A screenshot: the page drew (not blank), at the asked size.
        let shot = h.root.string + "/gallery.png"
        _ = browse(out + "/index.html", ["--screenshot=" + shot, "--window-size=1280,900"])
        let probe = runProcess("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", shot])
        XCTAssertEqual(probe.out.trimmingCharacters(in: .whitespacesAndNewlines), "1280,900")
        let stats = runProcess("/usr/bin/ffmpeg", ["-v", "error", "-i", shot, "-vf", "signalstats,metadata=print:file=-", "-f", "null", "-"]).out
        let ymin = stats.components(separatedBy: "lavfi.signalstats.YMIN=").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) }
        let ymax = stats.components(separatedBy: "lavfi.signalstats.YMAX=").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) }
        XCTAssertGreaterThan((ymax ?? 0) - (ymin ?? 0), 150, "posters and text drawn, not a blank page")

        // Selection by label and tenant.
        (code, text) = h.cli(["gallery", "--out", out + "-e1", "--label", "event=e1", "--tenant", "acme"])
        XCTAssertEqual(code, 0)
        let sel = try String(contentsOfFile: out + "-e1/index.html", encoding: .utf8)
        XCTAssertEqual(count("<article class=\"job", in: sel), 0, "e1 jobs are the odd ones, none of acme")
        (code, text) = h.cli(["gallery", "--out", out + "-e2", "--label", "event=e2"])
        let sel2 = try String(contentsOfFile: out + "-e2/index.html", encoding: .utf8)
        XCTAssertEqual(count("<article class=\"job", in: sel2), 13)
        XCTAssertEqual(count("data-tenant=\"acme\"", in: sel2), 13)
    }

    /// Issue 18: a package's card shows its animated preview as its image,
    /// its storyboard, and links to its HLS and DASH manifests; the page
    /// plays the master playlist only where the browser can by itself
    /// (nothing remote: Debian's Chromium cannot, so no player shows).
    func testAPackageCardShowsItsPreviewAndStoryboard() throws {
        let h = SpoolHarness(self)
        h.start(workers: 1)
        h.submit("pkg", #"{"version":1,"type":"package","input":"clips/v1.mp4","output":{"path":"streams/v1"},"segmentSeconds":1,"storyboard":{"interval":0.5,"columns":2,"rows":2},"preview":{"duration":1,"fps":5}}"#)
        h.submit("bare", #"{"version":1,"type":"package","input":"clips/v1.mp4","output":{"path":"streams/bare"},"formats":"dash"}"#)
        eventually(stall: 60, "the packages ended", progress: { h.finishedCount }) { h.finishedCount == 2 }
        XCTAssertNotNil(h.result("pkg"), h.error("pkg")?.message ?? "")
        XCTAssertNotNil(h.result("bare"), h.error("bare")?.message ?? "")
        h.stopAll()
        let out = h.root.string + "/gallery"
        let (code, text) = h.cli(["gallery", "--out", out])
        XCTAssertEqual(code, 0, text)
        let dom = browse(out + "/index.html", ["--dump-dom", "--virtual-time-budget=5000"])
        let card = try XCTUnwrap(dom.components(separatedBy: "<article ").first { $0.contains("data-id=\"pkg\"") }, dom)
        XCTAssertTrue(card.contains(#"<img class="poster" src="posters/pkg/preview.webp""#), card)
        XCTAssertTrue(card.contains(#"<img class="storyboard" src="posters/pkg/storyboard-01.jpg""#), card)
        // Both images decoded by the browser (the preview is an animated WebP).
        XCTAssertEqual(count(#"data-loaded="true""#, in: card), 2, card)
        let master = URL(fileURLWithPath: h.media.string + "/streams/v1/master.m3u8").absoluteString
        XCTAssertTrue(card.contains("href=\"\(master)\">HLS</a>"), card)
        XCTAssertTrue(card.contains(">DASH</a>") && card.contains(">storyboard VTT</a>"), card)
        XCTAssertTrue(card.contains("data-hls=\"\(master)\""), "the player is there for browsers that play HLS")
        // Debian's Chromium 156 says it may play HLS, then refuses the local
        // playlist (MEDIA_ERR_SRC_NOT_SUPPORTED): the player hides itself and
        // the preview and storyboard stand in. A browser that plays it
        // reports the package's duration.
        let video = try XCTUnwrap(card.range(of: #"<video[^>]*>"#, options: .regularExpression).map { String(card[$0]) }, card)
        if let d = video.range(of: #"data-duration="[0-9.]+""#, options: .regularExpression) {
            XCTAssertEqual(Double(video[d].split(separator: "\"")[1]) ?? 0, h.result("pkg")?.outputs.first?.durationSeconds ?? -1, accuracy: 0.1, video)
        } else if video.contains("data-error=") {
            XCTAssertTrue(video.contains("hidden"), "a player that failed hides itself: \(video)")
        } else {
            // Still loading when the page was dumped (media loading is not
            // bound by the virtual time budget): the markup is all there is to check.
            XCTAssertTrue(video.contains("data-hls="), video)
        }
        let vtt = try String(contentsOfFile: out + "/posters/pkg/storyboard.vtt", encoding: .utf8)
        XCTAssertTrue(vtt.contains("storyboard-01.jpg#xywh=0,0,"), "the WebVTT file names the sheets copied beside it")
        // The bare package (DASH only, no preview): no image, a DASH link, no player.
        let bare = try XCTUnwrap(dom.components(separatedBy: "<article ").first { $0.contains("data-id=\"bare\"") })
        XCTAssertTrue(bare.contains("noposter") && bare.contains(">DASH</a>") && !bare.contains("<video"), bare)
    }

    /// Issue 13 row 14: a forged result record naming a file outside the
    /// roots (or a poster that is a symlink) made `gallery` copy it into
    /// the page's folder.
    func testForgedRecordsAndPosterLinksAreNotCopied() throws {
        let h = SpoolHarness(self)
        let secret = h.root.removingLastComponent().appending("mediaspool-secret-\(UUID().uuidString.prefix(8)).jpg")
        FileManager.default.createFile(atPath: secret.string, contents: Data("top secret".utf8))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: secret.string) }
        func forge(_ id: String, output: String) {
            FileManager.default.createFile(atPath: h.layout.manifest(id, in: h.layout.done).string, contents: Data(#"{"version":1,"type":"thumbnail","input":"clips/v1.mp4","at":[1],"output":{"path":"x.jpg"}}"#.utf8))
            let record = #"{"id":"\#(id)","type":"thumbnail","status":"done","attempts":1,"startedAt":"2026-11-22T10:00:01.123Z","completedAt":"2026-11-22T10:00:02.123Z","durationMs":1000,"labels":{},"steps":[],"outputs":[{"path":"\#(output)","format":"jpg","sizeBytes":10,"sha256":""}],"history":[]}"#
            FileManager.default.createFile(atPath: h.layout.result(id).string, contents: Data(record.utf8))
        }
        forge("abs", output: secret.string)
        forge("dots", output: "../../\(secret.lastComponent!.string)")
        XCTAssertEqual(symlink(secret.string, h.media.appending("link.jpg").string), 0)
        forge("link", output: "link.jpg")
        forge("poster", output: "none.jpg")
        XCTAssertEqual(symlink(secret.string, h.layout.sideFile("poster", "poster.jpg").string), 0)
        let out = h.root.appending("gallery").string
        XCTAssertEqual(h.cli(["gallery", "--out", out]).code, 0)
        let copied = (try? FileManager.default.contentsOfDirectory(atPath: out + "/posters")) ?? []
        XCTAssertEqual(copied, [], "nothing outside the roots copied: \(copied)")
        let page = try String(contentsOfFile: out + "/index.html", encoding: .utf8)
        XCTAssertFalse(page.contains("top secret"))
        XCTAssertTrue(page.contains("abs") && page.contains("poster"), "the forged jobs are listed, without images")
    }
}
