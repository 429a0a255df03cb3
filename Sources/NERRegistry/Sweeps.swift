import Foundation
import GRDB
import NERCore

extension Registry {
    /// The registered models of a sweep with their score on `metric`, best first; models without
    /// the metric come last with a nil score. `metric` is a dotted path into the metrics
    /// (`dev.f1`, `test.precision`); the trainer's `dev.overall.f1` answers `dev.f1` too.
    public func sweepModels(_ sweepId: String, by metric: String) throws -> [(model: ModelRow, score: Double?)] {
        let rows = try read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM models WHERE sweep_id = ? AND status = 'registered' ORDER BY registered_at, model_id
                """, arguments: [sweepId]).map(ModelRow.init)
        }
        let scored = rows.map { (model: $0, score: $0.metric(metric)) }
        return scored.sorted { a, b in
            switch (a.score, b.score) {
            case let (x?, y?): return x > y
            case (_?, nil): return true
            default: return false
            }
        }
    }

    /// The sweep's model with the highest `metric`. A sweep with no registered model is exit 66;
    /// one whose models all lack the metric is exit 65 (the metric is misnamed).
    public func best(sweep sweepId: String, by metric: String) throws -> (model: ModelRow, score: Double) {
        try Registry.best(of: sweepModels(sweepId, by: metric), sweep: sweepId, by: metric)
    }

    /// The winner of a ranking `sweepModels` returned, with the same errors as `best(sweep:by:)`.
    public static func best(of ranked: [(model: ModelRow, score: Double?)], sweep sweepId: String,
                            by metric: String) throws -> (model: ModelRow, score: Double) {
        guard let first = ranked.first else { throw ToolError.noInput("sweep \(sweepId) has no registered model") }
        guard let score = first.score else {
            throw ToolError.data("no model of sweep \(sweepId) has the metric \(metric) (try dev.f1)")
        }
        return (first.model, score)
    }
}

extension ModelRow {
    /// A metric by its dotted path (`dev.f1`, `test.per_type.PER.f1`); `dev.f1` also finds a
    /// trainer's `dev.overall.f1`.
    public func metric(_ path: String) -> Double? { Registry.metric(path, in: metrics) }
}

extension Registry {
    /// A metric by its dotted path in a `metrics` object, as `ModelRow.metric` reads it.
    public static func metric(_ path: String, in metrics: JSON?) -> Double? {
        let keys = path.split(separator: ".").map(String.init)
        func walk(_ keys: [String]) -> Double? {
            var v = metrics
            for k in keys { v = v?[k] }
            return v?.doubleValue
        }
        if let v = walk(keys) { return v }
        guard keys.count >= 2 else { return nil }
        return walk(Array(keys.dropLast()) + ["overall", keys.last!])
    }
}

/// A sweep whose trials are made as it goes (a Bayesian sweep, docs/sweeps.md).
public struct SweepRow: Sendable {
    public var sweepId: String
    public var name: String
    public var method: String
    /// The sweep as it was queued: base spec, space, trials, parallel, seed, metric, goal.
    public var spec: JSON
    public var createdAt: String
    public var finishedAt: String?

    public init(sweepId: String, name: String, method: String, spec: JSON, createdAt: String = Timestamp.now(),
                finishedAt: String? = nil) {
        self.sweepId = sweepId
        self.name = name
        self.method = method
        self.spec = spec
        self.createdAt = createdAt
        self.finishedAt = finishedAt
    }

    init(row: Row) {
        sweepId = row["sweep_id"]
        name = row["name"]
        method = row["method"]
        spec = parseStored(row["spec"]) ?? [:]
        createdAt = row["created_at"]
        finishedAt = row["finished_at"]
    }
}

/// One trial of such a sweep: its number, its job, and the values it tries.
public struct SweepTrialRow: Sendable {
    public var sweepId: String
    public var trial: Int
    public var jobId: String
    public var params: JSON
    /// The job record as queued, so a job lost before it reached the spool can be queued again.
    public var record: JSON

    public init(sweepId: String, trial: Int, jobId: String, params: JSON, record: JSON) {
        self.sweepId = sweepId
        self.trial = trial
        self.jobId = jobId
        self.params = params
        self.record = record
    }

    init(row: Row) {
        sweepId = row["sweep_id"]
        trial = row["trial"]
        jobId = row["job_id"]
        params = parseStored(row["params"]) ?? [:]
        record = parseStored(row["record"]) ?? [:]
    }
}

extension Registry {
    public func createSweep(_ sweep: SweepRow) throws {
        try write { db in
            try db.execute(sql: """
                INSERT INTO sweeps (sweep_id, name, method, spec, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [sweep.sweepId, sweep.name, sweep.method, sweep.spec.compactString, sweep.createdAt,
                                 sweep.finishedAt])
        }
    }

    public func sweep(_ sweepId: String) throws -> SweepRow? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM sweeps WHERE sweep_id = ?", arguments: [sweepId]).map(SweepRow.init)
        }
    }

    /// Sweeps not yet marked finished, oldest first.
    public func unfinishedSweeps() throws -> [SweepRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM sweeps WHERE finished_at IS NULL ORDER BY created_at, sweep_id")
                .map(SweepRow.init)
        }
    }

    public func finishSweep(_ sweepId: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE sweeps SET finished_at = ? WHERE sweep_id = ? AND finished_at IS NULL",
                           arguments: [Timestamp.now(), sweepId])
        }
    }

    public func sweepTrials(_ sweepId: String) throws -> [SweepTrialRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM sweep_trials WHERE sweep_id = ? ORDER BY trial", arguments: [sweepId])
                .map(SweepTrialRow.init)
        }
    }

    /// Adds trials in one transaction; a trial number already taken fails it whole.
    public func addSweepTrials(_ trials: [SweepTrialRow]) throws {
        guard !trials.isEmpty else { return }
        try write { db in
            for t in trials {
                try db.execute(sql: """
                    INSERT INTO sweep_trials (sweep_id, trial, job_id, params, record, created_at) VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [t.sweepId, t.trial, t.jobId, t.params.compactString, t.record.compactString,
                                     Timestamp.now()])
            }
        }
    }

    /// The jobs of `jobIds` that the registry knows, by id.
    public func jobs(ids jobIds: [String]) throws -> [String: JobRow] {
        try read { db in
            var out: [String: JobRow] = [:]
            for id in jobIds {
                if let r = try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE job_id = ?", arguments: [id]).map(JobRow.init) {
                    out[id] = r
                }
            }
            return out
        }
    }

    /// The registered models of `jobIds`, by job id.
    public func models(ofJobs jobIds: [String]) throws -> [String: ModelRow] {
        try read { db in
            var out: [String: ModelRow] = [:]
            for id in jobIds {
                let row = try Row.fetchOne(db, sql: """
                    SELECT * FROM models WHERE job_id = ? AND status = 'registered' ORDER BY registered_at DESC LIMIT 1
                    """, arguments: [id])
                if let row { out[id] = ModelRow(row: row) }
            }
            return out
        }
    }
}
