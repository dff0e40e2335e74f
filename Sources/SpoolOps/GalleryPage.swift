import Foundation
import SpoolKit

/// One page of the gallery. Every string from a manifest or record is
/// escaped; the page loads nothing from the network.
public struct GalleryPage {
    public struct Card {
        public var id: String, state: Inspector.State, type: String, time: String
        public var tenant: String?, labels: [String: String]
        public var outputs: [(path: String, size: Int64, duration: Double?, width: Int?, height: Int?, video: String?, audio: String?)] = []
        public var poster: String?
        public var code: String?, message: String?
        /// A package's streams and what was copied of it beside the pages.
        public var package: Package?

        public struct Package {
            /// file:// URLs of the master playlist and the MPD, when the package has them.
            public var hls: String?, dash: String?
            /// The first storyboard sheet and the WebVTT file, relative to the page.
            public var storyboard: String?, storyboardVTT: String?
            public init(hls: String?, dash: String?, storyboard: String?, storyboardVTT: String?) {
                self.hls = hls; self.dash = dash; self.storyboard = storyboard; self.storyboardVTT = storyboardVTT
            }
        }

        public init(id: String, state: Inspector.State, type: String, time: String, tenant: String?, labels: [String: String]) {
            self.id = id; self.state = state; self.type = type; self.time = time; self.tenant = tenant; self.labels = labels
        }
    }
    let spool: String, cards: [Card], page: Int, pages: Int, total: Int, selection: [String]

    public init(spool: String, cards: [Card], page: Int, pages: Int, total: Int, selection: [String]) {
        self.spool = spool; self.cards = cards; self.page = page; self.pages = pages; self.total = total; self.selection = selection
    }

    public static func fileName(_ page: Int) -> String { page == 1 ? "index.html" : "page-\(page).html" }

    public func html() -> String {
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
        .player{width:100%;aspect-ratio:16/9;background:#000;display:block} .storyboard{width:100%;display:block;margin-top:6px}
        .links a{margin-right:10px;font-size:12px}
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
            if let p = c.package, let hls = p.hls {
                // Played where the browser plays HLS itself (nothing is
                // loaded from the network: no hls.js); elsewhere the
                // preview above, the storyboard and the links stand in.
                h += "<video class=\"player\" controls preload=\"none\" hidden data-hls=\"\(esc(hls))\"\(c.poster.map { " poster=\"\(esc($0))\"" } ?? "")></video>"
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
            if let p = c.package {
                if let sb = p.storyboard {
                    h += "<img class=\"storyboard\" src=\"\(esc(sb))\" alt=\"storyboard of \(esc(c.id))\"\(p.storyboardVTT.map { " data-vtt=\"\(esc($0))\"" } ?? "")>"
                }
                let links = [p.hls.map { ("HLS", $0) }, p.dash.map { ("DASH", $0) }, p.storyboardVTT.map { ("storyboard VTT", $0) }].compactMap { $0 }
                if !links.isEmpty { h += "<div class=\"links\">" + links.map { "<a href=\"\(esc($0.1))\">\($0.0)</a>" }.joined() + "</div>" }
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
          var players=[].slice.call(document.querySelectorAll('video.player'));
          players.forEach(function(v){
            if(!v.canPlayType('application/vnd.apple.mpegurl')) return;
            // A browser that says it may play HLS and then cannot (a codec,
            // a local file it may not read) hides the player again.
            v.addEventListener('loadedmetadata',function(){ v.dataset.duration=String(v.duration); });
            v.addEventListener('error',function(){ v.dataset.error=String(v.error&&v.error.code); v.hidden=true; });
            v.preload='metadata'; v.src=v.dataset.hls; v.hidden=false;
          });
          window.addEventListener('load',function(){
            var imgs=[].slice.call(document.images);
            document.body.dataset.loadMs=String(Math.round(performance.now()));
            document.body.dataset.imagesLoaded=String(imgs.filter(function(i){return i.complete&&i.naturalWidth>0}).length);
            imgs.forEach(function(i){ i.dataset.loaded=String(i.complete&&i.naturalWidth>0); });
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
