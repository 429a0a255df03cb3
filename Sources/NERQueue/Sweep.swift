import Foundation
import NERCore

/// A hyper-parameter search written as one JSON object:
///
///     {"name": "news", "base": {"train": "train.txt", "dev": "dev.txt", "epochs": 20},
///      "grid": {"learning_rate": [0.001, 0.002], "dropout": [0.3, 0.5]}}
///
///     {"name": "news", "base": {...}, "trials": 8, "seed": 7,
///      "random": {"learning_rate": {"log_uniform": [0.0001, 0.01]}, "dropout": {"uniform": [0.1, 0.5]},
///                 "hidden_size": {"choice": [100, 200, 400]}}}
///
/// `grid` takes every combination (the last field varies fastest); `random` draws `trials` points,
/// reproducibly for a `seed`. Each trial is a job request: `base`, then the trial's values.
public struct Sweep {
    public var name: String
    /// One request per trial (for JobRequest.make) and the values that trial varies.
    public var trials: [(request: [String: JSON], params: [String: JSON])]

    /// The most trials a sweep may have unless the caller allows more (ner-queue --max-trials).
    public static let defaultMaxTrials = 10_000

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
        for k in o.keys where !["name", "priority", "base", "grid", "random", "trials", "seed"].contains(k) {
            throw bad("unknown field '\(k)' (name, priority, base, grid, random, trials, seed)")
        }
        var base = defaults
        guard o["base"] == nil || o["base"]?.objectValue != nil else { throw bad("base must be an object") }
        for (k, v) in o["base"]?.objectValue ?? [:] { base[k] = v }
        if let n = o["name"] { base["name"] = n }
        if let p = o["priority"] { base["priority"] = p }
        name = base["name"]?.stringValue ?? "ner"

        var points: [[String: JSON]]
        switch (o["grid"]?.objectValue, o["random"]?.objectValue) {
        case let (grid?, nil):
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
        case let (nil, random?):
            guard let trials = o["trials"]?.intValue, trials >= 1 else {
                throw bad("a random sweep needs trials: 1 or more")
            }
            if trials > maxTrials { throw tooMany(String(trials)) }
            var rng = SeededRandom(seed: UInt64(truncatingIfNeeded: o["seed"]?.intValue ?? 1))
            points = []
            for _ in 0..<trials {
                var p: [String: JSON] = [:]
                for key in random.keys.sorted() { p[key] = try Sweep.draw(random[key]!, key: key, rng: &rng, bad: bad) }
                points.append(p)
            }
        default:
            throw bad("give exactly one of grid or random")
        }
        trials = points.map { p in (base.merging(p) { _, b in b }, p) }
    }

    static func draw(_ d: JSON, key: String, rng: inout SeededRandom, bad: (String) -> ToolError) throws -> JSON {
        guard let o = d.objectValue, o.count == 1, let (kind, arg) = o.first else {
            throw bad("random.\(key) must be {\"uniform\": [lo, hi]}, {\"log_uniform\": [lo, hi]}, {\"int\": [lo, hi]} or {\"choice\": [...]}")
        }
        let list = arg.arrayValue ?? []
        if kind == "choice" {
            guard !list.isEmpty else { throw bad("random.\(key).choice must be a non-empty list") }
            return list[Int(rng.next() % UInt64(list.count))]
        }
        guard list.count == 2, let lo = list[0].doubleValue, let hi = list[1].doubleValue, lo <= hi else {
            throw bad("random.\(key).\(kind) must be [lo, hi] with lo <= hi")
        }
        let u = rng.unitDouble()
        switch kind {
        case "uniform": return .double(lo + (hi - lo) * u)
        case "log_uniform":
            guard lo > 0 else { throw bad("random.\(key).log_uniform needs lo > 0") }
            return .double(exp(log(lo) + (log(hi) - log(lo)) * u))
        case "int": return .int(Int64(lo) + Int64(rng.next() % UInt64(Int64(hi) - Int64(lo) + 1)))
        default: throw bad("random.\(key): unknown distribution '\(kind)' (uniform, log_uniform, int, choice)")
        }
    }
}
