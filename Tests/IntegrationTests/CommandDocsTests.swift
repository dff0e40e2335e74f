import Foundation
import XCTest

/// The man pages and shell completions generated from the command
/// definitions (scripts/gen-docs.sh, installed by scripts/install.sh).
final class CommandDocsTests: XCTestCase {
    func sh(_ script: String) -> (Int32, String) {
        let r = runProcess("/bin/bash", ["-c", script], env: ["MEDIASPOOL": mediaspoolBinary])
        return (r.code, r.out)
    }

    /// Completions for `words` (the last is being typed), from the bash script.
    func complete(_ words: [String]) -> [String] {
        let line = words.joined(separator: " ")
        let arr = words.map { "'\($0)'" }.joined(separator: " ")
        let (code, out) = sh("""
            source <("$MEDIASPOOL" --generate-completion-script bash) || exit 9
            COMP_WORDS=(\(arr)); COMP_CWORD=\(words.count - 1); COMP_LINE='\(line)'; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
            _mediaspool mediaspool '\(words.last!)' '\(words[words.count - 2])'
            printf '%s\\n' "${COMPREPLY[@]}"
            """)
        XCTAssertEqual(code, 0)
        return out.split(separator: "\n").map(String.init)
    }

    func testBashCompletesCommandsOptionsAndStates() {
        XCTAssertEqual(complete(["mediaspool", "st"]), ["status"])
        XCTAssertEqual(Set(complete(["mediaspool", "s"])), ["status", "submit", "show", "sweep"])
        XCTAssertTrue(complete(["mediaspool", "list", "--st"]).contains("--state"))
        XCTAssertEqual(Set(complete(["mediaspool", "list", "--state", ""])), ["inbox", "retry", "processing", "done", "failed", "held"])
        XCTAssertTrue(complete(["mediaspool", "status", "--"]).contains("--max-failure-rate"))
        for shell in ["zsh", "fish"] {
            let (code, out) = sh("\"$MEDIASPOOL\" --generate-completion-script \(shell)")
            XCTAssertEqual(code, 0); XCTAssertTrue(out.contains("status"), shell)
        }
    }

    func testManPagesRenderEverySubcommand() throws {
        let gen = URL(fileURLWithPath: mediaspoolBinary).deletingLastPathComponent().appendingPathComponent("generate-manual").path
        guard FileManager.default.isExecutableFile(atPath: gen) else {
            throw XCTSkip("build the generator first: swift build --product generate-manual (scripts/test.sh does)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mediaspool-man-\(UUID().uuidString.prefix(8))").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        var (code, _) = sh("mkdir -p '\(dir)' && '\(gen)' \"$MEDIASPOOL\" --multi-page --output-directory '\(dir)'")
        XCTAssertEqual(code, 0)
        for sub in ["run", "submit", "validate", "status", "watch", "gallery", "list", "show", "replay", "sweep", "pause", "resume", "drain", "wait", "cancel", "hold", "release", "events"] {
            let page = "\(dir)/mediaspool.\(sub).1"
            var out: String
            (code, out) = sh("MANWIDTH=100 man -l '\(page)' 2>/dev/null || groff -man -Tutf8 '\(page)'")
            XCTAssertEqual(code, 0, sub)
            XCTAssertTrue(out.contains("mediaspool \(sub)"), "\(sub) page names its command")
            XCTAssertTrue(out.contains("--spool"), "\(sub) page lists the common options")
        }
        let status = try String(contentsOfFile: "\(dir)/mediaspool.status.1", encoding: .utf8)
        XCTAssertTrue(status.contains("4 the oldest waiting job"), "the status page documents the health exit codes")
        let run = try String(contentsOfFile: "\(dir)/mediaspool.run.1", encoding: .utf8)
        XCTAssertTrue(run.contains("host\\-id") || run.contains("host-id"), "the run page lists --host-id")
        XCTAssertTrue(run.contains("unfenced"), "the run page lists --allow-unfenced-shared")
    }
}
