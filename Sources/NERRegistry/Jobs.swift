import Foundation
import GRDB
import NERCore
#if canImport(Glibc)
import Glibc
#endif

extension Registry {
    /// Every status a job can be in (SPEC §5): `queued → running → trained → packed → registered`,
    /// or `failed` with its cause, or `cancelled`; `done` ends a job whose `--command` finished
    /// without registering a model. Checked here rather than in the schema, so a new status needs
    /// no table rebuild.
    public static let jobStatuses = ["queued", "running", "trained", "packed", "registered", "done", "failed", "cancelled"]

    /// Records that a job reached `status`: updates its row in `jobs` and appends a transition with
    /// this host and pid. `backendId`, `modelId` and `record` keep their earlier values when nil;
    /// `error` is replaced (a retry that runs again clears the previous attempt's error). Recording the
    /// same status and attempt twice in a row (a restarted dispatcher replaying a log) appends nothing.
    public func recordTransition(jobId: String, name: String, status: String, attempt: Int,
                                 error: String? = nil, backendId: String? = nil, modelId: String? = nil,
                                 record: JSON? = nil) throws {
        guard Registry.jobStatuses.contains(status) else {
            throw ToolError.usage("job status must be one of \(Registry.jobStatuses.joined(separator: ", ")), got \(status)")
        }
        guard !jobId.isEmpty else { throw ToolError.usage("job id is empty") }
        let now = Timestamp.now()
        let recordText = record.map(\.compactString)
        try write { db in
            try db.execute(sql: """
                INSERT INTO jobs (job_id, name, status, attempt, error, backend_id, model_id, updated_at, record)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (job_id) DO UPDATE SET
                    name = excluded.name, status = excluded.status, attempt = excluded.attempt,
                    error = excluded.error, updated_at = excluded.updated_at,
                    backend_id = COALESCE(excluded.backend_id, jobs.backend_id),
                    model_id = COALESCE(excluded.model_id, jobs.model_id),
                    record = COALESCE(excluded.record, jobs.record)
                """, arguments: [jobId, name, status, attempt, error, backendId, modelId, now, recordText])
            let last = try Row.fetchOne(db, sql: """
                SELECT status, attempt FROM transitions WHERE job_id = ? ORDER BY id DESC LIMIT 1
                """, arguments: [jobId])
            if let last, last["status"] as String == status, last["attempt"] as Int == attempt { return }
            try db.execute(sql: """
                INSERT INTO transitions (job_id, status, attempt, at, host, pid, detail) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [jobId, status, attempt, now, Registry.hostName, Int(getpid()), error])
        }
    }

    public func job(_ jobId: String) throws -> JobRow? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE job_id = ?", arguments: [jobId]).map(JobRow.init)
        }
    }

    /// Jobs, least recently updated first; `status` filters.
    public func jobs(status: String? = nil) throws -> [JobRow] {
        try read { db in
            if let status {
                return try Row.fetchAll(db, sql: "SELECT * FROM jobs WHERE status = ? ORDER BY updated_at, job_id",
                                        arguments: [status]).map(JobRow.init)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM jobs ORDER BY updated_at, job_id").map(JobRow.init)
        }
    }

    /// A job's transitions in the order they were recorded.
    public func transitions(jobId: String) throws -> [TransitionRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM transitions WHERE job_id = ? ORDER BY id", arguments: [jobId])
                .map(TransitionRow.init)
        }
    }
}
