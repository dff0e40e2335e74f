// libFuzzer target for everything the daemon reads from an untrusted
// manifest before a job runs: the validating parser (Manifest.parse), the
// scanner's cheap ordering read (Scanner.orderingFields) and the id rules.
// The property: any bytes give a Manifest or a SpoolError with a manifest
// code and a message, never a crash, a hang or an out-of-range value.
// Run with scripts/fuzz.sh; findings go to Tests/SpoolKitTests/FuzzRegressionTests.swift.
@testable import SpoolKit
import CLibFuzzer
#if canImport(Glibc)
import Glibc
#endif

private let validationCodes: Set<ErrorCode> = [.manifestInvalid, .manifestTooLarge, .idInvalid, .idMismatch, .unsupported]

// Also exported under libFuzzer's name: its runtime's own main() refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzManifest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))

    do {
        let m = try Manifest.parse(bytes, fileID: "fuzz-job")
        if let id = m.id { precondition(id == "fuzz-job", "an id different from the file name was accepted") }
        precondition((-10...10).contains(m.priority), "priority out of range accepted")
        if let a = m.maxAttempts { precondition((1...10).contains(a)) }
        if let t = m.timeoutSeconds { precondition(t >= 1 && t <= 86400) }
        precondition(m.labels.count <= 64)
        if let tenant = m.tenant { precondition(tenant.utf8.count <= 128) }
    } catch {
        precondition(validationCodes.contains(error.code), "unexpected code \(error.code) for manifest bytes")
        precondition(!error.message.isEmpty)
    }

    let (priority, tenant) = Scanner.orderingFields(bytes)
    precondition((-10...10).contains(priority))
    precondition(tenant.utf8.count <= 128)

    let name = String(decoding: bytes.prefix(200), as: UTF8.self)
    if JobID.isValid(name) {
        precondition(name.utf8.allSatisfy { $0 < 0x80 } && !name.hasPrefix(".") && !name.contains("/"))
    }
    if let id = JobID.fromManifestName(name) { precondition(name == id + ".json") }
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzManifest(data, size) })
