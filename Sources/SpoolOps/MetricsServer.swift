import Foundation
import SpoolKit
import Synchronization
import SystemPackage

/// A minimal HTTP/1.1 responder for GET /metrics on its own thread, one
/// connection at a time. Written by hand because the one need, a text body
/// for a scraper on loopback, does not justify pulling SwiftNIO into the daemon.
public final class MetricsServer: Sendable {
    private let listener: FileDescriptor
    private let endpoint: MetricsEndpoint
    private let body: @Sendable () -> [UInt8]
    private let isStopped = Atomic<Bool>(false)

    public init(endpoint: MetricsEndpoint, body: @escaping @Sendable () -> [UInt8]) throws {
        self.endpoint = endpoint
        self.body = body
        listener = try Sys.listen(endpoint)
        let t = Thread { [self] in serve() }
        t.name = "metrics"
        t.start()
    }

    private func serve() {
        while true {
            guard let conn = try? Sys.accept(listener) else {
                if isStopped.load(ordering: .acquiring) { return }
                continue
            }
            respond(conn)
            try? conn.close()
        }
    }

    private func respond(_ conn: FileDescriptor) {
        guard let req = try? Sys.read(conn, until: Array("\r\n\r\n".utf8), limit: 8192) else { return }
        let line = String(decoding: req.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let status: String, payload: [UInt8], type: String
        if line.count >= 2, line[0] == "GET", line[1] == "/metrics" || line[1].hasPrefix("/metrics?") {
            (status, payload, type) = ("200 OK", body(), "text/plain; version=0.0.4; charset=utf-8")
        } else {
            (status, payload, type) = ("404 Not Found", Array("GET /metrics\n".utf8), "text/plain")
        }
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n"
        try? Sys.writeAll(conn, Array(head.utf8) + payload)
    }

    public func stop() {
        isStopped.store(true, ordering: .releasing)
        Sys.shutdownSocket(listener)
        try? listener.close()
        if case .unix(let p) = endpoint { try? Sys.unlink(p) }
    }
}
