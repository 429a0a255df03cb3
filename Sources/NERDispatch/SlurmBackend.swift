import Foundation
import NERCore
import NERQueue
#if canImport(Glibc)
import Glibc
#endif

/// Runs each job as one Slurm batch job: `sbatch --parsable` of a script (kept as
/// `spool/run/JOBID.sh`) that runs the pipeline inside the allocation, the job record on stdin,
/// stdout in `spool/run/JOBID.out`, stderr in `spool/run/JOBID.err`. Jobs of one sweep claimed
/// together go in as one job array.
///
/// What happened to a job comes from Slurm: one `squeue -t all` per dispatcher loop for all our
/// jobs; `scontrol show job` for the exit code of a failed one. A job Slurm no longer knows
/// (past MinJobAge) is judged by the exit status its script left in `spool/run/JOBID.rc`.
public final class SlurmBackend: DispatchBackend {
    public let name = "slurm"
    public var detached: Bool { true }
    let spool: Spool
    let sbatchArgs: [String]
    /// Slurm's answer at the last refresh: job id → (state, reason).
    var states: [String: (state: String, reason: String)] = [:]
    /// False when the last squeue failed: nobody's state is known, so nothing is judged.
    var statesFresh = false

    static let failedStates: Set<String> = [
        "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED",
    ]

    /// Checks that the Slurm client commands are installed: without them this is exit 69.
    public init(spool: Spool, sbatchArgs: [String] = []) throws {
        for tool in ["sbatch", "squeue", "scancel", "scontrol"] where findOnPath(tool) == nil {
            throw ToolError.unavailable("\(tool) not found on PATH: --backend slurm needs the Slurm client commands")
        }
        self.spool = spool
        self.sbatchArgs = sbatchArgs
    }

    func runFile(_ jobId: String, _ ext: String) -> String { spool.run + "/" + jobId + "." + ext }

    // MARK: Submitting

    public func start(_ job: RunningJob, command: String, environment: [String: String]) throws {
        try submit([job], command: command, environment: environment)
    }

    public func startGroup(_ jobs: [RunningJob], command: String, environment: [String: String]) throws -> Bool {
        let resources = jobs.map { SlurmBackend.resources($0.claim.job) }
        // One array shares one request; a sweep over resources goes in job by job.
        guard jobs.count > 1, resources.allSatisfy({ $0 == resources[0] }) else { return false }
        try submit(jobs, command: command, environment: environment)
        return true
    }

    func submit(_ jobs: [RunningJob], command: String, environment: [String: String]) throws {
        for job in jobs {
            job.logPath = runFile(job.jobId, "err")
            for ext in ["rc", "slurm", "out", "err"] { unlink(runFile(job.jobId, ext)) }
            try AtomicFile.write(job.claim.job.ndjsonLine(), to: runFile(job.jobId, "json"))
        }
        let script = runFile(jobs[0].jobId, "sh")
        try AtomicFile.write(try batchScript(jobs, command: command), to: script)
        let r = runCommand("sbatch", ["--parsable"] + sbatchArgs + [script], environment: environment)
        guard r.status == 0, let first = r.stdout.split(whereSeparator: { $0 == ";" || $0 == "\n" }).first,
              Int(first) != nil else {
            var why = r.stderr.split(separator: "\n").last.map(String.init) ?? "exit \(r.status)"
            if why.hasPrefix("sbatch: error: ") { why.removeFirst("sbatch: error: ".count) }
            if SlurmBackend.isOutage(r.stderr) { throw ToolError.unavailable("sbatch: \(why)") }
            throw ToolError.failure("sbatch rejected the job: \(why)")
        }
        for (i, job) in jobs.enumerated() {
            let id = jobs.count == 1 ? String(first) : "\(first)_\(i)"
            job.backendId = id
            // Beside the registry (written at the end of the loop): a dispatcher killed in between
            // still finds the Slurm job of this attempt.
            try AtomicFile.write("\(id) \(job.attempt)\n", to: runFile(job.jobId, "slurm"))
        }
    }

    /// Slurm's own words for "the controller is not there", as opposed to "this job is refused".
    static func isOutage(_ stderr: String) -> Bool {
        ["Unable to contact slurm controller", "Socket timed out", "Connection refused", "Zero Bytes were transmitted"]
            .contains { stderr.contains($0) }
    }

    static func resources(_ job: JSON) -> Resources {
        (try? job["spec"]?["resources"]?.decode(Resources.self)) ?? Resources()
    }

    /// The batch script: resources as `#SBATCH` lines (readable in spool/run/JOBID.sh), then the
    /// pipeline with the job's record on stdin. An array task picks its job by SLURM_ARRAY_TASK_ID.
    func batchScript(_ jobs: [RunningJob], command: String) throws -> String {
        let r = SlurmBackend.resources(jobs[0].claim.job)
        for (field, value) in [("mem", r.mem), ("time", r.time), ("partition", r.partition ?? "x")] {
            guard !value.isEmpty, value.utf8.allSatisfy({ isalnum(Int32($0)) != 0 || ":._-,".utf8.contains($0) }) else {
                throw ToolError.failure("resources.\(field) '\(value)' is not a value Slurm takes")
            }
        }
        let array = jobs.count > 1
        let run = spool.run
        var lines = ["#!/bin/bash"]
        lines.append("#SBATCH --job-name=\(array ? (jobs[0].claim.job["sweep_id"]?.stringValue ?? jobs[0].jobId) + ".array" : SlurmBackend.jobName(jobs[0]))")
        lines.append("#SBATCH --output=\(run)/\(array ? "array-%A_%a.log" : jobs[0].jobId + ".out")")
        lines.append("#SBATCH --error=\(run)/\(array ? "array-%A_%a.log" : jobs[0].jobId + ".err")")
        lines.append("#SBATCH --cpus-per-task=\(r.cpus)")
        lines.append("#SBATCH --mem=\(r.mem)")
        lines.append("#SBATCH --time=\(r.time)")
        if r.gpus > 0 { lines.append("#SBATCH --gres=gpu:\(r.gpus)") }
        if let p = r.partition { lines.append("#SBATCH --partition=\(p)") }
        if array { lines.append("#SBATCH --array=0-\(jobs.count - 1)") }
        lines.append("# Written by ner-dispatch: \(jobs.count == 1 ? "job \(jobs[0].jobId)" : "\(jobs.count) jobs, one per array task").")
        if array {
            lines.append("case \"$SLURM_ARRAY_TASK_ID\" in")
            for (i, j) in jobs.enumerated() {
                lines.append("  \(i)) NER_JOB_ID=\(shellQuote(j.jobId)) NER_ATTEMPT=\(j.attempt) ;;")
            }
            lines.append("  *) echo \"ner-dispatch: no job for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 64 ;;")
            lines.append("esac")
            lines.append("exec >\(shellQuote(run))/\"$NER_JOB_ID.out\" 2>\(shellQuote(run))/\"$NER_JOB_ID.err\"")
        } else {
            lines.append("NER_JOB_ID=\(shellQuote(jobs[0].jobId)) NER_ATTEMPT=\(jobs[0].attempt)")
        }
        lines.append("export NER_JOB_ID NER_ATTEMPT \(StatusLog.environmentKey)=\(shellQuote(spool.events))/\"$NER_JOB_ID.ndjson\"")
        lines.append("bash -o pipefail -c \(shellQuote(command)) <\(shellQuote(run))/\"$NER_JOB_ID.json\"")
        lines.append("rc=$?")
        lines.append("echo \"$rc\" >\(shellQuote(run))/\"$NER_JOB_ID.rc\"")
        lines.append("exit \"$rc\"")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `JOBID.ATTEMPT`: unique per attempt, so a restarted dispatcher can ask Slurm by name.
    static func jobName(_ job: RunningJob) -> String { "\(job.jobId).\(job.attempt)" }

    // MARK: Watching

    public func refresh(_ jobs: [RunningJob]) {
        let ids = jobs.compactMap(\.backendId)
        states = [:]
        statesFresh = false
        guard !ids.isEmpty else { return }
        let r = runCommand("squeue", ["-h", "-r", "-t", "all", "-j", ids.joined(separator: ","), "-o", "%i|%T|%r"])
        if r.status != 0 {
            // squeue refuses a list made only of ids it has forgotten; that is an answer too.
            if r.stderr.contains("Invalid job id") { statesFresh = true }
            else { warn("squeue failed (\(r.stderr.split(separator: "\n").last ?? "exit \(r.status)")); will ask again") }
            return
        }
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            if f.count == 3 { states[f[0]] = (f[1], f[2]) }
        }
        statesFresh = true
    }

    public func poll(_ job: RunningJob) -> JobExit? {
        guard let exit = verdict(job) else { return nil }
        // The script and stderr stay for people (ner-queue --purge removes them).
        for ext in ["json", "rc", "slurm"] { unlink(runFile(job.jobId, ext)) }
        return exit
    }

    func verdict(_ job: RunningJob) -> JobExit? {
        guard statesFresh, let id = job.backendId else { return nil }
        guard let s = states[id] else { return forgotten(job, id) }
        if s.state == "COMPLETED" { return .succeeded }
        guard SlurmBackend.failedStates.contains(s.state) else { return nil }
        var cause = "slurm job \(id) \(s.state)"
        if let exit = scontrolField(id, "ExitCode"), exit != "0:0" { cause += " (exit \(exit))" }
        else if !s.reason.isEmpty && s.reason != "None" { cause += " (\(s.reason))" }
        return .failed(cause)
    }

    func forgotten(_ job: RunningJob, _ id: String) -> JobExit {
        guard let text = try? String(contentsOfFile: runFile(job.jobId, "rc"), encoding: .utf8),
              let rc = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            return .failed("slurm job \(id) vanished from Slurm without an exit status")
        }
        return rc == 0 ? .succeeded : .failed("slurm job \(id) exit \(rc)")
    }

    func scontrolField(_ id: String, _ field: String) -> String? {
        let r = runCommand("scontrol", ["show", "job", "-o", id])
        guard r.status == 0 else { return nil }
        for word in r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }) where word.hasPrefix(field + "=") {
            return String(word.dropFirst(field.count + 1))
        }
        return nil
    }

    public func cancel(_ job: RunningJob) {
        guard let id = job.backendId else { return }
        _ = runCommand("scancel", [id])
    }

    // MARK: Restarts

    public func reattach(_ job: RunningJob, knownId: String?) -> Bool {
        var id = knownId ?? SlurmBackend.recordedId(job.jobId, spool: spool, attempt: job.attempt)
        if id == nil {
            let r = runCommand("squeue", ["-h", "-t", "all", "-n", SlurmBackend.jobName(job), "-o", "%i"])
            id = r.stdout.split(separator: "\n").last.map(String.init)
        }
        guard let id else { return false }
        let r = runCommand("squeue", ["-h", "-r", "-t", "all", "-j", id, "-o", "%T"])
        let known = r.status == 0 && !r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        guard known || fileExists(runFile(job.jobId, "rc")) else { return false }
        job.backendId = id
        job.logPath = runFile(job.jobId, "err")
        return true
    }

    /// The Slurm job id `submit` left for the job (`spool/run/JOBID.slurm`: "ID ATTEMPT"), if any;
    /// with `attempt`, only if it was that attempt's.
    static func recordedId(_ jobId: String, spool: Spool, attempt: Int? = nil) -> String? {
        guard let text = try? String(contentsOfFile: spool.run + "/" + jobId + ".slurm", encoding: .utf8) else { return nil }
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard f.count == 2, attempt == nil || Int(f[1]) == attempt else { return nil }
        return String(f[0])
    }

    public func killOrphan(jobId: String) {
        _ = SlurmBackend.cancel(jobId: jobId, spool: spool)
    }

    /// Cancels the Slurm job of a running job (for `ner-queue --cancel`, which may run while no
    /// dispatcher does). False when the job has no Slurm job or scancel failed.
    public static func cancel(jobId: String, spool: Spool) -> Bool {
        guard let id = recordedId(jobId, spool: spool) else { return false }
        return runCommand("scancel", [id]).status == 0
    }
}

// MARK: - Helpers

func warn(_ message: String) {
    FileHandle.standardError.write(Data("ner-dispatch: warning: \(message)\n".utf8))
}

func shellQuote(_ s: String) -> String {
    "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

extension SlurmBackend {
    /// The partitions of the cluster `sinfo` reaches; nil when `sinfo` is not on PATH (no Slurm
    /// here: jobs run locally). A `sinfo` that cannot answer is `.unavailable`.
    public static func partitions() throws -> Set<String>? {
        guard findOnPath("sinfo") != nil else { return nil }
        // A controller that does not answer makes sinfo retry for ~10 s; queuing should not wait that long.
        let r = runCommand("sinfo", ["--noheader", "--format", "%R"], timeout: 3)
        guard r.status == 0 else {
            let why = r.stderr.split(whereSeparator: \.isNewline).first.map(String.init) ?? "exit \(r.status)"
            throw ToolError.unavailable("sinfo failed: \(why)")
        }
        let names = r.stdout.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        return Set(names.filter { !$0.isEmpty })
    }

    /// A partition Slurm does not have would fail every submission later; with `sinfo` on PATH it
    /// is refused now (64, or 65 when it came from an input line that `contexts` names). A `sinfo`
    /// that cannot answer only warns.
    public static func checkPartitions(_ records: [JSON], contexts: [String?], warn: (String) -> Void) throws {
        let wanted = records.enumerated().compactMap { i, r in
            r["spec"]?["resources"]?["partition"]?.stringValue.map { (i, $0) }
        }
        guard !wanted.isEmpty else { return }
        let known: Set<String>
        do {
            guard let k = try partitions() else { return }
            known = k
        } catch let e as ToolError {
            warn("cannot check resources.partition: \(e.message)")
            return
        }
        for (i, partition) in wanted where !known.contains(partition) {
            let message = "resources.partition '\(clipped(partition))' is not a Slurm partition here "
                + "(sinfo lists \(known.sorted().joined(separator: ", ")))"
            let context = i < contexts.count ? contexts[i] : nil
            throw context.map { ToolError.data("\($0): \(message)") } ?? ToolError.usage(message)
        }
    }
}

func findOnPath(_ tool: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") where access("\(dir)/\(tool)", X_OK) == 0 {
        return "\(dir)/\(tool)"
    }
    return nil
}

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a Slurm client command to completion; a command that cannot start is exit 127. With
/// `timeout`, one still running after that many seconds is terminated (and fails).
func runCommand(_ tool: String, _ args: [String], environment: [String: String]? = nil, timeout: Double? = nil) -> CommandResult {
    guard let exe = findOnPath(tool) else { return CommandResult(status: 127, stdout: "", stderr: "\(tool): not found") }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    do { try p.run() } catch { return CommandResult(status: 127, stdout: "", stderr: "\(tool): \(error)") }
    if let timeout {
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { if p.isRunning { p.terminate() } }
    }
    // Both pipes drain at once, so a chatty stderr never blocks the command.
    let errData = DataBox()
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { errData.data = err.fileHandleForReading.readDataToEndOfFile() }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    if p.terminationReason == .uncaughtSignal, let timeout {
        return CommandResult(status: 124, stdout: "", stderr: "\(tool) did not answer within \(Int(timeout)) s")
    }
    return CommandResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData.data, as: UTF8.self))
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
}
