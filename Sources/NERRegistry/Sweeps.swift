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
    public func metric(_ path: String) -> Double? {
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
