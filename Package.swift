// swift-tools-version:6.2
import PackageDescription
import Foundation

let package = Package(
    name: "mediaspool",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mediaspool", targets: ["mediaspool"]),
        .executable(name: "mediaspool-notify", targets: ["mediaspool-notify"]),
        .library(name: "SpoolKit", targets: ["SpoolKit"]),
        .library(name: "MediaKit", targets: ["MediaKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        // The notifier's HTTP client (mediaspool-notify only; the daemon has no
        // network); swift-crypto for its HMAC and the records' manifest digest.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
    ],
    targets: [
        // C modules: libav* and libsystemd, each with a thin shim header for
        // what Swift cannot import (function-like macros, variadic functions).
        .systemLibrary(name: "CFFmpeg", pkgConfig: "libavformat libavcodec libavfilter libswscale libswresample libavutil",
                       providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavfilter-dev", "libswscale-dev", "libswresample-dev"])]),
        .systemLibrary(name: "CLinux"),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),

        // The job payloads of a manifest and what a job reports, as plain data
        // (no FFmpeg, no spool): the job types, codecs, containers and their
        // rules, the probe and output records, the media limits, and the JSON
        // reader they are read with. Read by SpoolKit, used by MediaKit and Jobs.
        .target(name: "JobSchema"),
        // FFmpeg's log callback (a va_list, which Swift cannot write) with its
        // state, in C.
        .target(name: "CFFmpegLog", linkerSettings: [.linkedLibrary("avutil")]),
        // FFmpeg wrapped in owning Swift classes and typed errors.
        .target(name: "MediaKit", dependencies: ["CFFmpeg", "CFFmpegLog", "JobSchema"]),
        // The spool protocol: manifest, claim, records, queue, recovery, the engine.
        .target(name: "SpoolKit", dependencies: [
            "CLinux", "JobSchema",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "HeapModule", package: "swift-collections"),
            .product(name: "Metrics", package: "swift-metrics"),
            // SHA-256 of manifests, kept in records (Digest.swift).
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // sd_notify and the journald log handler.
        .target(name: "SystemdSupport", dependencies: [
            "CSystemd",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Operators' tools over a spool, for the CLI and the daemon: the
        // metrics HTTP responder, the gallery's pages, the watch screen.
        .target(name: "SpoolOps", dependencies: ["SpoolKit", "JobSchema", .product(name: "SystemPackage", package: "swift-system")]),
        // Job types: bridge SpoolKit's runner protocol to MediaKit.
        .target(name: "Jobs", dependencies: ["SpoolKit", "MediaKit", "JobSchema"]),
        // The thin executable that wires everything.
        .executableTarget(name: "mediaspool", dependencies: [
            "SpoolKit", "MediaKit", "Jobs", "SystemdSupport", "SpoolOps", "JobSchema",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),

        // Completion hooks: follows the events log, delivers to webhooks and a command.
        .target(name: "Notify", dependencies: [
            "SpoolKit",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "mediaspool-notify", dependencies: [
            "Notify", "SpoolKit", "SystemdSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "JobSchemaTests", dependencies: ["JobSchema"]),
        .testTarget(name: "SpoolKitTests", dependencies: ["SpoolKit", "JobSchema"]),
        .testTarget(name: "MediaKitTests", dependencies: ["MediaKit"]),
        .testTarget(name: "JobsTests", dependencies: ["Jobs", "MediaKit", "SpoolKit", "JobSchema"]),
        .testTarget(name: "SystemdSupportTests", dependencies: ["SystemdSupport"]),
        .testTarget(name: "SpoolOpsTests", dependencies: ["SpoolOps", "SpoolKit", "JobSchema"]),
        .testTarget(name: "IntegrationTests", dependencies: ["SpoolKit", "JobSchema"]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets, only when MEDIASPOOL_FUZZ is set: they link only with
// -sanitize=fuzzer. scripts/fuzz.sh builds and runs them; docs/testing.md.
if ProcessInfo.processInfo.environment["MEDIASPOOL_FUZZ"] != nil {
    package.targets.append(.target(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"))
    for name in ["FuzzManifest", "FuzzPaths", "FuzzSpool"] {
        package.targets.append(.executableTarget(name: name, dependencies: ["SpoolKit", "JobSchema", "CLibFuzzer", .product(name: "Logging", package: "swift-log")], path: "Fuzz/\(name)"))
    }
}
