import Foundation
import NERCore
import NERRegistry

/// Successive halving, early stopping for a sweep (`ner-queue --halve`, README "Sweeps"): once a
/// rung has finished, the best `keep` fraction of its registered trials go on to the next rung
/// with `factor` times the epochs; the rest stop there.
public struct Halving {
    public var keep = 0.5
    public var by = "dev.f1"
    public var factor = 2

    public init(keep: Double = 0.5, by: String = "dev.f1", factor: Int = 2) throws {
        guard keep > 0 && keep < 1 else { throw ToolError.usage("--keep-fraction must be between 0 and 1, got \(keep)") }
        guard factor >= 1 else { throw ToolError.usage("--factor must be 1 or more, got \(factor)") }
        self.keep = keep
        self.by = by
        self.factor = factor
    }

    /// The next rung's job records for `sweepId`, and the number of that rung and of the trials
    /// ranked in the last one. Exit 75 while the sweep still has jobs queued or running.
    public func nextRung(of sweepId: String, registry: Registry, spool: Spool) throws -> (records: [JSON], rung: Int, ranked: Int) {
        func rung(_ record: JSON?) -> Int { record?["sweep_rung"]?.intValue ?? 0 }
        let trials = try registry.sweepModels(sweepId, by: by)
        guard let last = trials.map({ rung($0.model.record) }).max() else {
            throw ToolError.noInput("sweep \(sweepId) has no registered model")
        }
        let unfinished = spool.entries().filter { e in
            guard e.state == .queued || e.state == .running, let job = try? spool.read(e.path) else { return false }
            return job["sweep_id"]?.stringValue == sweepId
        }
        if !unfinished.isEmpty {
            throw ToolError(.tempFail, "sweep \(sweepId) still has \(unfinished.count) job(s) queued or running; halve it when they end")
        }
        let ranked = trials.filter { rung($0.model.record) == last && $0.score != nil }
        guard ranked.count > 1 else { throw ToolError.failure("sweep \(sweepId) is down to \(ranked.count) scored trial(s) at rung \(last)") }
        var records: [JSON] = []
        for (model, _) in ranked.prefix(max(1, Int(Double(ranked.count) * keep))) {
            var spec = try model.trainingSpec()
            spec["epochs"] = .int(Int64((spec["epochs"]?.intValue ?? JobSpec().epochs) * factor))
            var record = try JSON.from(try JobRequest.make(from: ["name": .string(model.name), "spec": .object(spec)], context: nil))
            record["sweep_id"] = .string(sweepId)
            record["sweep_params"] = model.record["sweep_params"] ?? [:]
            record["sweep_rung"] = .int(Int64(last + 1))
            record["parent_id"] = .string(model.modelId)
            records.append(record)
        }
        return (records, last + 1, ranked.count)
    }
}

/// Retraining (`ner-queue --from MODEL`): the job a registered model was trained from, with
/// `overrides` (new data, more epochs), linked to that model as its parent.
public enum Retraining {
    public static func job(from spec: String, overrides: [String: JSON], registry: Registry) throws -> (record: JSON, model: ModelRow) {
        guard let model = try registry.resolve(spec) else { throw ToolError.noInput("unknown model \(clipped(spec))") }
        var request: [String: JSON] = [:]
        var specOverrides = overrides
        for k in ["name", "priority"] { request[k] = specOverrides.removeValue(forKey: k) }
        request["spec"] = .object(JobRequest.merged(try model.trainingSpec(), with: specOverrides))
        if request["name"] == nil { request["name"] = .string(model.name) }
        var record = try JSON.from(try JobRequest.make(from: .object(request), context: nil))
        record["parent_id"] = .string(model.modelId)
        return (record, model)
    }
}

extension ModelRow {
    /// The spec of the job this model was trained from, as its record carries it.
    func trainingSpec() throws -> [String: JSON] {
        guard let spec = record["spec"]?.objectValue else {
            throw ToolError.data("model \(modelId) was registered without the job spec it was trained from")
        }
        return spec
    }
}
