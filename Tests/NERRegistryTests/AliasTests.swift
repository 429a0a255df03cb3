import Foundation
import NERCore
import NERRegistry
import Testing
import TestSupport

@Suite struct AliasTests {
    @Test func promoteAndRollbackWalkBackThroughTheAudit() throws {
        let f = try Fixture("reg-alias")
        defer { f.remove() }
        let r = f.registry
        let m = try (1...3).map { _ in try f.registerFake(name: "conll") }
        try r.promote(modelId: m[0].modelId)
        try r.promote(modelId: m[1].modelId)
        try r.promote(modelId: m[2].modelId)
        #expect(try r.resolve("conll@production")?.modelId == m[2].modelId)

        #expect(try r.rollback(name: "conll").modelId == m[1].modelId)
        #expect(try r.resolve("conll")?.modelId == m[1].modelId)
        #expect(try r.rollback(name: "conll").modelId == m[0].modelId)
        let none = #expect(throws: ToolError.self) { try r.rollback(name: "conll") }
        #expect(none?.status == .failure)
        #expect(try r.resolve("conll")?.modelId == m[0].modelId)

        try r.promote(modelId: m[2].modelId)
        #expect(try r.rollback(name: "conll").modelId == m[0].modelId)

        let history = try r.aliasHistory(name: "conll")
        #expect(history.map(\.action) == ["promote", "promote", "promote", "rollback", "rollback", "promote", "rollback"])
        #expect(history.map(\.toModel) == [m[0], m[1], m[2], m[1], m[0], m[2], m[0]].map(\.modelId))
        #expect(history.map(\.fromModel) == [nil, m[0], m[1], m[2], m[1], m[0], m[2]].map { $0?.modelId })
        #expect(history.allSatisfy { $0.who.contains("@") && Timestamp.parse($0.at) != nil })
        #expect(history[1].json["from_model"]?.stringValue == m[0].modelId)
    }

    @Test func theAuditAnswersWhatWasInProductionAtATime() throws {
        let f = try Fixture("reg-at")
        defer { f.remove() }
        let r = f.registry
        let a = try f.registerFake(name: "conll")
        let b = try f.registerFake(name: "conll")
        let beforeAll = Date()
        Thread.sleep(forTimeInterval: 0.02)
        try r.promote(modelId: a.modelId)
        Thread.sleep(forTimeInterval: 0.02)
        let whileA = Date()
        Thread.sleep(forTimeInterval: 0.02)
        try r.promote(modelId: b.modelId)
        Thread.sleep(forTimeInterval: 0.02)
        let whileB = Date()
        #expect(try r.aliasTarget(name: "conll", alias: "production", at: beforeAll) == nil)
        #expect(try r.aliasTarget(name: "conll", alias: "production", at: whileA)?.modelId == a.modelId)
        #expect(try r.aliasTarget(name: "conll", alias: "production", at: whileB)?.modelId == b.modelId)
        #expect(try r.aliasTarget(name: "conll", alias: "staging", at: whileB) == nil)
    }

    @Test func setAliasChecksTheModelAndSkipsNoOps() throws {
        let f = try Fixture("reg-set")
        defer { f.remove() }
        let r = f.registry
        let a = try f.registerFake(name: "conll")
        let w = try f.registerFake(name: "wiki")
        let move = try r.setAlias(name: "conll", alias: "best", modelId: a.modelId)
        #expect(move?.action == "set" && move?.fromModel == nil && move?.toModel == a.modelId)
        #expect(try r.setAlias(name: "conll", alias: "best", modelId: a.modelId) == nil)
        #expect(try r.aliasHistory(name: "conll").count == 1)
        #expect(try r.aliases(name: "conll") == ["best": a.modelId])

        let wrongName = #expect(throws: ToolError.self) { try r.setAlias(name: "conll", alias: "best", modelId: w.modelId) }
        #expect(wrongName?.status == .usage)
        let latest = #expect(throws: ToolError.self) { try r.setAlias(name: "conll", alias: "latest", modelId: a.modelId) }
        #expect(latest?.status == .usage)
        let unknown = #expect(throws: ToolError.self) { try r.promote(modelId: "conll-nope") }
        #expect(unknown?.status == .noInput)

        let old = try f.registerFake(name: "wiki")
        _ = try f.registerFake(name: "wiki")
        _ = try r.gc(keep: 1)
        let collected = #expect(throws: ToolError.self) { try r.promote(modelId: old.modelId) }
        #expect(collected?.status == .failure)
    }
}
