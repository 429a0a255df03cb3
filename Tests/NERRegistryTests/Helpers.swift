import Foundation
import NERArtifact
import NERCore
import NERRegistry
import TestSupport

/// A fresh home with an open registry; `remove()` deletes both.
struct Fixture {
    let dir: TempDir
    let registry: Registry

    init(_ label: String, journalMode: Registry.JournalMode? = nil, busyTimeout: Double = 30) throws {
        dir = TempDir(label)
        registry = try Registry(path: dir.file("registry.sqlite"), busyTimeout: busyTimeout, journalMode: journalMode)
    }

    var home: String { dir.path }
    var artifacts: String { dir.file("artifacts") }

    /// A stand-in artifact in the store for library tests: the library checks that the file exists
    /// and (to delete it) that its sha256 is the record's, not that it is a tarball (ner-register
    /// verifies the tarball before it calls `register`).
    func fakePacked(name: String, metrics: JSON? = nil, jobId: String? = nil) -> JSON {
        let id = Job.makeId(name: name)
        let path = dir.write("artifacts/\(id).tar.zst", "not a real tarball \(id)")
        let sha = try! Artifact.sha256(ofFile: path)
        var r: JSON = ["schema": 1, "name": .string(name), "model_id": .string(id), "status": "packed",
                       "artifact": .string(path), "sha256": .string(sha), "extra": ["kept": true]]
        if let metrics { r["metrics"] = metrics }
        if let jobId { r["job_id"] = .string(jobId) }
        return r
    }

    func registerFake(name: String, metrics: JSON? = nil) throws -> ModelRow {
        try registry.register(record: fakePacked(name: name, metrics: metrics)).model
    }

    func remove() { dir.remove() }
}

/// Packs a tiny real model folder into `artifactsDir` and returns the packed record ner-pack
/// would print for it.
func realPacked(name: String, in scratch: TempDir, artifactsDir: String, index: Int = 0) throws -> JSON {
    let id = Job.makeId(name: name)
    let modelDir = scratch.file("models/\(id)")
    scratch.write("models/\(id)/weights.bin", "weights of \(id) #\(index)")
    scratch.write("models/\(id)/config.json", "{\"name\": \"\(name)\"}")
    let packed = try Artifact.pack(modelDir: modelDir, modelId: id, name: name, into: artifactsDir, compression: .gzip)
    try? FileManager.default.removeItem(atPath: modelDir)
    return ["schema": 1, "job_id": .string("job-\(id)"), "name": .string(name), "status": "packed",
            "model_dir": .string(modelDir), "artifact": .string(packed.path), "sha256": .string(packed.sha256),
            "bytes": .int(packed.bytes), "metrics": ["dev": ["f1": 0.5]], "untouched": ["a": [1, 2]]]
}

func ndjson(_ records: [JSON]) -> String {
    records.map { $0.compactString + "\n" }.joined()
}

func parseLines(_ s: String) throws -> [JSON] {
    try s.split(separator: "\n").map { try JSON.parse(String($0)) }
}
