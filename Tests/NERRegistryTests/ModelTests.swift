import Foundation
import NERCore
import NERRegistry
import Testing
import TestSupport

@Suite struct ModelTests {
    @Test func versionsCountUpPerName() throws {
        let f = try Fixture("reg-versions")
        defer { f.remove() }
        let a1 = try f.registerFake(name: "conll")
        let b1 = try f.registerFake(name: "wiki")
        let a2 = try f.registerFake(name: "conll")
        let a3 = try f.registerFake(name: "conll")
        #expect([a1.version, a2.version, a3.version] == [1, 2, 3] as [Int])
        #expect(b1.version == 1)
        #expect(try f.registry.models(name: "conll").map(\.modelId) == [a1.modelId, a2.modelId, a3.modelId])
        #expect(try f.registry.models().map(\.name) == ["conll", "conll", "conll", "wiki"])
        #expect(a1.status == "registered")
    }

    @Test func storesTheRecordMetricsAndJob() throws {
        let f = try Fixture("reg-record")
        defer { f.remove() }
        let record = f.fakePacked(name: "conll", metrics: ["dev": ["f1": 0.91]], jobId: "conll-job-1")
        let (m, created) = try f.registry.register(record: record)
        #expect(created)
        #expect(m.metrics == ["dev": ["f1": 0.91]])
        #expect(m.jobId == "conll-job-1")
        #expect(m.sha256 == record["sha256"]?.stringValue)
        #expect(m.bytes == (try FileManager.default.attributesOfItem(atPath: m.artifact)[.size] as? Int))
        #expect(m.record["extra"] == ["kept": true])
        #expect(m.record["status"] == "registered")
        #expect(m.record["version"] == 1)
        let json = m.json
        #expect(json["model_id"]?.stringValue == m.modelId)
        #expect(json["type"] == "model")
        #expect(json["version"] == 1)
        #expect(json["metrics"]?["dev"]?["f1"] == 0.91)
    }

    @Test func registeringTheSameArtifactTwiceIsIdempotent() throws {
        let f = try Fixture("reg-idem")
        defer { f.remove() }
        let record = f.fakePacked(name: "conll")
        let first = try f.registry.register(record: record)
        let second = try f.registry.register(record: record)
        #expect(first.created && !second.created)
        #expect(second.model == first.model)

        // Same sha256 under another model id: the same artifact, so the same model.
        var renamed = record
        renamed["model_id"] = "conll-other"
        let third = try f.registry.register(record: renamed)
        #expect(!third.created && third.model.modelId == first.model.modelId)

        // Same model id with different bytes is a conflict, not a silent overwrite.
        var conflicting = record
        conflicting["sha256"] = .string(String(repeating: "a", count: 64))
        let error = #expect(throws: ToolError.self) { try f.registry.register(record: conflicting) }
        #expect(error?.status == .dataError)
        #expect(try f.registry.models().count == 1)
    }

    /// Two attempts of one job (a retry, or an orphaned run that finished after its dispatcher
    /// died) each pack an artifact: the job still gives one model, whichever registers first.
    @Test func oneJobGivesOneModelWhateverItsAttemptsRegister() throws {
        let f = try Fixture("reg-job-once")
        defer { f.remove() }
        let first = try f.registry.register(record: f.fakePacked(name: "k9", jobId: "k9-job"))
        let second = try f.registry.register(record: f.fakePacked(name: "k9", jobId: "k9-job"))
        #expect(first.created && !second.created)
        #expect(second.model.modelId == first.model.modelId)
        #expect(try f.registry.models(name: "k9").count == 1)
        let other = try f.registry.register(record: f.fakePacked(name: "k9", jobId: "k9-other-job"))
        #expect(other.created && other.model.version == 2)
    }

    @Test func badRecordsAreRefusedWithTheirExitStatus() throws {
        let f = try Fixture("reg-bad")
        defer { f.remove() }
        var noSha = f.fakePacked(name: "conll")
        noSha["sha256"] = nil
        #expect(throws: ToolError.self) { try f.registry.register(record: noSha) }
        var shortSha = f.fakePacked(name: "conll")
        shortSha["sha256"] = "abc"
        #expect((try? f.registry.register(record: shortSha)) == nil)
        var missing = f.fakePacked(name: "conll")
        missing["artifact"] = .string(f.dir.file("artifacts/nope.tar.zst"))
        let e = #expect(throws: ToolError.self) { try f.registry.register(record: missing) }
        #expect(e?.status == .noInput)
        var badName = f.fakePacked(name: "conll")
        badName["name"] = "../etc"
        let n = #expect(throws: ToolError.self) { try f.registry.register(record: badName) }
        #expect(n?.status == .dataError)
        #expect(try f.registry.models().isEmpty)
    }

    @Test func resolveFollowsEveryForm() throws {
        let f = try Fixture("reg-resolve")
        defer { f.remove() }
        let v1 = try f.registerFake(name: "conll")
        let v2 = try f.registerFake(name: "conll")
        let v3 = try f.registerFake(name: "conll")
        let r = f.registry
        #expect(try r.resolve("conll")?.modelId == v3.modelId, "no production alias: latest")
        #expect(try r.resolve("conll@latest")?.modelId == v3.modelId)
        #expect(try r.resolve("conll:1")?.modelId == v1.modelId)
        #expect(try r.resolve("conll:2")?.modelId == v2.modelId)
        #expect(try r.resolve(v2.modelId)?.modelId == v2.modelId)
        #expect(try r.resolve("conll@production") == nil)
        #expect(try r.resolve("conll:9") == nil)
        #expect(try r.resolve("nope") == nil)
        try r.promote(modelId: v2.modelId)
        #expect(try r.resolve("conll")?.modelId == v2.modelId, "production wins over latest")
        #expect(try r.resolve("conll@production")?.modelId == v2.modelId)
        #expect(try r.resolve("conll@latest")?.modelId == v3.modelId)
    }

    @Test func gcKeepsTheNewestAndEveryAliasedModel() throws {
        let f = try Fixture("reg-gc")
        defer { f.remove() }
        let conll = try (1...5).map { _ in try f.registerFake(name: "conll") }
        let wiki = try (1...2).map { _ in try f.registerFake(name: "wiki") }
        try f.registry.promote(modelId: conll[0].modelId)
        try f.registry.setAlias(name: "conll", alias: "best", modelId: conll[1].modelId)

        let planned = try f.registry.gc(keep: 2, dryRun: true)
        #expect(planned.map(\.modelId) == [conll[2].modelId])
        #expect(fileExists(conll[2].artifact))

        let collected = try f.registry.gc(keep: 2)
        #expect(collected.map(\.modelId) == [conll[2].modelId])
        #expect(collected.allSatisfy { $0.status == "collected" })
        #expect(!fileExists(conll[2].artifact))
        for kept in [conll[0], conll[1], conll[3], conll[4]] + wiki {
            #expect(fileExists(kept.artifact), "\(kept.name):\(kept.version) must stay")
            #expect(try f.registry.model(kept.modelId)?.status == "registered")
        }
        #expect(try f.registry.model(conll[2].modelId)?.status == "collected")
        #expect(try f.registry.resolve("conll@latest")?.modelId == conll[4].modelId)

        // keep 0 still never touches an aliased model.
        let rest = try f.registry.gc(keep: 0)
        #expect(Set(rest.map(\.modelId)) == Set([conll[3], conll[4], wiki[0], wiki[1]].map(\.modelId)))
        #expect(fileExists(conll[0].artifact) && fileExists(conll[1].artifact))
        #expect(try f.registry.gc(keep: 0).isEmpty)
        #expect(try f.registry.resolve("conll@latest")?.modelId == conll[1].modelId, "only aliased models are left")
        #expect(try f.registry.resolve("conll")?.modelId == conll[0].modelId)
    }

    @Test func aCollectedModelComesBackWhenRegisteredAgain() throws {
        let f = try Fixture("reg-revive")
        defer { f.remove() }
        let record = f.fakePacked(name: "conll")
        let old = try f.registry.register(record: record).model
        _ = try f.registerFake(name: "conll")
        #expect(try f.registry.gc(keep: 1).map(\.modelId) == [old.modelId])
        f.dir.write("artifacts/\(old.modelId).tar.zst", "restored")
        let again = try f.registry.register(record: record)
        #expect(!again.created)
        #expect(again.model.status == "registered" && again.model.version == 1)
    }

    @Test func removeRefusesAnAliasedModelAndDeletesTheArtifact() throws {
        let f = try Fixture("reg-rm")
        defer { f.remove() }
        let a = try f.registerFake(name: "conll")
        let b = try f.registerFake(name: "conll")
        try f.registry.promote(modelId: a.modelId)
        let refused = #expect(throws: ToolError.self) { try f.registry.remove(modelId: a.modelId) }
        #expect(refused?.status == .failure)
        #expect(refused?.message.contains("production") == true)
        #expect(fileExists(a.artifact))

        try f.registry.remove(modelId: b.modelId)
        #expect(try f.registry.model(b.modelId)?.status == "removed")
        #expect(!fileExists(b.artifact))
        #expect(try f.registry.resolve("conll@latest")?.modelId == a.modelId)
        let unknown = #expect(throws: ToolError.self) { try f.registry.remove(modelId: "conll-nope") }
        #expect(unknown?.status == .noInput)
    }
}
