import Foundation
import NERCore
import NERSearch

/// A hyper-parameter search written as one JSON object (docs/sweeps.md):
///
///     {"name": "news", "base": {"train": "train.txt", "dev": "dev.txt", "epochs": 20},
///      "grid": {"learning_rate": [0.001, 0.002], "dropout": [0.3, 0.5]}}
///
///     {"name": "news", "base": {...}, "trials": 8, "seed": 7,
///      "random": {"learning_rate": {"log_uniform": [0.0001, 0.01]}, "dropout": {"uniform": [0.1, 0.5]},
///                 "hidden_size": {"choice": [100, 200, 400]}}}
///
///     {"name": "news", "base": {...}, "method": "bayes", "trials": 20, "parallel": 2, "seed": 7,
///      "metric": "dev.f1", "space": {"learning_rate": {"log_uniform": [0.0001, 0.01]}, ...}}
///
/// `grid` takes every combination (the last field varies fastest); `random` draws `trials` points,
/// reproducibly for a `seed`. Each trial is a job request: `base`, then the trial's values. A
/// Bayesian sweep's trials are made as earlier ones finish (`BayesSweep`), so it has none here.
public struct Sweep {
    public var name: String
    /// The spec every trial shares (ner-queue's flags under the file's `base`).
    public var base: [String: JSON]
    /// One request per trial (for JobRequest.make) and the values that trial varies.
    public var trials: [(request: [String: JSON], params: [String: JSON])]
    /// Set for a Bayesian sweep.
    public var bayes: BayesPlan?

    /// What a Bayesian sweep searches and how.
    public struct BayesPlan {
        public var space: SearchSpace
        /// The space as written, kept with the sweep in the registry.
        public var spaceSpec: JSON
        public var trials: Int
        /// Trials running at once: the first this many come at once, then one per finished trial.
        public var parallel: Int
        public var seed: Int
        public var metric: String
        public var maximize: Bool
    }

    /// The most trials a sweep may have unless the caller allows more (ner-queue --max-trials).
    public static let defaultMaxTrials = 10_000

    static let fields = ["name", "priority", "base", "method", "grid", "random", "space", "trials", "seed",
                         "parallel", "metric", "goal"]

    /// Reads a sweep spec; `defaults` (ner-queue's flags) sit under `base`. Errors name `file`.
    /// A sweep of more than `maxTrials` trials is refused (exit 64) before any is built: a grid's
    /// size is the product of its lists, so a few lines of JSON can ask for billions.
    public init(_ spec: JSON, defaults: [String: JSON], file: String, maxTrials: Int = Sweep.defaultMaxTrials) throws {
        func bad(_ m: String) -> ToolError { ToolError.data("\(file): \(m)") }
        func tooMany(_ count: String) -> ToolError {
            ToolError.usage("\(file): the sweep has \(count) trials, more than --max-trials \(maxTrials); "
                + "narrow it or raise --max-trials")
        }
        guard let o = spec.objectValue else { throw bad("a sweep is a JSON object") }
        for k in o.keys.sorted() where !Sweep.fields.contains(k) {
            throw bad("unknown field '\(k)' (\(Sweep.fields.joined(separator: ", ")))")
        }
        var base = defaults
        guard o["base"] == nil || o["base"]?.objectValue != nil else { throw bad("base must be an object") }
        for (k, v) in o["base"]?.objectValue ?? [:] { base[k] = v }
        if let n = o["name"] { base["name"] = n }
        if let p = o["priority"] { base["priority"] = p }
        name = base["name"]?.stringValue ?? "ner"
        self.base = base
        trials = []

        let method: String
        switch (o["method"], o["grid"], o["random"], o["space"]) {
        case (nil, _?, nil, nil): method = "grid"
        case (nil, nil, _?, nil): method = "random"
        case (.string(let m)?, _, _, _): method = m
        case (_?, _, _, _): throw bad("method must be \"grid\", \"random\" or \"bayes\"")
        default: throw bad("give exactly one of grid or random (or \"method\": \"bayes\" with a \"space\")")
        }
        func trialCount() throws -> Int {
            guard let n = o["trials"]?.intValue, n >= 1 else { throw bad("a \(method) sweep needs trials: 1 or more") }
            if n > maxTrials { throw tooMany(String(n)) }
            return n
        }
        func onlyFields(_ allowed: [String]) throws {
            for k in ["grid", "random", "space", "trials", "seed", "parallel", "metric", "goal"]
            where o[k] != nil && !allowed.contains(k) {
                throw bad("a \(method) sweep takes no '\(k)'")
            }
        }

        var points: [[String: JSON]]
        switch method {
        case "grid":
            try onlyFields(["grid"])
            guard let grid = o["grid"]?.objectValue else { throw bad("grid must be an object: field → list of values") }
            var count = 1, overflow = false
            for key in grid.keys.sorted() {
                guard let values = grid[key]?.arrayValue, !values.isEmpty else {
                    throw bad("grid.\(key) must be a non-empty list of values")
                }
                if !overflow { (count, overflow) = count.multipliedReportingOverflow(by: values.count) }
            }
            if overflow { throw tooMany("more than \(Int.max)") }
            if count > maxTrials { throw tooMany(String(count)) }
            points = [[:]]
            for key in grid.keys.sorted() {
                let values = grid[key]!.arrayValue!
                points = points.flatMap { p in values.map { v in p.merging([key: v]) { _, b in b } } }
            }
        case "random":
            try onlyFields(["random", "space", "trials", "seed"])
            let key = o["random"] != nil ? "random" : "space"
            guard let s = o[key]?.objectValue, o["random"] == nil || o["space"] == nil else {
                throw bad("a random sweep needs one search space: random or space, an object of field → distribution")
            }
            let space = try SearchSpace(s, field: key, bad: bad)
            let count = try trialCount()
            var rng = SeededRandom(seed: UInt64(truncatingIfNeeded: try Sweep.seed(o, bad: bad)))
            points = (0..<count).map { _ in space.draw(&rng) }
        case "bayes":
            try onlyFields(["space", "trials", "seed", "parallel", "metric", "goal"])
            guard let s = o["space"]?.objectValue else { throw bad("a bayes sweep needs space: an object of field → distribution") }
            let count = try trialCount()
            guard o["parallel"] == nil || (o["parallel"]?.intValue ?? 0) >= 1 else { throw bad("parallel must be 1 or more") }
            guard o["metric"] == nil || !(o["metric"]?.stringValue ?? "").isEmpty else {
                throw bad("metric must be a dotted path into the metrics, such as dev.f1")
            }
            let goal = o["goal"] == nil ? "maximize" : o["goal"]?.stringValue
            guard goal == "maximize" || goal == "minimize" else { throw bad("goal must be \"maximize\" or \"minimize\"") }
            bayes = BayesPlan(space: try SearchSpace(s, field: "space", bad: bad), spaceSpec: .object(s), trials: count,
                              parallel: o["parallel"]?.intValue ?? 1, seed: try Sweep.seed(o, bad: bad),
                              metric: o["metric"]?.stringValue ?? "dev.f1", maximize: goal == "maximize")
            points = []
        default:
            throw bad("unknown method '\(clipped(method))' (grid, random, bayes)")
        }
        trials = points.map { p in (base.merging(p) { _, b in b }, p) }
    }

    static func seed(_ o: [String: JSON], bad: (String) -> ToolError) throws -> Int {
        guard let s = o["seed"] else { return 1 }
        guard let v = s.intValue else { throw bad("seed must be an integer") }
        return v
    }
}
