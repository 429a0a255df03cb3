import Foundation
import GRDB
import NERCore
#if canImport(Glibc)
import Glibc
#endif

/// The registry's schema, as versioned GRDB migrations. A migration, once released, never changes;
/// a new column or table is a new migration appended to the list.
extension Registry {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE models (
                    model_id      TEXT PRIMARY KEY NOT NULL,
                    name          TEXT NOT NULL,
                    version       INTEGER NOT NULL,
                    status        TEXT NOT NULL CHECK (status IN ('registered', 'collected', 'removed')),
                    job_id        TEXT,
                    parent_id     TEXT,
                    artifact      TEXT NOT NULL,
                    sha256        TEXT UNIQUE,
                    bytes         INTEGER,
                    metrics       TEXT,
                    record        TEXT NOT NULL,
                    created_at    TEXT NOT NULL,
                    registered_at TEXT NOT NULL,
                    UNIQUE (name, version)
                );
                CREATE INDEX models_job ON models (job_id);

                CREATE TABLE jobs (
                    job_id     TEXT PRIMARY KEY NOT NULL,
                    name       TEXT NOT NULL,
                    status     TEXT NOT NULL,
                    attempt    INTEGER NOT NULL,
                    error      TEXT,
                    backend_id TEXT,
                    model_id   TEXT,
                    updated_at TEXT NOT NULL,
                    record     TEXT
                );
                CREATE INDEX jobs_status ON jobs (status, updated_at);

                CREATE TABLE transitions (
                    id      INTEGER PRIMARY KEY AUTOINCREMENT,
                    job_id  TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
                    status  TEXT NOT NULL,
                    attempt INTEGER NOT NULL,
                    at      TEXT NOT NULL,
                    host    TEXT NOT NULL,
                    pid     INTEGER NOT NULL,
                    detail  TEXT
                );
                CREATE INDEX transitions_job ON transitions (job_id, id);

                CREATE TABLE aliases (
                    name       TEXT NOT NULL,
                    alias      TEXT NOT NULL,
                    model_id   TEXT NOT NULL REFERENCES models (model_id),
                    updated_at TEXT NOT NULL,
                    PRIMARY KEY (name, alias)
                );

                CREATE TABLE alias_audit (
                    id         INTEGER PRIMARY KEY AUTOINCREMENT,
                    name       TEXT NOT NULL,
                    alias      TEXT NOT NULL,
                    from_model TEXT,
                    to_model   TEXT NOT NULL,
                    at         TEXT NOT NULL,
                    who        TEXT NOT NULL,
                    action     TEXT NOT NULL CHECK (action IN ('set', 'promote', 'rollback'))
                );
                CREATE INDEX alias_audit_name ON alias_audit (name, alias, id);
                """)
        }
        // Sweeps (ner-queue --sweep): the trials of one search share a sweep id, so the best is
        // one indexed query away.
        m.registerMigration("v2") { db in
            try db.execute(sql: """
                ALTER TABLE models ADD COLUMN sweep_id TEXT;
                CREATE INDEX models_sweep ON models (sweep_id);
                """)
        }
        // The web console (docs/console.md): its users, their sessions, and the audit of what each
        // did there. Sign-in tokens and session ids are kept only as SHA-256 digests.
        m.registerMigration("v3") { db in
            try db.execute(sql: """
                CREATE TABLE users (
                    name       TEXT PRIMARY KEY NOT NULL,
                    role       TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
                    token_hash TEXT UNIQUE,
                    created_at TEXT NOT NULL,
                    created_by TEXT NOT NULL
                );
                CREATE TABLE sessions (
                    id_hash    TEXT PRIMARY KEY NOT NULL,
                    user       TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
                    csrf       TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    expires_at TEXT NOT NULL
                );
                CREATE INDEX sessions_user ON sessions (user);
                CREATE TABLE audit (
                    id     INTEGER PRIMARY KEY AUTOINCREMENT,
                    at     TEXT NOT NULL,
                    who    TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT,
                    detail TEXT
                );
                """)
        }
        // Bayesian sweeps (docs/sweeps.md): the sweep as queued, and each trial's job and values, so a
        // sweep survives a restart of everything and a step repeated does not queue twice.
        m.registerMigration("v4") { db in
            try db.execute(sql: """
                CREATE TABLE sweeps (
                    sweep_id    TEXT PRIMARY KEY,
                    name        TEXT NOT NULL,
                    method      TEXT NOT NULL,
                    spec        TEXT NOT NULL,
                    created_at  TEXT NOT NULL,
                    finished_at TEXT
                );
                CREATE TABLE sweep_trials (
                    sweep_id   TEXT NOT NULL REFERENCES sweeps (sweep_id),
                    trial      INTEGER NOT NULL,
                    job_id     TEXT NOT NULL UNIQUE,
                    params     TEXT NOT NULL,
                    record     TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    PRIMARY KEY (sweep_id, trial)
                );
                """)
        }
        return m
    }

    /// The migrations this build knows, oldest first; the last is the schema it writes.
    public static var schemaVersions: [String] { migrator.migrations }

    /// The migrations applied to this registry file, oldest first.
    public func appliedMigrations() throws -> [String] {
        try read { db in try Registry.migrator.appliedMigrations(db) }
    }

    /// Brings the file up to the current schema. Reopening a migrated file only reads. Several
    /// processes may open a fresh file at once: each migration runs in its own immediate
    /// transaction, so a process that loses the race (its transaction fails, or the schema changes
    /// under its read) re-reads what the winner applied and goes on from there.
    func migrate() throws {
        let migrator = Registry.migrator
        var attempt = 0
        while true {
            do {
                let state = try read { db in
                    (done: try migrator.hasCompletedMigrations(db), newer: try migrator.hasBeenSuperseded(db))
                }
                if state.newer {
                    throw MigrationRefused.newerSchema
                }
                if state.done { return }
                try Registry.guarded(path, busyTimeout) { try migrator.migrate(queue) }
                return
            } catch MigrationRefused.newerSchema {
                throw Registry.newerSchemaError(path)
            } catch let e as ToolError where e.status == .failure && attempt < 5 {
                attempt += 1
                usleep(UInt32.random(in: 1_000...20_000))
            }
        }
    }
}

private enum MigrationRefused: Error {
    case newerSchema
}
