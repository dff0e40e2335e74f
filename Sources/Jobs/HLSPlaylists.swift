import Foundation

/// The HLS playlists of a package, read and finished after the dash muxer
/// wrote them (RFC 8216). The muxer's master playlist declares each
/// variant's BANDWIDTH from the encoder's nominal rate (nothing for a CRF
/// rendition), where RFC 8216 4.3.4.2 wants the peak segment bit rate: it
/// is rewritten here with the rates measured on the segments written,
/// AVERAGE-BANDWIDTH added, and EXT-X-INDEPENDENT-SEGMENTS declared (every
/// segment starts with an IDR).
enum HLSPlaylists {
    struct Media {
        var segments: [(uri: String, seconds: Double)] = []
        var duration: Double { segments.reduce(0) { $0 + $1.seconds } }
    }

    /// The segments of a media playlist, in order.
    static func parseMedia(_ text: String) -> Media {
        var m = Media()
        var pending: Double?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#EXTINF:") {
                pending = Double(line.dropFirst(8).prefix { $0 != "," })
            } else if !line.isEmpty, !line.hasPrefix("#"), let d = pending {
                m.segments.append((line, d))
                pending = nil
            }
        }
        return m
    }

    /// Peak and average bit rates of a media playlist's segments, bits/s.
    static func rates(_ m: Media, size: (String) -> Int64?) -> (peak: Int, average: Int) {
        var peak = 0.0, bytes: Int64 = 0
        for s in m.segments {
            let b = size(s.uri) ?? 0
            bytes += b
            if s.seconds > 0 { peak = max(peak, Double(b) * 8 / s.seconds) }
        }
        let total = m.duration
        return (Int(peak.rounded(.up)), total > 0 ? Int((Double(bytes) * 8 / total).rounded(.up)) : 0)
    }

    /// The master playlist with every variant's BANDWIDTH and
    /// AVERAGE-BANDWIDTH from `rates` of its media playlist plus the
    /// largest of its audio group's.
    static func finishMaster(_ text: String, rates: (String) -> (peak: Int, average: Int)?) -> String {
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        // Audio renditions' rates by group.
        var audio: [String: (peak: Int, average: Int)] = [:]
        for l in lines where l.hasPrefix("#EXT-X-MEDIA:") {
            let a = attributes(l)
            guard let g = a["GROUP-ID"], let uri = a["URI"], let r = rates(uri) else { continue }
            let old = audio[g] ?? (0, 0)
            audio[g] = (max(old.peak, r.peak), max(old.average, r.average))
        }
        var out: [String] = []
        var i = 0
        while i < lines.count {
            let l = lines[i]
            if l == "#EXTM3U" {
                out.append(l)
                if !lines.contains("#EXT-X-INDEPENDENT-SEGMENTS") { out.append("#EXT-X-INDEPENDENT-SEGMENTS") }
            } else if l.hasPrefix("#EXT-X-STREAM-INF:"), i + 1 < lines.count, let r = rates(lines[i + 1]) {
                let a = attributes(l)
                let group = a["AUDIO"].flatMap { audio[$0] } ?? (0, 0)
                var rest = l.dropFirst("#EXT-X-STREAM-INF:".count).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                rest = merged(rest).filter { !$0.hasPrefix("BANDWIDTH=") && !$0.hasPrefix("AVERAGE-BANDWIDTH=") }
                out.append("#EXT-X-STREAM-INF:" + (["BANDWIDTH=\(r.peak + group.peak)", "AVERAGE-BANDWIDTH=\(r.average + group.average)"] + rest).joined(separator: ","))
            } else if !l.isEmpty {
                out.append(l)
            }
            i += 1
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// Attribute list items split at commas, re-joined where a quoted
    /// string held one (CODECS="avc1.64001f,mp4a.40.2").
    static func merged(_ parts: [String]) -> [String] {
        var out: [String] = []
        var open = false
        for p in parts {
            if open { out[out.count - 1] += "," + p } else { out.append(p) }
            if p.filter({ $0 == "\"" }).count % 2 == 1 { open.toggle() }
        }
        return out
    }

    /// A tag's attributes, quoted values unquoted.
    static func attributes(_ line: String) -> [String: String] {
        guard let colon = line.firstIndex(of: ":") else { return [:] }
        var d: [String: String] = [:]
        for item in merged(line[line.index(after: colon)...].split(separator: ",", omittingEmptySubsequences: false).map(String.init)) {
            guard let eq = item.firstIndex(of: "=") else { continue }
            var v = String(item[item.index(after: eq)...])
            if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 { v = String(v.dropFirst().dropLast()) }
            d[String(item[..<eq])] = v
        }
        return d
    }
}
