import Foundation
import Logging
import NERCore
import NERRegistry

/// Putting jobs in the queue: the spool is the source of truth (docs/spool.md); the registry is
/// told of each job as `queued`, and one that cannot be written now is told when a dispatcher
/// picks the job up.
public struct JobQueue {
    public let home: Home
    public let spool: Spool

    public init(home: Home) throws {
        self.home = home
        spool = Spool(home: home)
        try home.ensureLayout()
        try spool.ensureLayout()
    }

    /// A queue on a home and spool already laid out.
    public init(home: Home, spool: Spool) {
        self.home = home
        self.spool = spool
    }

    /// Writes every record into the spool, or none, then records them as queued. `contexts` name
    /// where each record came from (`stdin:3`), for errors.
    public func submit(_ records: [JSON], contexts: [String?] = [], log: Logger) throws {
        try checkParents(records, contexts: contexts)
        try spool.enqueue(records)
        do {
            let registry = try Registry(path: home.registry)
            try registry.recordTransitions(records.map {
                Registry.Transition(jobId: $0["job_id"]?.stringValue ?? "", name: $0["name"]?.stringValue ?? "",
                                    status: "queued", attempt: 1, record: $0)
            })
        } catch {
            log.warning("job(s) queued, but the registry could not record it: \(error)")
        }
    }

    /// A warm start from a model that does not exist would fail only when the job runs: a folder
    /// or tarball must be there now, and a registry name must resolve (66 otherwise).
    func checkParents(_ records: [JSON], contexts: [String?]) throws {
        for (i, r) in records.enumerated() {
            guard let parent = r["spec"]?["init_from"]?.stringValue, !fileExists(parent) else { continue }
            let found = fileExists(home.registry) ? try Registry(path: home.registry, readOnly: true).resolve(parent) : nil
            if found == nil {
                let context = i < contexts.count ? contexts[i].map { $0 + ": " } ?? "" : ""
                throw ToolError.noInput("\(context)init_from: no model '\(clipped(parent))': not a model folder, a tarball, "
                    + "or a model registered in \(home.registry)")
            }
        }
    }

    /// The trials of `sweep` as job records carrying its new sweep id; `context` names a trial in
    /// errors, and relative paths are read against `base` (the sweep file's folder).
    public static func trials(of sweep: Sweep, file: String, base: String?) throws -> (records: [JSON], contexts: [String]) {
        let sweepId = Job.makeId(name: sweep.name)
        var records: [JSON] = []
        var contexts: [String] = []
        for (i, trial) in sweep.trials.enumerated() {
            let context = "\(file): trial \(i + 1)"
            var r = try JSON.from(try JobRequest.make(from: .object(trial.request), context: context, relativeTo: base))
            r["sweep_id"] = .string(sweepId)
            r["sweep_params"] = .object(trial.params)
            records.append(r)
            contexts.append(context)
        }
        return (records, contexts)
    }

    /// A spool entry as `ner-queue --list` prints it.
    public func summary(of e: Spool.Entry) -> JSON {
        let job = (try? spool.read(e.path)) ?? [:]
        var o: [String: JSON] = [
            "job_id": .string(e.jobId), "state": .string(e.state.rawValue),
            "name": job["name"] ?? .null, "attempt": job["attempt"] ?? .null,
            "priority": job["priority"] ?? .null, "created_at": job["created_at"] ?? .null,
        ]
        if let owner = e.owner { o["owner"] = .string(owner.description) }
        if let t = e.leaseRenewed { o["lease_renewed"] = .string(Timestamp.format(t)) }
        if let err = job["error"] { o["error"] = err }
        if let model = job["model_id"] { o["model_id"] = model }
        return .object(o)
    }

    /// Cancels a queued job (recorded at once) or asks for a running one to be stopped; returns
    /// the state it was in.
    public func cancel(_ id: String) throws -> Spool.State {
        let was = try spool.cancel(id)
        if was == .queued, let registry = try? Registry(path: home.registry), let e = spool.find(id),
           let job = try? spool.read(e.path) {
            try? registry.recordTransition(jobId: id, name: job["name"]?.stringValue ?? "", status: "cancelled",
                                           attempt: job["attempt"]?.intValue ?? 1, error: job["error"]?.stringValue)
        }
        return was
    }
}
