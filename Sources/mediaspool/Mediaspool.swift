import ArgumentParser
import Foundation
import SpoolKit
import SystemPackage

@main
struct Mediaspool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mediaspool",
        abstract: "A spool directory turned into a media-processing queue.",
        discussion: "Producers drop JSON job manifests into inbox/; the daemon (`mediaspool run`) claims and runs them in-process with FFmpeg's libraries. See README.md and docs/.",
        subcommands: [Run.self, Submit.self, Validate.self, Status.self, Watch.self, Gallery.self, List.self, Show.self, Replay.self, Sweep.self,
                      Pause.self, Resume.self, Drain.self, Wait.self, Cancel.self, Hold.self, Release.self, Events.self]
    )
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(help: "The spool root (default /var/spool/mediaspool, or `spool` in the config file).")
    var spool: String?

    @Option(help: "The config file (JSON; default /etc/mediaspool/config.json when it exists).")
    var config: String?

    /// Defaults, then the file, then MEDIASPOOL_* variables, then flags.
    func load() throws -> Config {
        var c = Config()
        if let f = config {
            try c.apply(file: FilePath(f))
        } else if Sys.exists(Config.defaultPath) {
            try c.apply(file: Config.defaultPath)
        }
        try c.apply(environment: ProcessInfo.processInfo.environment)
        if let s = spool { c.spool = FilePath(s) }
        c.spool = absolute(c.spool)
        if let m = c.mediaRoot { c.mediaRoot = absolute(m) }
        // What records, events and progress files written by this process
        // name, pinned at start: the host name is read once (a machine
        // renamed mid-run keeps its heartbeat and records under one id, and
        // no beat or record calls gethostname(2) again).
        c.hostId = c.effectiveHostId
        HostID.current = c.effectiveHostId
        return c
    }
}

func absolute(_ p: FilePath) -> FilePath {
    p.isAbsolute ? p.lexicallyNormalized() : FilePath(FileManager.default.currentDirectoryPath).pushing(p).lexicallyNormalized()
}

/// Prints to stderr, control characters escaped (Escaping.terminalSafe).
func warn(_ s: String) { FileHandle.standardError.write((Escaping.terminalSafe(s) + "\n").data(using: .utf8)!) }

/// Prints text to stdout with every control character escaped but the line
/// breaks this program put there: names, manifests and records come from the
/// spool, where anyone in the producers' group may have put ESC sequences.
/// (Fields that must stay on one line, like ids, are escaped whole by the caller.)
func say(_ s: String) {
    print(s.split(separator: "\n", omittingEmptySubsequences: false).map { Escaping.terminalSafe(String($0)) }.joined(separator: "\n"))
}

/// One field of a one-line listing: no line break or control character survives.
func field(_ s: String) -> String { Escaping.terminalSafe(s) }

func printJSON<T: Encodable>(_ v: T) {
    FileHandle.standardOutput.write(Data(Escaping.jsonTerminalSafe(RecordCoding.encode(v))))
}

extension SpoolError: LocalizedError {
    public var errorDescription: String? { description }
}
