import ArgumentParser
import Foundation
import Jobs
import JobSchema
import SpoolKit
import SpoolOps
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
                if let pkg = r.outputs.first(where: { $0.format == "package" }) {
                    card.package = copyPackage(item.id, pkg.path, result: r, cfg: cfg, into: dir, poster: &card.poster)
                }
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

    /// A package's preview (the card's image when there is no poster), its
    /// storyboard's sheets and WebVTT file, copied beside the pages under
    /// posters/ID/, each read through the path checks a job's input gets;
    /// and file:// links to its master playlist and MPD where they exist.
    func copyPackage(_ id: String, _ path: String, result: ResultRecord, cfg: Config, into dir: URL,
                     poster: inout String?) -> GalleryPage.Card.Package? {
        guard JobID.isValid(id) else { return nil }
        let policy = cfg.pathPolicy(tenant: result.tenant)
        let limit = 8 << 20
        func read(_ name: String) -> (bytes: [UInt8], path: String)? {
            guard let f = try? policy.openInput(path + "/" + name, field: "output"), f.size < limit,
                  let bytes = (try? Sys.readAll(f.descriptor, limit: limit)) ?? nil else { return nil }
            return (bytes, f.path.string)
        }
        func link(_ name: String) -> String? {
            (try? policy.openInput(path + "/" + name, field: "output")).map { URL(fileURLWithPath: $0.path.string).absoluteString }
        }
        let fm = FileManager.default
        let own = dir.appendingPathComponent("posters/\(id)", isDirectory: true)
        func keep(_ name: String, _ bytes: [UInt8]) -> String? {
            try? fm.createDirectory(at: own, withIntermediateDirectories: true)
            return fm.createFile(atPath: own.appendingPathComponent(name).path, contents: Data(bytes)) ? "posters/\(id)/\(name)" : nil
        }
        if poster == nil, let p = read(Package.previewName) { poster = keep(Package.previewName, p.bytes) }
        var sheet: String?, vtt: String?
        if let v = read(Package.storyboardVTT) {
            vtt = keep(Package.storyboardVTT, v.bytes)
            // The sheets the WebVTT file names, by their names beside it.
            for n in 1...Storyboard.maxTiles {
                let name = String(format: Package.storyboardSheets, n)
                guard let s = read(name) else { break }
                let kept = keep(name, s.bytes)
                if n == 1 { sheet = kept }
            }
        }
        return GalleryPage.Card.Package(hls: link(Package.masterPlaylist), dash: link(Package.mpd), storyboard: sheet, storyboardVTT: vtt)
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
        if result.sideFiles?.contains(Poster.sideFileName) == true,
           case .success(let b) = Sys.readRegularFile(cfg.layout.sideFile(id, Poster.sideFileName), limit: limit) {
            bytes = b
        } else if let img = result.outputs.first(where: { ["jpg", "png", "webp", "gif"].contains($0.format) }),
                  let input = try? cfg.pathPolicy(tenant: result.tenant).openInput(img.path, field: "output"), input.size < limit {
            bytes = (try? Sys.readAll(input.descriptor, limit: limit)) ?? nil
            ext = img.format
        }
        guard let bytes else { return nil }
        let rel = "posters/\(id).\(ext)"
        return FileManager.default.createFile(atPath: dir.appendingPathComponent(rel).path, contents: Data(bytes)) ? rel : nil
    }
}
