import Foundation
import NERCore

/// A job a backend is running for the dispatcher.
public final class RunningJob {
    public var claim: Spool.Claim
    public let name: String
    public let attempt: Int
    public let logPath: String
    public let outputPath: String
    public let eventsPath: String
    /// Backend-specific handle: a process group id locally, a Slurm job id on a cluster.
    public var backendId: String?
    public var pid: Int32 = 0
    public var lastRenewal = Date()
    public var eventsSeen = 0
    public var lastStatus = "running"
    public var cancelling = false

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

/// Where jobs run: child processes here (`local`), or a scheduler (Slurm, in its own module).
public protocol DispatchBackend: AnyObject {
    var name: String { get }
    /// Starts `job`; its record is on stdin, its stdout goes to `job.outputPath`, stderr to `job.logPath`.
    func start(_ job: RunningJob, command: String, environment: [String: String]) throws
    /// nil while the job runs.
    func poll(_ job: RunningJob) -> JobExit?
    func cancel(_ job: RunningJob)
    /// Stops what a dead dispatcher left running for `jobId`, before the job is retried.
    func killOrphan(jobId: String)
}
