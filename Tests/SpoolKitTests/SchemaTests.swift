import JobSchema
import Foundation
import SpoolKit
import XCTest

/// Every example manifest in the docs and spool-example/ validates with both
/// `Manifest.parse` and the JSON Schema (checked by python3-jsonschema);
/// the deliberately bad ones are refused by both.
final class SchemaTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// (name, bytes) of every example: files, and ```json blocks of the docs
    /// that hold a manifest (they have "version").
    func examples() throws -> (valid: [(String, Data)], invalid: [(String, Data)]) {
        let fm = FileManager.default
        var valid: [(String, Data)] = [], invalid: [(String, Data)] = []
        for dir in ["docs/examples", "spool-example/jobs"] {
            for f in try fm.contentsOfDirectory(atPath: Self.repo.appendingPathComponent(dir).path).sorted() where f.hasSuffix(".json") {
                valid.append(("\(dir)/\(f)", try Data(contentsOf: Self.repo.appendingPathComponent("\(dir)/\(f)"))))
            }
        }
        for f in try fm.contentsOfDirectory(atPath: Self.repo.appendingPathComponent("spool-example/jobs/bad").path).sorted() {
            invalid.append(("spool-example/jobs/bad/\(f)", try Data(contentsOf: Self.repo.appendingPathComponent("spool-example/jobs/bad/\(f)"))))
        }
        var docs = ["README.md"]
        docs += try fm.contentsOfDirectory(atPath: Self.repo.appendingPathComponent("docs").path).filter { $0.hasSuffix(".md") }.map { "docs/\($0)" }
        for d in docs {
            let text = try String(contentsOf: Self.repo.appendingPathComponent(d), encoding: .utf8)
            for (i, block) in text.components(separatedBy: "```json\n").dropFirst().enumerated() {
                let body = block.components(separatedBy: "```").first ?? ""
                if body.contains("\"version\"") { valid.append(("\(d) block \(i + 1)", Data(body.utf8))) }
            }
        }
        return (valid, invalid)
    }

    func testExamplesValidateWithBothValidators() throws {
        let (valid, invalid) = try examples()
        XCTAssertGreaterThanOrEqual(valid.count, 10, "examples of every type are expected")
        XCTAssertFalse(invalid.isEmpty)
        var types = Set<JobType>()
        for (name, data) in valid {
            do { types.insert(try Manifest.parse(Array(data), fileID: nil).type) } catch { XCTFail("\(name): \(error)") }
        }
        XCTAssertEqual(types, Set(JobType.allCases), "every job type has an example")
        for (name, data) in invalid {
            XCTAssertThrowsError(try Manifest.parse(Array(data), fileID: nil), "\(name) should be refused")
        }
        let verdicts = try schemaVerdicts(valid + invalid)
        for (name, _) in valid { XCTAssertEqual(verdicts[name], "valid", "schema: \(name)") }
        for (name, _) in invalid { XCTAssertNotEqual(verdicts[name], "valid", "schema should refuse \(name)") }
        // The schema refuses what the parser refuses for the common mistakes too.
        let extra: [(String, String)] = [
            ("unknown-field", #"{"version":1,"type":"probe","input":"a","priorty":1}"#),
            ("bad-crf", #"{"version":1,"type":"transcode","input":"a","output":{"path":"o.mp4","video":{"crf":99}}}"#),
            ("both-at-count", #"{"version":1,"type":"thumbnail","input":"a","at":[1],"count":2,"output":{"path":"t.jpg"}}"#),
            ("storyboard-and-count", #"{"version":1,"type":"thumbnail","input":"a","count":2,"storyboard":{"vtt":"s.vtt"},"output":{"path":"s-%d.jpg"}}"#),
            ("storyboard-without-vtt", #"{"version":1,"type":"thumbnail","input":"a","storyboard":{"interval":2},"output":{"path":"s-%d.jpg"}}"#),
            ("preview-and-at", #"{"version":1,"type":"thumbnail","input":"a","at":[1],"preview":{},"output":{"path":"p.gif"}}"#),
            ("preview-moments-and-start", #"{"version":1,"type":"thumbnail","input":"a","preview":{"moments":3,"start":1},"output":{"path":"p.gif"}}"#),
        ]
        let v2 = try schemaVerdicts(extra.map { ($0.0, Data($0.1.utf8)) })
        for (name, body) in extra {
            XCTAssertNotEqual(v2[name], "valid", "schema should refuse \(name)")
            XCTAssertThrowsError(try Manifest.parse(Array(body.utf8), fileID: nil))
        }
    }

    /// Runs python3's jsonschema over the documents; name -> "valid" or the error.
    func schemaVerdicts(_ docs: [(String, Data)]) throws -> [String: String] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var names: [String: String] = [:]
        for (i, (name, data)) in docs.enumerated() {
            try data.write(to: dir.appendingPathComponent("\(i).json"))
            names["\(i)"] = name
        }
        let script = """
        import json, sys, os, jsonschema
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        v = jsonschema.Draft202012Validator(schema)
        out = {}
        for f in sorted(os.listdir(sys.argv[2])):
            try:
                doc = json.load(open(os.path.join(sys.argv[2], f)))
                errs = list(v.iter_errors(doc))
                out[f[:-5]] = "valid" if not errs else errs[0].message
            except Exception as e:
                out[f[:-5]] = "not JSON: %s" % e
        print(json.dumps(out))
        """
        for python in ["/usr/bin/python3", "python3"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [python, "-c", script, Self.repo.appendingPathComponent("schema/manifest-v1.schema.json").path, dir.path]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = FileHandle.nullDevice
            try p.run()
            let out = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0, let m = try JSONSerialization.jsonObject(with: out) as? [String: String] else { continue }
            return Dictionary(uniqueKeysWithValues: m.map { (names[$0.key]!, $0.value) })
        }
        XCTFail("no python3 with jsonschema: run ./scripts/setup.sh (installs python3-jsonschema)")
        return [:]
    }
}
