import ArgumentParser
import Foundation
import SpoolKit
import SystemPackage

struct Gallery: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a static HTML gallery of finished jobs (no server, no network).",
        discussion: """
        Newest first, 50 to a page (index.html, page-2.html, ...): a poster for each video \
        output (made when the job completed), the image of thumbnail jobs, duration, size, \
        labels, tenant; failed jobs with their code and message. --label and --tenant select \
        jobs; the page also filters what it shows as you type.
        """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The directory to write (created; its pages and posters/ are replaced).") var out: String
    @Option(help: "Only jobs with this label (K=V).") var label: String?
    @Option(help: "Only jobs of this tenant.") var tenant: String?
    @Option(help: "At most this many of the newest jobs.") var limit: Int = 1000
    @Option(help: "Jobs per page.") var perPage: Int = 50

    func run() throws {
        let cfg = try global.load()
        let lbl = try parseLabel(label)
        guard perPage > 0, limit > 0 else { throw ValidationError("--per-page and --limit must be positive") }
        let inspector = Inspector(layout: cfg.layout)
        let items = inspector.list(states: [.done, .failed], label: lbl, tenant: tenant, limit: limit, cursor: nil).items
        let dir = URL(fileURLWithPath: out, isDirectory: true)
        let fm = FileManager.default
        try? fm.removeItem(at: dir.appendingPathComponent("posters"))
        try fm.createDirectory(at: dir.appendingPathComponent("posters"), withIntermediateDirectories: true)
        for old in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where old == "index.html" || (old.hasPrefix("page-") && old.hasSuffix(".html")) {
            try? fm.removeItem(at: dir.appendingPathComponent(old))
        }
        var cards: [GalleryPage.Card] = []
        for item in items {
            // Only the record: the listing already gave state, type, tenant, labels.
            let result = item.state == .done ? inspector.result(item.id) : nil
            let error = item.state == .failed ? inspector.errorRecord(item.id) : nil
            guard result != nil || error != nil else { continue }   // purged since the listing
            var card = GalleryPage.Card(id: item.id, state: item.state, type: item.type ?? "?", time: item.time,
                                        tenant: item.tenant, labels: item.labels ?? [:])
            if let r = result {
                card.outputs = r.outputs.map { ($0.path, $0.sizeBytes, $0.durationSeconds, $0.width, $0.height, $0.videoCodec, $0.audioCodec) }
                card.poster = copyPoster(item.id, result: r, cfg: cfg, into: dir)
            }
            if let e = error { card.code = e.code; card.message = e.message }
            cards.append(card)
        }
        let pages = stride(from: 0, to: max(cards.count, 1), by: perPage).map { Array(cards[$0..<min($0 + perPage, cards.count)]) }
        for (i, page) in pages.enumerated() {
            let html = GalleryPage(spool: cfg.spool.string, cards: page, page: i + 1, pages: pages.count, total: cards.count,
                                   selection: [label.map { "label \($0)" }, tenant.map { "tenant \($0)" }].compactMap { $0 }).html()
            try Data(html.utf8).write(to: dir.appendingPathComponent(GalleryPage.fileName(i + 1)), options: .atomic)
        }
        print("gallery: \(cards.count) jobs on \(pages.count) page(s): \(dir.appendingPathComponent("index.html").path)")
    }

    /// The job's poster, or for an image output the image itself, copied
    /// next to the pages so the gallery stands alone. Returns its relative path.
    func copyPoster(_ id: String, result: ResultRecord, cfg: Config, into dir: URL) -> String? {
        // Records and posters are read as untrusted: a poster only as a
        // regular file of the spool (no symlink), an image output only
        // through the path checks a job's input gets (inside the roots, no
        // symlink escape, a regular file), both bounded.
        guard JobID.isValid(id) else { return nil }
        let limit = 8 << 20
        var bytes: [UInt8]?, ext = "jpg"
        if case .success(let b) = Sys.readRegularFile(cfg.layout.poster(id), limit: limit) {
            bytes = b
        } else if let img = result.outputs.first(where: { ["jpg", "png", "webp"].contains($0.format) }),
                  let input = try? cfg.pathPolicy(tenant: result.tenant).openInput(img.path, field: "output"), input.size < limit {
            bytes = (try? Sys.readAll(input.descriptor, limit: limit)) ?? nil
            ext = img.format
        }
        guard let bytes else { return nil }
        let rel = "posters/\(id).\(ext)"
        return FileManager.default.createFile(atPath: dir.appendingPathComponent(rel).path, contents: Data(bytes)) ? rel : nil
    }
}

/// One page of the gallery. Every string from a manifest or record is
/// escaped; the page loads nothing from the network.
struct GalleryPage {
    struct Card {
        var id: String, state: Inspector.State, type: String, time: String
        var tenant: String?, labels: [String: String]
        var outputs: [(path: String, size: Int64, duration: Double?, width: Int?, height: Int?, video: String?, audio: String?)] = []
        var poster: String?
        var code: String?, message: String?
    }
    let spool: String, cards: [Card], page: Int, pages: Int, total: Int, selection: [String]

    static func fileName(_ page: Int) -> String { page == 1 ? "index.html" : "page-\(page).html" }

    func html() -> String {
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>mediaspool gallery \(page)/\(pages)</title>
        <style>
        body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f6;color:#222}
        header{background:#222;color:#eee;padding:12px 20px;display:flex;gap:20px;align-items:center;flex-wrap:wrap}
        header h1{font-size:18px;margin:0} header input{padding:4px 8px;min-width:220px}
        main{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:14px;padding:16px 20px}
        article{background:#fff;border-radius:6px;box-shadow:0 1px 3px #0002;overflow:hidden}
        article.failed{border-top:4px solid #c0392b} article.done{border-top:4px solid #27ae60}
        .poster{width:100%;aspect-ratio:16/9;object-fit:cover;background:#ddd;display:block}
        .noposter{display:flex;align-items:center;justify-content:center;color:#777}
        .body{padding:8px 12px} .id{font-weight:600;word-break:break-all} .meta{color:#555;font-size:12px}
        .chip{display:inline-block;background:#eef;border-radius:10px;padding:0 8px;margin:2px 4px 0 0;font-size:12px}
        .code{color:#c0392b;font-weight:600} .msg{font-size:12px;color:#444;word-break:break-word}
        nav{padding:0 20px 20px;display:flex;gap:12px}
        </style></head><body>
        <header><h1>mediaspool</h1><span>\(esc(spool))</span><span>\(total) jobs\(selection.isEmpty ? "" : ", " + esc(selection.joined(separator: ", "))), page \(page) of \(pages)</span>
        <input id="filter" type="search" placeholder="filter: label k=v, tenant, id, code" aria-label="filter"></header>
        <main id="jobs">

        """
        for c in cards {
            let labelText = c.labels.keys.sorted().map { "\($0)=\(c.labels[$0]!)" }
            h += "<article class=\"job \(c.state.rawValue)\" id=\"job-\(esc(c.id))\" data-id=\"\(esc(c.id))\" data-tenant=\"\(esc(c.tenant ?? ""))\" data-labels=\"\(esc(labelText.joined(separator: "\n")))\" data-code=\"\(esc(c.code ?? ""))\">"
            if let p = c.poster {
                h += "<img class=\"poster\" src=\"\(esc(p))\" alt=\"poster of \(esc(c.id))\" width=\"320\" height=\"180\">"
            } else {
                h += "<div class=\"poster noposter\">\(esc(c.state == .failed ? "failed" : c.type))</div>"
            }
            h += "<div class=\"body\"><div class=\"id\">\(esc(c.id))</div>"
            h += "<div class=\"meta\">\(esc(c.type)) · \(c.state.rawValue) · <time datetime=\"\(esc(c.time))\">\(esc(String(c.time.replacingOccurrences(of: "T", with: " ").prefix(19))))</time>\(c.tenant.map { " · tenant " + esc($0) } ?? "")</div>"
            for o in c.outputs {
                var parts = [esc(o.path), Self.size(o.size)]
                if let d = o.duration { parts.append(String(format: "%.2f s", d)) }
                if let w = o.width, let hh = o.height { parts.append("\(w)×\(hh)") }
                let codecs = [o.video, o.audio].compactMap { $0 }
                if !codecs.isEmpty { parts.append(esc(codecs.joined(separator: "+"))) }
                h += "<div class=\"meta output\">\(parts.joined(separator: " · "))</div>"
            }
            if let code = c.code { h += "<div class=\"code\">\(esc(code))</div><div class=\"msg\">\(esc(c.message ?? ""))</div>" }
            if !labelText.isEmpty { h += "<div>" + labelText.map { "<span class=\"chip\">\(esc($0))</span>" }.joined() + "</div>" }
            h += "</div></article>\n"
        }
        h += "</main><nav>"
        if page > 1 { h += "<a rel=\"prev\" href=\"\(Self.fileName(page - 1))\">← newer</a>" }
        if page < pages { h += "<a rel=\"next\" href=\"\(Self.fileName(page + 1))\">older →</a>" }
        h += """
        </nav>
        <script>
        (function(){
          var input=document.getElementById('filter'), jobs=[].slice.call(document.querySelectorAll('article.job'));
          input.addEventListener('input',function(){
            var q=input.value.trim().toLowerCase();
            jobs.forEach(function(a){
              var hay=[a.dataset.id,a.dataset.tenant,a.dataset.labels,a.dataset.code].join('\\n').toLowerCase();
              a.hidden = q!=='' && hay.indexOf(q)<0;
            });
          });
          window.addEventListener('load',function(){
            var imgs=[].slice.call(document.images);
            document.body.dataset.loadMs=String(Math.round(performance.now()));
            document.body.dataset.imagesLoaded=String(imgs.filter(function(i){return i.complete&&i.naturalWidth>0}).length);
          });
        })();
        </script></body></html>

        """
        return h
    }

    static func size(_ b: Int64) -> String {
        b >= 1 << 20 ? String(format: "%.1f MiB", Double(b) / 1048576) : b >= 1024 ? String(format: "%.0f KiB", Double(b) / 1024) : "\(b) B"
    }

    func esc(_ s: String) -> String {
        var o = ""
        o.reserveCapacity(s.count)
        for ch in s {
            switch ch {
            case "&": o += "&amp;"; case "<": o += "&lt;"; case ">": o += "&gt;"
            case "\"": o += "&quot;"; case "'": o += "&#39;"
            default: o.append(ch)
            }
        }
        return o
    }
}
