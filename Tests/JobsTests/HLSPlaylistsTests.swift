@testable import Jobs
import XCTest

/// The master playlist as the package job finishes it: BANDWIDTH the peak
/// segment bit rate plus the audio group's, AVERAGE-BANDWIDTH added,
/// quoted attributes with commas kept whole.
final class HLSPlaylistsTests: XCTestCase {
    let media0 = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init-0.m4s\"\n#EXTINF:4.000000,\nc-0-1.m4s\n#EXTINF:2.000000,\nc-0-2.m4s\n#EXT-X-ENDLIST\n"
    let audio = "#EXTM3U\n#EXTINF:4.0,\nc-1-1.m4s\n#EXTINF:2.0,\nc-1-2.m4s\n#EXT-X-ENDLIST\n"

    func testBandwidthIsThePeakSegmentRate() {
        let m = HLSPlaylists.parseMedia(media0)
        XCTAssertEqual(m.segments.map(\.uri), ["c-0-1.m4s", "c-0-2.m4s"])
        XCTAssertEqual(m.duration, 6)
        let sizes: [String: Int64] = ["c-0-1.m4s": 1_000_000, "c-0-2.m4s": 750_000, "c-1-1.m4s": 64_000, "c-1-2.m4s": 40_000]
        let r = HLSPlaylists.rates(m, size: { sizes[$0] })
        XCTAssertEqual(r.peak, 3_000_000, "750 kB in 2 s")
        XCTAssertEqual(r.average, 2_333_334)
        let master = """
            #EXTM3U
            #EXT-X-VERSION:7
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_A1",NAME="audio_1",DEFAULT=YES,URI="media_1.m3u8"
            #EXT-X-STREAM-INF:BANDWIDTH=5,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",AUDIO="group_A1"
            media_0.m3u8

            """
        let playlists = ["media_0.m3u8": media0, "media_1.m3u8": audio]
        let out = HLSPlaylists.finishMaster(master) { uri in
            playlists[uri].map { HLSPlaylists.rates(HLSPlaylists.parseMedia($0), size: { sizes[$0] }) }
        }
        XCTAssertEqual(out, """
            #EXTM3U
            #EXT-X-INDEPENDENT-SEGMENTS
            #EXT-X-VERSION:7
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_A1",NAME="audio_1",DEFAULT=YES,URI="media_1.m3u8"
            #EXT-X-STREAM-INF:BANDWIDTH=3160000,AVERAGE-BANDWIDTH=2472001,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",AUDIO="group_A1"
            media_0.m3u8

            """)
        XCTAssertEqual(HLSPlaylists.attributes(#"#EXT-X-STREAM-INF:CODECS="a,b",X=1"#), ["CODECS": "a,b", "X": "1"])
    }
}
