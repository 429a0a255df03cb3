import Foundation
import NERCore
import NERQueue

/// A job a backend is running for the dispatcher.
public final class RunningJob {
    public var claim: Spool.Claim
    public let name: String
    public let attempt: Int
    /// Where the job's stderr goes: the dispatcher's log folder locally, the spool on Slurm.
    public var logPath: String
    public let outputPath: String
    public let eventsPath: String
    /// Backend-specific handle: a process group id locally, a Slurm job id on a cluster.
    public var backendId: String?
    public var pid: Int32 = 0
    /// Taken over from a dispatcher that died: not this process's child, so not waited for.
    public var adopted = false
    /// How the job's main process ended, kept while the rest of its process group has time to end.
    public var exited: JobExit?
    public var lastRenewal = Date()
    public var eventsSeen = 0
    public var lastStatus = "running"
    /// When the job started (for a job taken over from a dead dispatcher: when that one started it).
    public var startedAt = Date()
    /// Why the dispatcher is stopping the job, once it is; its processes get SIGKILL at `killAt`.
    public var stopping: StopReason?
    public var killAt: Date?

    public enum StopReason: Equatable, Sendable {
        /// `ner-queue --cancel`: dead-lettered, not retried.
        case cancelled
        /// It ran past its `resources.time` (the text is the cause, e.g. "time limit 00:00:03").
        case timeLimit(String)
        /// The dispatcher got SIGTERM or SIGINT: back to the queue with the same attempt.
        case shutdown
    }

    init(claim: Spool.Claim, spool: Spool, logs: String) {
        self.claim = claim
        self.name = claim.job["name"]?.stringValue ?? "job"
        self.attempt = claim.job["attempt"]?.intValue ?? 1
        self.logPath = logs + "/" + claim.jobId + ".log"
        self.outputPath = spool.run + "/" + claim.jobId + ".out"
        self.eventsPath = spool.events + "/" + claim.jobId + ".ndjson"
    }

    public var jobId: String { claim.jobId }
}

/// How a job ended.
public enum JobExit: Equatable, Sendable {
    case succeeded
    case failed(String)
}

/// Where jobs run: child processes here (`local`), or a scheduler (`slurm`).
public protocol DispatchBackend: AnyObject {
    var name: String { get }
    /// True when jobs outlive the dispatcher that started them (a scheduler): a restarted
    /// dispatcher takes such jobs over instead of returning them to the queue, and `--once`
    /// submits and exits instead of waiting.
    var detached: Bool { get }
    /// Starts `job`; its record is on stdin, its stdout goes to `job.outputPath`, stderr to `job.logPath`.
    func start(_ job: RunningJob, command: String, environment: [String: String]) throws
    /// Starts jobs of one sweep together (a Slurm job array); false when the backend starts them
    /// one by one instead.
    func startGroup(_ jobs: [RunningJob], command: String, environment: [String: String]) throws -> Bool
    /// Called once per dispatcher loop before `poll`, so a scheduler is asked once for all jobs.
    func refresh(_ jobs: [RunningJob])
    /// nil while the job runs.
    func poll(_ job: RunningJob) -> JobExit?
    /// Asks the job to stop (SIGTERM to its processes, or the scheduler's cancel).
    func cancel(_ job: RunningJob)
    /// Stops the job's processes at once (SIGKILL), after `cancel` was not heeded.
    func kill(_ job: RunningJob)
    /// Finds the run a dead dispatcher left for `job` (same job, same attempt), so this dispatcher
    /// can tend it; `knownId` is the backend id the registry recorded. False when there is none.
    func reattach(_ job: RunningJob, knownId: String?) -> Bool
    /// Stops what a dead dispatcher left running for `jobId`, before the job is retried.
    func killOrphan(jobId: String)
    /// Drops what the backend kept about a job once its end is recorded in the registry and the spool.
    func forget(_ job: RunningJob)
}

extension DispatchBackend {
    public var detached: Bool { false }
    public func startGroup(_ jobs: [RunningJob], command: String, environment: [String: String]) throws -> Bool { false }
    public func refresh(_ jobs: [RunningJob]) {}
    public func reattach(_ job: RunningJob, knownId: String?) -> Bool { false }
    public func kill(_ job: RunningJob) {}
    public func forget(_ job: RunningJob) {}
}
