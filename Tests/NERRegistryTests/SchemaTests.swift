import Foundation
import GRDB
import NERCore
import NERRegistry
import Testing
import TestSupport

@Suite struct SchemaTests {
    @Test func migratesAnEmptyFileAndRecordsTheSchemaVersion() throws {
        let f = try Fixture("reg-schema")
        defer { f.remove() }
        #expect(try f.registry.appliedMigrations() == Registry.schemaVersions)
        #expect(Registry.schemaVersions.first == "v1")
        let tables = try DatabaseQueue(path: f.dir.file("registry.sqlite")).read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        for t in ["alias_audit", "aliases", "grdb_migrations", "jobs", "models", "transitions"] {
            #expect(tables.contains(t), "missing table \(t)")
        }
    }

    @Test func reopeningKeepsDataAndAppliesNothing() throws {
        let f = try Fixture("reg-reopen")
        defer { f.remove() }
        let m = try f.registerFake(name: "conll")
        let again = try Registry(path: f.dir.file("registry.sqlite"))
        #expect(try again.appliedMigrations() == Registry.schemaVersions)
        #expect(try again.model(m.modelId) == m)
        let rows = try DatabaseQueue(path: f.dir.file("registry.sqlite")).read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM grdb_migrations")
        }
        #expect(rows == Registry.schemaVersions.count)
    }

    @Test func walOnLocalDiskAndDeleteJournalOnRequest() throws {
        let wal = try Fixture("reg-wal", journalMode: .wal)
        defer { wal.remove() }
        let del = try Fixture("reg-delete", journalMode: .delete)
        defer { del.remove() }
        func mode(_ f: Fixture) throws -> String? {
            try DatabaseQueue(path: f.dir.file("registry.sqlite")).read { db in
                try String.fetchOne(db, sql: "PRAGMA journal_mode")
            }
        }
        #expect(try mode(wal) == "wal")
        #expect(try mode(del) == "delete")
        _ = try del.registerFake(name: "x")
        #expect(!fileExists(del.dir.file("registry.sqlite-wal")))
    }

    @Test func aFileFromANewerToolchainIsRefused() throws {
        let f = try Fixture("reg-newer")
        defer { f.remove() }
        try DatabaseQueue(path: f.dir.file("registry.sqlite")).write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v999')")
        }
        let error = #expect(throws: ToolError.self) { try Registry(path: f.dir.file("registry.sqlite")) }
        #expect(error?.status == .failure)
        #expect(error?.message.contains("newer toolchain") == true)
    }

    @Test func aLockHeldPastTheTimeoutIsUnavailable() throws {
        let f = try Fixture("reg-lock", busyTimeout: 0.2)
        defer { f.remove() }
        let m = try f.registerFake(name: "conll")
        let holder = try DatabaseQueue(path: f.dir.file("registry.sqlite"))
        try holder.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            defer { try? db.execute(sql: "ROLLBACK") }
            let start = Date()
            let error = #expect(throws: ToolError.self) { try f.registry.promote(modelId: m.modelId) }
            #expect(error?.status == .unavailable)
            #expect(error?.message.contains("locked") == true)
            #expect(Date().timeIntervalSince(start) >= 0.15)
        }
        try f.registry.promote(modelId: m.modelId)
        #expect(try f.registry.resolve("conll@production")?.modelId == m.modelId)
    }

    @Test func aFileThatIsNotARegistryIsBadData() throws {
        let dir = TempDir("reg-notdb")
        defer { dir.remove() }
        let path = dir.write("registry.sqlite", String(repeating: "this is not sqlite\n", count: 100))
        let error = #expect(throws: ToolError.self) { try Registry(path: path) }
        #expect(error?.status == .dataError)
    }
}
