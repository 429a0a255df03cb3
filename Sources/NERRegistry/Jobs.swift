import Foundation
import GRDB
import NERCore
#if canImport(Glibc)
import Glibc
#endif

extension Registry {
    /// Every status a job can be in (docs/records.md): `queued → running → trained → packed → registered`,
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
        try recordTransitions([Transition(jobId: jobId, name: name, status: status, attempt: attempt, error: error,
                                          backendId: backendId, modelId: modelId, record: record)])
    }

    /// One status change of a job, for `recordTransitions`.
    public struct Transition: Sendable {
        public var jobId, name, status: String
        public var attempt: Int
        public var error, backendId, modelId: String?
        public var record: JSON?
        public var at: String

        public init(jobId: String, name: String, status: String, attempt: Int, error: String? = nil,
                    backendId: String? = nil, modelId: String? = nil, record: JSON? = nil, at: String = Timestamp.now()) {
            self.jobId = jobId
            self.name = name
            self.status = status
            self.attempt = attempt
            self.error = error
            self.backendId = backendId
            self.modelId = modelId
            self.record = record
            self.at = at
        }
    }

    /// Records many transitions in one transaction (one commit, one fsync): how a dispatcher or a
    /// batch of queued jobs keeps up with thousands of jobs. Same rules as `recordTransition`.
    public func recordTransitions(_ transitions: [Transition]) throws {
        guard !transitions.isEmpty else { return }
        for t in transitions {
            guard Registry.jobStatuses.contains(t.status) else {
                throw ToolError.usage("job status must be one of \(Registry.jobStatuses.joined(separator: ", ")), got \(t.status)")
            }
            guard !t.jobId.isEmpty else { throw ToolError.usage("job id is empty") }
        }
        try write { db in
            for t in transitions { try Registry.insert(t, into: db) }
        }
    }

    static func insert(_ t: Transition, into db: Database) throws {
        try db.execute(sql: """
            INSERT INTO jobs (job_id, name, status, attempt, error, backend_id, model_id, updated_at, record)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (job_id) DO UPDATE SET
                name = excluded.name, status = excluded.status, attempt = excluded.attempt,
                error = excluded.error, updated_at = excluded.updated_at,
                backend_id = COALESCE(excluded.backend_id, jobs.backend_id),
                model_id = COALESCE(excluded.model_id, jobs.model_id),
                record = COALESCE(excluded.record, jobs.record)
            """, arguments: [t.jobId, t.name, t.status, t.attempt, t.error, t.backendId, t.modelId, t.at,
                             t.record.map(\.compactString)])
        let last = try Row.fetchOne(db, sql: """
            SELECT status, attempt FROM transitions WHERE job_id = ? ORDER BY id DESC LIMIT 1
            """, arguments: [t.jobId])
        if let last, last["status"] as String == t.status, last["attempt"] as Int == t.attempt { return }
        try db.execute(sql: """
            INSERT INTO transitions (job_id, status, attempt, at, host, pid, detail) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [t.jobId, t.status, t.attempt, t.at, Registry.hostName, Int(getpid()), t.error])
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
