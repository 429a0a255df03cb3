import Foundation
import Logging
import NERCore
import NERQueue
import NERRegistry
#if canImport(Glibc)
import Glibc
#endif

public struct DispatchOptions: Sendable {
    public enum Mode: String, Sendable { case once, drain, watch }
    public var mode: Mode = .once
    /// Jobs running at once across every dispatcher sharing the spool.
    public var maxRunning = 1
    public var maxAttempts = 3
    /// Seconds a claim stays valid without a heartbeat.
    public var lease: TimeInterval = 300
    public var pollInterval: TimeInterval = 0.2
    /// Seconds a job has to end after SIGTERM (cancel, time limit, shutdown) before SIGKILL.
    public var grace: TimeInterval = 30
    /// The pipeline each job runs, its record on stdin.
    public var command = "ner-train | ner-pack | ner-register"
    /// Prepended to PATH so the default pipeline finds the tools installed beside ner-dispatch.
    public var toolDirectory: String?

    public init() {}
}

/// Claims jobs from the spool while fewer than `maxRunning` run, runs them on a backend, and
/// writes every status transition to the registry and, as one NDJSON line each, to `emit`.
public final class Dispatcher {
    let home: Home
    let spool: Spool
    let registry: Registry
    let backend: DispatchBackend
    let options: DispatchOptions
    let emit: (JSON) -> Void
    let me = ProcessIdentity.current
    var running: [RunningJob] = []
    var queueCache: ArraySlice<String> = []
    var queueCacheTime = Date.distantPast
    public private(set) var deadLettered = 0
    var stopRequested = false
    /// Transitions of this loop iteration, committed to the registry together (one fsync), then printed.
    var pending: [(transition: Registry.Transition, event: JSON)] = []
    /// Bayesian sweeps one of whose trials ended: each makes its next trials (docs/sweeps.md).
    var sweepsToStep: Set<String> = []
    /// Where sweep steps report; ner-dispatch sets its own.
    public var log = Logger(label: "ner-dispatch")

    public init(home: Home, registry: Registry, backend: DispatchBackend, options: DispatchOptions,
                emit: @escaping (JSON) -> Void) {
        self.home = home
        self.spool = Spool(home: home)
        self.registry = registry
        self.backend = backend
        self.options = options
        self.emit = emit
    }

    /// Asks the loop to stop claiming and to stop its running jobs, which go back to the queue with
    /// their attempt unspent; on a scheduler the jobs keep running for the next dispatcher.
    public func requestStop() { stopRequested = true }

    public func run() throws {
        try spool.ensureLayout()
        // Trials that ended while no dispatcher ran (or under a scheduler) are caught up first.
        _ = bayesSweeps().stepAll(log: log)
        var claimedOnce = false
        while true {
            if dispatchStopSignal != 0 { stopRequested = true }
            // A second signal does not wait out the grace period.
            if dispatchStopSignal > 1 { for job in running where job.stopping != nil { job.killAt = .distantPast } }
            recover()
            // Finished jobs first: their claims no longer count against --max-running.
            try tend()
            stepSweeps()
            let mayClaim = !stopRequested && (options.mode != .once || !claimedOnce)
            var more = false
            if mayClaim {
                more = try claimWhileFree()
                claimedOnce = true
            }
            try flush()
            // A scheduler keeps the jobs: --once (cron) submits and leaves, and so does a stopped
            // dispatcher; the next run tends them.
            if backend.detached && (options.mode == .once || stopRequested) { return }
            if running.isEmpty {
                switch options.mode {
                case .once: return
                case .drain:
                    refreshQueue(force: true)
                    if queueCache.isEmpty || stopRequested { return }
                case .watch:
                    if stopRequested { return }
                }
            }
            if !more { usleep(UInt32(options.pollInterval * 1_000_000)) }
        }
    }

    // MARK: Claiming

    /// Claims jobs until the global cap is reached or the queue is empty. The count of live
    /// claims and the claim itself happen under one lock, so racing dispatchers never exceed it.
    /// Starting is slow on a scheduler (one sbatch is tens of milliseconds), so outside --once a
    /// pass stops after about a second and returns true: the loop tends running jobs, then goes on
    /// claiming at once.
    func claimWhileFree() throws -> Bool {
        refreshQueue(force: false)
        guard !queueCache.isEmpty else { return false }
        let started = Date()
        var claimed: [Spool.Claim] = []
        do {
            return try withFileLock(spool.root + "/dispatch.lock") { try claimAndLaunch(started: started, claimed: &claimed) }
        } catch let e as ToolError where e.status == .unavailable {
            // The backend is down: what this pass claimed and did not start goes back untouched
            // (a claim that `finish` already moved on is simply not there any more).
            let running = Set(self.running.map(\.jobId))
            for claim in claimed where !running.contains(claim.jobId) { try spool.release(claim) }
            try flush()
            throw e
        }
    }

    /// One claiming pass under the spool lock; `claimed` keeps what it claimed for the caller.
    func claimAndLaunch(started: Date, claimed: inout [Spool.Claim]) throws -> Bool {
        var free = options.maxRunning - spool.claimNames().count
        var group: [Spool.Claim] = []
        while free > 0 {
            if queueCache.isEmpty { refreshQueue(force: true) }
            guard let claim = try spool.claim(from: &queueCache, owner: me) else { break }
            claimed.append(claim)
            free -= 1
            // A sweep's consecutive jobs stay together: they may go in as one job array.
            if let last = group.last, last.job["sweep_id"] == nil || last.job["sweep_id"] != claim.job["sweep_id"] {
                try launch(group)
                group = []
            }
            group.append(claim)
            if options.mode != .once && claim.job["sweep_id"] == nil && Date().timeIntervalSince(started) > 1 {
                try launch(group)
                return free > 0
            }
        }
        try launch(group)
        return false
    }

    /// Steps the sweeps whose trials ended, and claims what they queued without waiting.
    func stepSweeps() {
        guard !sweepsToStep.isEmpty else { return }
        let sweeps = bayesSweeps()
        for id in sweepsToStep.sorted() {
            do {
                let progress = try sweeps.step(id, log: log)
                if !progress.queued.isEmpty || progress.finished { log.info("\(progress.summary)") }
            } catch {
                log.warning("sweep \(id): \((error as? ToolError)?.message ?? "\(error)")")
            }
        }
        sweepsToStep.removeAll()
        refreshQueue(force: true)
    }

    func bayesSweeps() -> BayesSweep {
        BayesSweep(queue: JobQueue(home: home, spool: spool))
    }

    func refreshQueue(force: Bool) {
        if force || queueCache.isEmpty || Date().timeIntervalSince(queueCacheTime) > 1 {
            queueCache = ArraySlice(spool.queuedNames())
            queueCacheTime = Date()
        }
    }

    /// Starts claimed jobs; consecutive jobs of one sweep go to the backend together (one Slurm
    /// job array) when it can start them so.
    func launch(_ claims: [Spool.Claim]) throws {
        var i = 0
        while i < claims.count {
            var end = i + 1
            if let sweep = claims[i].job["sweep_id"]?.stringValue {
                while end < claims.count && claims[end].job["sweep_id"]?.stringValue == sweep { end += 1 }
            }
            let jobs = claims[i..<end].map { RunningJob(claim: $0, spool: spool, logs: home.logs) }
            i = end
            for job in jobs {
                unlink(job.eventsPath)
                spool.clearCancel(job.jobId)
            }
            if jobs.count > 1, try starting(jobs, {
                try backend.startGroup(jobs, command: options.command, environment: environment(nil))
            }) { continue }
            for job in jobs {
                _ = try starting([job]) {
                    try backend.start(job, command: options.command, environment: environment(job))
                    return true
                }
            }
        }
    }

    func environment(_ job: RunningJob?) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["NER_HOME"] = home.root
        if let job {
            env["NER_JOB_ID"] = job.jobId
            env["NER_ATTEMPT"] = String(job.attempt)
            env[StatusLog.environmentKey] = job.eventsPath
        }
        if let dir = options.toolDirectory { env["PATH"] = dir + ":" + (env["PATH"] ?? "/usr/bin:/bin") }
        return env
    }

    /// Runs `start`, which starts `jobs` (false: it did not, try another way). A job the backend
    /// refuses is a failed attempt; a backend that is down is thrown on to `launch`.
    func starting(_ jobs: [RunningJob], _ start: () throws -> Bool) throws -> Bool {
        do {
            guard try start() else { return false }
        } catch let e as ToolError where e.status != .unavailable {
            for job in jobs { try finish(job, .failed(e.message)) }
            return true
        }
        for job in jobs {
            try transition(job, "running")
            running.append(job)
        }
        return true
    }

    // MARK: Tending running jobs

    func tend() throws {
        var still: [RunningJob] = []
        var ended: [(RunningJob, JobExit)] = []
        backend.refresh(running)
        let now = Date()
        for job in running {
            if job.stopping == nil {
                if spool.cancelRequested(job.jobId) {
                    stop(job, .cancelled)
                } else if !backend.detached && stopRequested {
                    stop(job, .shutdown)
                } else if !backend.detached, let (limit, text) = timeLimit(job), now.timeIntervalSince(job.startedAt) > Double(limit) {
                    stop(job, .timeLimit("time limit \(text)"))
                }
            } else if let at = job.killAt, now >= at {
                backend.kill(job)
                job.killAt = nil
            }
            if Date().timeIntervalSince(job.lastRenewal) > options.lease / 3 {
                spool.renew(job.claim)
                job.lastRenewal = Date()
            }
            harvestEvents(job)
            if let exit = backend.poll(job) {
                harvestEvents(job)
                ended.append((job, exit))
            } else {
                still.append(job)
            }
        }
        running = still
        try finish(ended)
    }

    /// SIGTERM now, SIGKILL after the grace period if the job is still there.
    func stop(_ job: RunningJob, _ reason: RunningJob.StopReason) {
        job.stopping = reason
        job.killAt = Date().addingTimeInterval(options.grace)
        backend.cancel(job)
    }

    /// The job's `resources.time` in seconds and as written; a scheduler enforces its own.
    func timeLimit(_ job: RunningJob) -> (Int, String)? {
        guard let text = job.claim.job["spec"]?["resources"]?["time"]?.stringValue,
              let seconds = try? TimeLimit.seconds(text) else { return nil }
        return (seconds, text)
    }

    /// Records the transitions the pipeline's stages reported in the job's event log.
    func harvestEvents(_ job: RunningJob) {
        guard let data = FileManager.default.contents(atPath: job.eventsPath), !data.isEmpty else { return }
        let lines = data.split(separator: 0x0A)
        guard lines.count > job.eventsSeen else { return }
        for line in lines[job.eventsSeen...] {
            guard let record = try? JSON.parse(Data(line)), let status = record["status"]?.stringValue,
                  status != job.lastStatus, status != "failed" else { continue }
            try? transition(job, status, modelId: record["model_id"]?.stringValue, record: record)
        }
        job.eventsSeen = lines.count
    }

    func finish(_ job: RunningJob, _ exit: JobExit) throws { try finish([(job, exit)]) }

    /// What happens to a finished job's claim once its transitions are committed.
    enum ClaimOutcome {
        case complete(JSON)
        case fail(cause: String, cancelled: Bool)
        /// Back to the queue, attempt unspent.
        case release
        /// The claim is no longer ours.
        case none
    }

    /// Records how jobs ended in three steps, so that a crash between any two leaves nothing run
    /// twice or recorded twice: (1) the registry's transitions are committed together; (2) each
    /// claim moves to done/, new/ or failed/; (3) the backend forgets the run (for a local job: the
    /// exit status a dispatcher taking over would read). A crash before (2) leaves the claim and the
    /// run, which the next dispatcher takes over; it sees in the registry what was already recorded.
    func finish(_ jobs: [(RunningJob, JobExit)]) throws {
        var outcomes: [(RunningJob, ClaimOutcome)] = []
        for (job, exit) in jobs { outcomes.append((job, try recordEnd(job, exit))) }
        try flush()
        var completed = false
        for (job, outcome) in outcomes {
            switch outcome {
            case .complete(let record):
                try spool.complete(job.claim, record: record, durable: false)
                completed = true
            case .release:
                try spool.release(job.claim)
            case .fail(let cause, let cancelled):
                if try spool.fail(job.claim, error: cause, maxAttempts: options.maxAttempts, retry: !cancelled) == .deadLettered {
                    deadLettered += 1
                    if !cancelled {
                        emit(event(jobId: job.jobId, name: job.name, status: "dead-lettered", attempt: job.attempt, error: cause))
                    }
                }
            case .none:
                break
            }
        }
        if completed { AtomicFile.syncDirectory(spool.done) }
        for (job, _) in outcomes where job.claim.job["sweep_trial"] != nil {
            if let sweep = job.claim.job["sweep_id"]?.stringValue { sweepsToStep.insert(sweep) }
        }
        for (job, outcome) in outcomes {
            spool.clearCancel(job.jobId)
            unlink(job.outputPath)
            if case .none = outcome { continue }
            backend.forget(job)
        }
    }

    /// The transitions of a job that ended (not yet committed), and what becomes of its claim.
    func recordEnd(_ job: RunningJob, _ exit: JobExit) throws -> ClaimOutcome {
        // A claim taken over by another dispatcher (this one stalled past its lease) is theirs to record.
        guard fileExists(job.claim.path) else { return .none }
        if job.stopping == .shutdown, exit != .succeeded {
            // Stopped by our own shutdown, not by a fault of the job: its attempt is not spent.
            try transition(job, "queued", error: "dispatcher \(me) stopped; the job goes back to the queue")
            return .release
        }
        switch exit {
        case .succeeded:
            var record = job.claim.job
            if let out = lastRecord(job.outputPath) { record = out }
            if backend.detached, let id = job.backendId { record["\(backend.name)_job_id"] = .string(id) }
            // A job taken over may have been recorded done already, by a dispatcher that died after.
            if !["done", "registered"].contains(job.lastStatus) { try transition(job, "done", record: record) }
            return .complete(record)
        case .failed(let how):
            let cancelled = job.stopping == .cancelled
            let cause: String
            switch job.stopping {
            case .cancelled?: cause = "cancelled"
            case .timeLimit(let limit)?: cause = limit
            default: cause = failureCause(job, how)
            }
            let retry = !cancelled && job.attempt < options.maxAttempts
            try transition(job, cancelled ? "cancelled" : "failed", error: cause)
            // Committed before the job is back in new/, so a dispatcher that claims it at once
            // records its `running` after these.
            if retry {
                try record(jobId: job.jobId, name: job.name, status: "queued", attempt: job.attempt + 1, error: cause)
            }
            return .fail(cause: cause, cancelled: cancelled)
        }
    }

    /// `exit 1: ner-train: error: train.txt:12: expected 4 columns, found 2` — the exit and the last
    /// line the job wrote to its log, which is where the tools put their one-line errors.
    func failureCause(_ job: RunningJob, _ how: String) -> String {
        guard let data = FileManager.default.contents(atPath: job.logPath) else { return how }
        let text = String(decoding: data.suffix(4096), as: UTF8.self)
        let last = text.split(separator: "\n").last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard let last, !last.contains("attempt \(job.attempt) on ") else { return how }
        return "\(how): \(last.trimmingCharacters(in: .whitespaces))"
    }

    func lastRecord(_ path: String) -> JSON? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        for line in data.split(separator: 0x0A).reversed() {
            if let j = try? JSON.parse(Data(line)), j.objectValue != nil { return j }
        }
        return nil
    }

    // MARK: Recovery

    /// Takes over the jobs of dead dispatchers that still run (or ended unrecorded), and returns the
    /// other jobs of dead or silent dispatchers to the queue (or dead-letters them).
    func recover() {
        adopt()
        let recovered = spool.recoverExpired(lease: options.lease, maxAttempts: options.maxAttempts, except: me) {
            backend.killOrphan(jobId: $0)
        }
        for r in recovered {
            let name = r.job["name"]?.stringValue ?? ""
            let attempt = r.job["attempt"]?.intValue ?? 1
            try? record(jobId: r.jobId, name: name, status: "failed", attempt: attempt, error: r.reason)
            switch r.outcome {
            case .requeued(let next):
                try? record(jobId: r.jobId, name: name, status: "queued", attempt: next, error: r.reason)
            case .deadLettered:
                deadLettered += 1
                try? flush()
                emit(event(jobId: r.jobId, name: name, status: "dead-lettered", attempt: attempt, error: r.reason))
            }
        }
    }

    /// Takes over the claims of dead or silent dispatchers whose jobs the backend still holds
    /// (Slurm jobs, and local jobs whose dispatcher was killed: they outlive it), so they are
    /// tended, and recorded once, not run again. A local job is taken over only from a dispatcher
    /// known dead on this host; a silent one elsewhere may still be tending it. The Slurm job id
    /// comes from the registry, else from what the backend left in the spool.
    func adopt() {
        let now = Date()
        for name in spool.claimNames() {
            guard let owner = Spool.ClaimName(fileName: name)?.owner, owner != me else { continue }
            let gone = owner.isAliveHere == false
            let expired = modificationDate(spool.cur + "/" + name).map { now.timeIntervalSince($0) > options.lease } ?? false
            guard gone || (expired && backend.detached), let claim = try? spool.adopt(claimName: name, owner: me) else { continue }
            let job = RunningJob(claim: claim, spool: spool, logs: home.logs)
            let row = (try? registry.job(job.jobId)).flatMap { $0 }.flatMap { $0.attempt == job.attempt ? $0 : nil }
            if row?.status == "done" {
                // Its end was recorded; the dead dispatcher had yet to move the claim to done/.
                job.lastStatus = "done"
                try? finish(job, .succeeded)
                continue
            }
            let started = row.map { ["running", "trained", "packed", "registered"].contains($0.status) } ?? false
            guard backend.reattach(job, knownId: started ? row?.backendId : nil) else {
                if !backend.detached { backend.killOrphan(jobId: job.jobId) }
                try? finish(job, .failed(gone ? "dispatcher \(owner) died" : "lease of dispatcher \(owner) expired"))
                continue
            }
            if started, let row {
                job.lastStatus = row.status
                skipRecordedEvents(job)
            } else {
                try? transition(job, "running")
            }
            running.append(job)
        }
    }

    /// Events up to the status the registry already holds were recorded by the dead dispatcher.
    func skipRecordedEvents(_ job: RunningJob) {
        guard job.lastStatus != "running", let data = FileManager.default.contents(atPath: job.eventsPath) else { return }
        let lines = data.split(separator: 0x0A)
        if let last = lines.lastIndex(where: { (try? JSON.parse(Data($0)))?["status"]?.stringValue == job.lastStatus }) {
            job.eventsSeen = last + 1
        }
    }

    // MARK: Transitions

    func transition(_ job: RunningJob, _ status: String, error: String? = nil, modelId: String? = nil,
                    record: JSON? = nil) throws {
        job.lastStatus = status
        try self.record(jobId: job.jobId, name: job.name, status: status, attempt: job.attempt, error: error,
                        backendId: job.backendId, modelId: modelId, record: record)
    }

    func record(jobId: String, name: String, status: String, attempt: Int, error: String? = nil,
                backendId: String? = nil, modelId: String? = nil, record: JSON? = nil) throws {
        var e = event(jobId: jobId, name: name, status: status, attempt: attempt, error: error)
        if let modelId { e["model_id"] = .string(modelId) }
        if let backendId { e["backend_id"] = .string(backendId) }
        let t = Registry.Transition(jobId: jobId, name: name, status: status, attempt: attempt, error: error,
                                    backendId: backendId, modelId: modelId, record: record,
                                    at: e["at"]?.stringValue ?? Timestamp.now())
        pending.append((t, e))
    }

    /// Group commit: this iteration's transitions become durable together (one fsync), then they
    /// are printed, in order.
    func flush() throws {
        guard !pending.isEmpty else { return }
        try registry.recordTransitions(pending.map(\.transition))
        for p in pending { emit(p.event) }
        pending.removeAll()
    }

    func event(jobId: String, name: String, status: String, attempt: Int, error: String?) -> JSON {
        var o: [String: JSON] = [
            "schema": .int(Int64(recordSchema)), "type": "transition", "job_id": .string(jobId),
            "name": .string(name), "status": .string(status), "attempt": .int(Int64(attempt)),
            "at": .string(Timestamp.now()), "host": .string(me.host), "pid": .int(Int64(me.pid)),
            "backend": .string(backend.name),
        ]
        if let error { o["error"] = .string(error) }
        return .object(o)
    }
}

/// Counts SIGINT/SIGTERM: the first stops claiming and stops running jobs, the second kills them.
nonisolated(unsafe) public var dispatchStopSignal: Int32 = 0

extension Dispatcher {
    public func installStopHandlers() {
        signal(SIGINT) { _ in dispatchStopSignal += 1 }
        signal(SIGTERM) { _ in dispatchStopSignal += 1 }
        // A launcher may hand over these signals blocked (the mask is inherited): unblock them, or
        // the dispatcher could never be stopped but by SIGKILL.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
