import Foundation
import GRDB
import NERCore
import NERRegistry
import Testing
import TestSupport

/// Sweeps and retraining in the registry: the sweep id and parent of a model, the best trial.
@Suite struct SweepRegistryTests {
    func trial(_ f: Fixture, sweep: String, metrics: JSON?, parent: String? = nil) throws -> ModelRow {
        var r = f.fakePacked(name: "news", metrics: metrics)
        r["sweep_id"] = .string(sweep)
        if let parent { r["parent_id"] = .string(parent) }
        return try f.registry.register(record: r).model
    }

    @Test func bestTrialByADottedMetric() throws {
        let f = try Fixture("reg-sweep"); defer { f.remove() }
        let low = try trial(f, sweep: "s1", metrics: ["dev": ["f1": 0.61], "test": ["f1": 0.9]])
        // The trainer writes dev.overall.f1; --by dev.f1 finds it too.
        let high = try trial(f, sweep: "s1", metrics: ["dev": ["overall": ["f1": 0.83]], "test": ["f1": 0.5]])
        let none = try trial(f, sweep: "s1", metrics: nil)
        _ = try trial(f, sweep: "other", metrics: ["dev": ["f1": 0.99]])
        #expect(high.sweepId == "s1")
        #expect(high.json["sweep_id"]?.stringValue == "s1")

        let best = try f.registry.best(sweep: "s1", by: "dev.f1")
        #expect(best.model.modelId == high.modelId)
        #expect(best.score == 0.83)
        #expect(try f.registry.best(sweep: "s1", by: "test.f1").model.modelId == low.modelId)
        let ranked = try f.registry.sweepModels("s1", by: "dev.f1")
        #expect(ranked.map(\.model.modelId) == [high.modelId, low.modelId, none.modelId])
        #expect(ranked.last?.score == nil)

        #expect(throws: ToolError.self) { try f.registry.best(sweep: "s1", by: "dev.recall") }
        do { _ = try f.registry.best(sweep: "s1", by: "dev.recall") } catch let e as ToolError { #expect(e.status == .dataError) }
        do { _ = try f.registry.best(sweep: "nope", by: "dev.f1") } catch let e as ToolError { #expect(e.status == .noInput) }
    }

    @Test func retrainedModelKeepsItsParent() throws {
        let f = try Fixture("reg-parent"); defer { f.remove() }
        let parent = try trial(f, sweep: "s", metrics: ["dev": ["f1": 0.7]])
        let child = try trial(f, sweep: "s2", metrics: ["dev": ["f1": 0.8]], parent: parent.modelId)
        #expect(try f.registry.model(child.modelId)?.parentId == parent.modelId)
        #expect(child.json["parent_id"]?.stringValue == parent.modelId)
    }

    /// A registry written before sweeps existed (schema v1) is upgraded in place; its models stay.
    @Test func v1RegistryIsUpgraded() throws {
        let f = try Fixture("reg-v1"); defer { f.remove() }
        let old = try f.registerFake(name: "news")
        let path = f.dir.file("registry.sqlite")
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: """
                DROP INDEX models_sweep;
                ALTER TABLE models DROP COLUMN sweep_id;
                DELETE FROM grdb_migrations WHERE identifier = 'v2';
                """)
        }
        let reopened = try Registry(path: path)
        #expect(try reopened.appliedMigrations() == Registry.schemaVersions)
        #expect(try reopened.model(old.modelId)?.sweepId == nil)
        var r = f.fakePacked(name: "news", metrics: ["dev": ["f1": 0.5]])
        r["sweep_id"] = "s"
        _ = try reopened.register(record: r)
        #expect(try reopened.best(sweep: "s", by: "dev.f1").score == 0.5)
    }
}
