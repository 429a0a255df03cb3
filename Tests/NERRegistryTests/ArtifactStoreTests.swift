import Foundation
import GRDB
import NERArtifact
import NERCore
import NERRegistry
import Testing
import TestSupport

/// The registry deletes only what it owns: files in `$NER_HOME/artifacts` that still hold the
/// registered bytes (docs/artifacts.md).
@Suite struct ArtifactStoreTests {
    @Test func anArtifactOutsideTheStoreIsCopiedInAndRmLeavesTheOriginal() throws {
        let f = try Fixture("reg-adopt")
        defer { f.remove() }
        let outside = TempDir("reg-outside")
        defer { outside.remove() }
        var record = try realPacked(name: "conll", in: outside, artifactsDir: outside.file("elsewhere"))
        let original = try #require(record["artifact"]?.stringValue)
        let sha = try #require(record["sha256"]?.stringValue)
        record["model_id"] = .string(try Artifact.verify(path: original).modelId)

        let m = try f.registry.register(record: record).model
        #expect(m.artifact == f.artifacts + "/" + m.modelId + ".tar.gz", "the registry names a copy in the store")
        #expect(try Artifact.sha256(ofFile: m.artifact) == sha)
        #expect(try Artifact.verify(path: m.artifact).modelId == m.modelId)
        #expect(listing(f.artifacts) == [m.modelId + ".tar.gz"], "no temp file is left")

        try f.registry.remove(modelId: m.modelId)
        #expect(!fileExists(m.artifact))
        #expect(try Artifact.sha256(ofFile: original) == sha, "rm never touches the file registered from outside")
    }

    @Test func anOutsideArtifactWhoseBytesDoNotMatchIsRefused() throws {
        let f = try Fixture("reg-adopt-bad")
        defer { f.remove() }
        let outside = TempDir("reg-outside")
        defer { outside.remove() }
        var record = try realPacked(name: "conll", in: outside, artifactsDir: outside.file("elsewhere"))
        record["model_id"] = .string(try Artifact.verify(path: try #require(record["artifact"]?.stringValue)).modelId)
        record["sha256"] = .string(String(repeating: "0", count: 64))
        let e = #expect(throws: ToolError.self) { try f.registry.register(record: record) }
        #expect(e?.status == .dataError)
        #expect(e?.message.contains("sha256") == true, "\(e?.message ?? "")")
        #expect(try f.registry.models().isEmpty)
        #expect(listing(f.artifacts) == [])
    }

    @Test func rmAndGcDeleteOnlyStoreFilesThatStillMatch() throws {
        let f = try Fixture("reg-rm-safe")
        defer { f.remove() }
        var warnings: [String] = []

        // Replaced since it was registered: kept.
        let replaced = try f.registerFake(name: "conll")
        try Data("someone else's file".utf8).write(to: URL(fileURLWithPath: replaced.artifact))
        try f.registry.remove(modelId: replaced.modelId, warn: { warnings.append($0) })
        #expect(try f.registry.model(replaced.modelId)?.status == "removed")
        #expect(fileExists(replaced.artifact))
        #expect(warnings.last?.contains("its sha256 is no longer the one registered") == true, "\(warnings)")

        // A row naming a file outside the store (registered before artifacts were copied in): kept.
        let outside = TempDir("reg-outside")
        defer { outside.remove() }
        let legacy = try f.registerFake(name: "wiki")
        let foreign = outside.write("foreign.tar.zst", "not ours")
        let queue = try DatabaseQueue(path: f.dir.file("registry.sqlite"))
        try queue.write { db in
            try db.execute(sql: "UPDATE models SET artifact = ?, sha256 = ? WHERE model_id = ?",
                           arguments: [foreign, try Artifact.sha256(ofFile: foreign), legacy.modelId])
        }
        // A link in the store pointing outside: kept, and its target too.
        let linked = try f.registerFake(name: "news")
        try FileManager.default.removeItem(atPath: linked.artifact)
        try FileManager.default.createSymbolicLink(atPath: linked.artifact, withDestinationPath: foreign)

        let collected = try f.registry.gc(keep: 0, warn: { warnings.append($0) })
        #expect(Set(collected.map(\.modelId)) == [legacy.modelId, linked.modelId])
        #expect(String(decoding: try Data(contentsOf: URL(fileURLWithPath: foreign)), as: UTF8.self) == "not ours")
        #expect(warnings.contains { $0.hasPrefix(foreign) && $0.contains("outside the artifact store") }, "\(warnings)")
        #expect(warnings.contains { $0.hasPrefix(linked.artifact) && $0.contains("outside the artifact store") }, "\(warnings)")
    }

    @Test func aMatchingStoreFileIsDeleted() throws {
        let f = try Fixture("reg-rm-match")
        defer { f.remove() }
        let m = try f.registerFake(name: "conll")
        try f.registry.remove(modelId: m.modelId)
        #expect(!fileExists(m.artifact))
    }
}

/// Names in a folder, hidden ones included.
func listing(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
}
