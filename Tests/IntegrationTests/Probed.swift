import Foundation
import SpoolKit
import SystemPackage
import XCTest

/// What ffprobe (the reference tool, allowed in tests) sees in a file.
struct Probed {
    struct S { var type: String; var codec: String; var width: Int?; var height: Int?; var frames: Int?; var fps: Double?; var rate: Int?; var channels: Int? }
    var duration: Double
    var streams: [S]
    var video: S? { streams.first { $0.type == "video" } }
    var audio: S? { streams.first { $0.type == "audio" } }

    init?(_ path: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let j = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        duration = Double((j["format"] as? [String: Any])?["duration"] as? String ?? "") ?? 0
        streams = ((j["streams"] as? [[String: Any]]) ?? []).map { s in
            let fr = (s["avg_frame_rate"] as? String ?? "0/1").split(separator: "/").compactMap { Double($0) }
            return S(type: s["codec_type"] as? String ?? "", codec: s["codec_name"] as? String ?? "",
                     width: s["width"] as? Int, height: s["height"] as? Int,
                     frames: Int(s["nb_read_frames"] as? String ?? ""),
                     fps: fr.count == 2 && fr[1] > 0 ? fr[0] / fr[1] : nil,
                     rate: Int(s["sample_rate"] as? String ?? ""), channels: s["channels"] as? Int)
        }
    }
}
