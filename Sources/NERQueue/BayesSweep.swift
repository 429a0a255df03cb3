import Foundation
import Logging
import NERCore
import NERRegistry
import NERSearch
#if canImport(Glibc)
import Glibc
#endif

/// Drives Bayesian sweeps (docs/sweeps.md). The sweep and each trial it made live in the registry;
/// a step reads how the trials ended and queues new ones until `parallel` are in flight or all
/// `trials` are made. Steps hold a lock on the spool and make each trial exactly once, so running a
/// step twice, or from two places at once (ner-dispatch, `ner-queue --suggest`, cron), queues nothing
/// twice.
public struct BayesSweep {
    public let queue: JobQueue

    public init(queue: JobQueue) { self.queue = queue }

    /// Where a sweep stands after a step.
    public struct Progress {
        public var sweepId: String
        public var queued: [JSON] = []
        public var made = 0, total = 0, pending = 0, succeeded = 0, failed = 0
        public var metric = "dev.f1"
        public var best: (trial: Int, value: Double)?
        public var finished: Bool { made == total && pending == 0 }

        public var summary: String {
            var s = "sweep \(sweepId): \(made) of \(total) trial(s) made, \(pending) in flight, \(succeeded) finished, \(failed) failed"
            if let best { s += "; best \(metric) \(best.value) (trial \(best.trial))" }
            return s
        }
    }

    /// Records a Bayesian sweep and queues its first trials. Relative paths in `base` are read
    /// against `folder` (the sweep file's) now and for every later trial.
    public func start(_ sweep: Sweep, file: String, folder: String?, log: Logger) throws -> Progress {
        guard let plan = sweep.bayes else { throw ToolError.usage("\(file): not a bayes sweep") }
        // A base or a range that cannot make a job fails now, not at some later suggestion: the
        // space's two extreme corners must both make valid jobs.
        for corner in [0.0, 0.999_999] {
            let point = plan.space.point(latent: Array(repeating: corner, count: plan.space.parameters.count))
            _ = try trialRecord(base: sweep.base, point: point, sweepId: "", trial: 0, context: "\(file): space", folder: folder)
        }
        var spec: [String: JSON] = [
            "base": .object(sweep.base), "space": plan.spaceSpec, "trials": .int(Int64(plan.trials)),
            "parallel": .int(Int64(plan.parallel)), "seed": .int(Int64(plan.seed)), "metric": .string(plan.metric),
            "goal": .string(plan.maximize ? "maximize" : "minimize"), "file": .string(file),
        ]
        if let folder { spec["folder"] = .string(folder) }
        let sweepId = Job.makeId(name: sweep.name)
        try withLock {
            try registry().createSweep(SweepRow(sweepId: sweepId, name: sweep.name, method: "bayes", spec: .object(spec)))
        }
        return try step(sweepId, log: log)
    }

    /// One step of the sweep: queues trials until `inFlight` (default: the sweep's `parallel`) are
    /// queued or running, or all are made; queues again any trial whose job never reached the spool.
    public func step(_ sweepId: String, inFlight: Int? = nil, log: Logger) throws -> Progress {
        try withLock { try stepLocked(sweepId, inFlight: inFlight, log: log) }
    }

    /// Steps every sweep not yet finished; what goes wrong with one is logged and the rest go on.
    public func stepAll(log: Logger) -> [Progress] {
        guard fileExists(queue.home.registry), let sweeps = try? registry().unfinishedSweeps() else { return [] }
        var out: [Progress] = []
        for s in sweeps where s.method == "bayes" {
            do { out.append(try step(s.sweepId, log: log)) } catch {
                log.warning("sweep \(s.sweepId): \((error as? ToolError)?.message ?? "\(error)")")
            }
        }
        return out
    }

    func stepLocked(_ sweepId: String, inFlight: Int?, log: Logger) throws -> Progress {
        let registry = try registry()
        guard let row = try registry.sweep(sweepId) else {
            throw ToolError.noInput("no sweep \(clipped(sweepId)) in \(queue.home.registry) (a bayes sweep's id, as ner-queue --sweep printed it)")
        }
        let stored = try Plan(row), plan = stored.bayes
        let trials = try registry.sweepTrials(sweepId)
        var progress = Progress(sweepId: sweepId, made: trials.count, total: plan.trials, metric: plan.metric)

        let outcomes = try self.outcomes(of: trials, metric: plan.metric, registry: registry)
        var history = BayesianOptimizer.History()
        var lost: [JSON] = []
        for (trial, outcome) in zip(trials, outcomes) {
            let params = trial.params.objectValue ?? [:]
            switch outcome {
            case .lost:
                lost.append(trial.record)
                fallthrough
            case .pending:
                history.pending.append(params)
                progress.pending += 1
            case .failed:
                history.failed.append(params)
                progress.failed += 1
            case .scored(let value):
                history.finished.append((params, plan.maximize ? value : -value))
                progress.succeeded += 1
                if progress.best.map({ plan.maximize ? value > $0.value : value < $0.value }) ?? true {
                    progress.best = (trial.trial, value)
                }
            }
        }
        if !lost.isEmpty {
            try queue.submit(lost, log: log)
            log.info("sweep \(sweepId): queued again \(lost.count) trial(s) that never reached the spool")
        }

        let slots = min(max((inFlight ?? plan.parallel) - progress.pending, 0), plan.trials - trials.count)
        if slots > 0 {
            let optimizer = BayesianOptimizer(space: plan.space)
            let points = optimizer.points(slots, from: trials.count, initial: optimizer.initialTrials(parallel: plan.parallel),
                                          seed: plan.seed, history: history)
            var rows: [SweepTrialRow] = []
            for (i, point) in points.enumerated() {
                let n = trials.count + i + 1
                let record = try trialRecord(base: stored.base, point: point, sweepId: sweepId, trial: n,
                                             context: "sweep \(sweepId): trial \(n)", folder: stored.folder)
                rows.append(SweepTrialRow(sweepId: sweepId, trial: n, jobId: record["job_id"]?.stringValue ?? "",
                                          params: .object(point), record: record))
            }
            // The registry first: a crash before the spool write leaves trials the next step finds
            // lost and queues; the other order could queue a trial no step knows of.
            try registry.addSweepTrials(rows)
            try queue.submit(rows.map(\.record), log: log)
            progress.queued = rows.map(\.record)
            progress.made += rows.count
            progress.pending += rows.count
        }
        if progress.finished { try registry.finishSweep(sweepId) }
        return progress
    }

    enum Outcome {
        case pending, lost, failed
        case scored(Double)
    }

    /// How each trial's job ended: from the registry, else from the spool (a registry that missed
    /// the job's end), else lost (it never reached the spool).
    func outcomes(of trials: [SweepTrialRow], metric: String, registry: Registry) throws -> [Outcome] {
        let jobs = try registry.jobs(ids: trials.map(\.jobId))
        let models = try registry.models(ofJobs: trials.compactMap { jobs[$0.jobId]?.status == "registered" ? $0.jobId : nil })
        var spool: [String: Spool.Entry]?
        return trials.map { trial in
            func score(_ record: JSON?) -> Outcome {
                let value = models[trial.jobId]?.metric(metric) ?? Registry.metric(metric, in: record?["metrics"])
                return value.map { $0.isFinite ? .scored($0) : .failed } ?? .failed
            }
            if let job = jobs[trial.jobId] {
                switch job.status {
                case "registered", "done": return score(job.record)
                case "failed", "cancelled": return .failed
                default: return .pending
                }
            }
            if spool == nil { spool = Dictionary(queue.spool.entries().map { ($0.jobId, $0) }) { a, _ in a } }
            guard let entry = spool?[trial.jobId] else { return .lost }
            switch entry.state {
            case .queued, .running: return .pending
            case .failed: return .failed
            case .done: return score(try? queue.spool.read(entry.path))
            }
        }
    }

    /// A trial's job record: `base` with the trial's values on top, marked with the sweep.
    func trialRecord(base: [String: JSON], point: [String: JSON], sweepId: String, trial: Int, context: String,
                     folder: String?) throws -> JSON {
        var record = try JSON.from(try JobRequest.make(from: .object(base.merging(point) { _, b in b }), context: context,
                                                       relativeTo: folder))
        record["sweep_id"] = .string(sweepId)
        record["sweep_params"] = .object(point)
        record["sweep_trial"] = .int(Int64(trial))
        return record
    }

    func registry() throws -> Registry { try Registry(path: queue.home.registry) }

    /// Steps of any sweep hold `spool/sweeps.lock`, so two never make the same trial.
    func withLock<T>(_ body: () throws -> T) throws -> T {
        try withFileLock(queue.spool.root + "/sweeps.lock", body)
    }

    /// A sweep as the registry keeps it: the spec `start` stored, read back as ner-queue read it,
    /// and the folder its relative paths are read against.
    struct Plan {
        var base: [String: JSON]
        var folder: String?
        var bayes: Sweep.BayesPlan

        init(_ row: SweepRow) throws {
            guard row.method == "bayes", var spec = row.spec.objectValue else {
                throw ToolError.data("sweep \(row.sweepId) in the registry: not a bayes sweep this version can read")
            }
            folder = spec.removeValue(forKey: "folder")?.stringValue
            let file = spec.removeValue(forKey: "file")?.stringValue ?? "sweep \(row.sweepId)"
            spec["method"] = "bayes"
            let sweep = try Sweep(.object(spec), defaults: [:], file: file, maxTrials: .max)
            base = sweep.base
            bayes = sweep.bayes!
        }
    }
}
