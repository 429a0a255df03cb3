import Foundation
import NERCore
import NERQueue
#if canImport(Glibc)
import Glibc
#endif

/// Runs each job as `bash -o pipefail -c COMMAND` in its own process group, so the whole pipeline
/// can be stopped at once (cancel, time limit, shutdown).
///
/// A job outlives a dispatcher killed with SIGKILL. So that the next dispatcher can take it over
/// instead of running it again, everything it needs is in the spool, under `run/JOBID.*`:
/// - `.lock`: locked (flock) from before the job starts until its wrapper shell exits, so "is it
///   still running?" has an exact answer whatever happens to pids, and a dispatcher that dies
///   before the job starts leaves it unlocked;
/// - `.rc`: the command's exit status, written by the wrapper when the command ends, since only a
///   parent can wait for a process;
/// - `.pid`: the process group to signal (host, pid, start ticks, start time).
public final class LocalBackend: DispatchBackend {
    public let name = "local"
    let spool: Spool

    public init(spool: Spool) { self.spool = spool }

    func pidFile(_ jobId: String) -> String { spool.run + "/" + jobId + ".pid" }
    func exitFile(_ jobId: String) -> String { spool.run + "/" + jobId + ".rc" }
    func lockFile(_ jobId: String) -> String { spool.run + "/" + jobId + ".lock" }

    /// `$1` is the job's command, `$2` the exit-status file (written under a temp name, then renamed,
    /// so a reader never sees half of it). The wrapper outlasts SIGTERM (a trap that does nothing,
    /// which the command does not inherit), so it records how the command ended. It holds the job's
    /// lock as descriptor 3, which the command does not get.
    static let wrapper = #"trap : TERM INT; bash -o pipefail -c "$1" 3>&-; rc=$?; printf '%s\n' "$rc" > "$2.tmp" && mv -f "$2.tmp" "$2"; exit "$rc""#

    public func start(_ job: RunningJob, command: String, environment: [String: String]) throws {
        let stdin = open(job.claim.path, O_RDONLY | O_CLOEXEC)
        guard stdin >= 0 else { throw ToolError.failure("\(job.claim.path): cannot open: \(errnoString())") }
        defer { close(stdin) }
        let stdout = open(job.outputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let stderr = open(job.logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer { if stdout >= 0 { close(stdout) }; if stderr >= 0 { close(stderr) } }
        guard stdout >= 0, stderr >= 0 else { throw ToolError.failure("cannot open the output or log of \(job.jobId): \(errnoString())") }
        let header = "\(Timestamp.now()) attempt \(job.attempt) on \(hostName()): \(command)\n"
        _ = header.withCString { write(stderr, $0, strlen($0)) }
        unlink(exitFile(job.jobId))
        let lock = open(lockFile(job.jobId), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw ToolError.failure("\(lockFile(job.jobId)): cannot open: \(errnoString())") }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw ToolError.failure("an earlier run of \(job.jobId) is still running (\(lockFile(job.jobId)) is locked)")
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        posix_spawn_file_actions_adddup2(&actions, lock, 3)
        // The job gets stdin, stdout and stderr only (the wrapper also its lock): no registry
        // handles, no pipes of whoever started the dispatcher (a reader waiting for EOF must not
        // wait on the job too).
        _ = posix_spawn_file_actions_addclosefrom_np(&actions, 4)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // A new process group for the job; signals the dispatcher ignores (SIGPIPE) back to default.
        posix_spawnattr_setpgroup(&attr, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let args = ["bash", "-c", LocalBackend.wrapper, "ner-job", command, exitFile(job.jobId)]
        let env = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = withCStrings(args) { argv in
            withCStrings(env) { envp in
                posix_spawnp(&pid, "bash", &actions, &attr, argv, envp)
            }
        }
        guard rc == 0 else { throw ToolError.unavailable("cannot start bash for \(job.jobId): \(errnoString(rc))") }
        job.pid = pid
        job.backendId = String(pid)
        job.startedAt = Date()
        let ticks = processStartTicks(pid) ?? 0
        try AtomicFile.write("\(hostName()) \(pid) \(ticks) \(Int(job.startedAt.timeIntervalSince1970))\n", to: pidFile(job.jobId))
    }

    /// What `run/JOBID.pid` says: the job's process group on this host, and when it started.
    struct Group {
        var pgid: Int32
        var ticks: UInt64
        var startedAt: Date
    }

    /// True while the job's wrapper runs: it holds the job's lock.
    func running(_ jobId: String) -> Bool {
        let fd = open(lockFile(jobId), O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    func group(_ jobId: String) -> Group? {
        guard let text = try? String(contentsOfFile: pidFile(jobId), encoding: .utf8) else { return nil }
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard f.count == 4, String(f[0]) == hostName(), let pgid = Int32(f[1]), let ticks = UInt64(f[2]),
              let started = Double(f[3]) else { return nil }
        return Group(pgid: pgid, ticks: ticks, startedAt: Date(timeIntervalSince1970: started))
    }

    /// The exit status the wrapper recorded, once the job ended.
    func recordedExit(_ jobId: String) -> Int32? {
        guard let text = try? String(contentsOfFile: exitFile(jobId), encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func exit(code: Int32) -> JobExit {
        if code == 0 { return .succeeded }
        // The shell reports a command killed by signal N as 128 + N.
        return code > 128 && code < 160 ? .failed("killed by signal \(code - 128)") : .failed("exit \(code)")
    }

    public func poll(_ job: RunningJob) -> JobExit? {
        if job.exited == nil { job.exited = job.adopted ? pollAdopted(job) : pollChild(job) }
        guard let exit = job.exited else { return nil }
        guard job.pid > 0 else { return exit }
        // A job being stopped keeps its grace period: processes of its group still cleaning up
        // (ner-train after SIGTERM, say) are waited for until then.
        if job.stopping != nil, let at = job.killAt, Date() < at, Glibc.kill(-job.pid, 0) == 0 { return nil }
        // Nothing in the job may outlive it: stop stragglers left in its process group.
        Glibc.kill(-job.pid, SIGKILL)
        return exit
    }

    func pollChild(_ job: RunningJob) -> JobExit? {
        var status: Int32 = 0
        let r = waitpid(job.pid, &status, WNOHANG)
        if r == 0 { return nil }
        if r < 0 { return .failed("lost track of process \(job.pid): \(errnoString())") }
        let low = status & 0x7f
        if low == 0 { return LocalBackend.exit(code: (status >> 8) & 0xff) }
        return .failed("killed by signal \(low)")
    }

    /// A job this dispatcher did not start cannot be waited for: it has ended when its wrapper
    /// recorded an exit status, or when its process group leader is gone without one (killed).
    func pollAdopted(_ job: RunningJob) -> JobExit? {
        if running(job.jobId) { return nil }
        if let code = recordedExit(job.jobId) { return LocalBackend.exit(code: code) }
        return .failed("killed with its dispatcher (no exit status)")
    }

    public func forget(_ job: RunningJob) {
        for file in [pidFile(job.jobId), exitFile(job.jobId), lockFile(job.jobId)] { unlink(file) }
    }

    /// Takes over the run a dead dispatcher left on this host: still running, or ended with its
    /// exit status recorded. A run that ended without one was killed, and is not taken over.
    public func reattach(_ job: RunningJob, knownId: String?) -> Bool {
        guard running(job.jobId) || recordedExit(job.jobId) != nil else { return false }
        if let g = group(job.jobId) {
            job.pid = g.pgid
            job.backendId = String(g.pgid)
            job.startedAt = g.startedAt
        }
        job.adopted = true
        return true
    }

    /// Signals the job's process group, unless it is a taken-over job that has ended (its process
    /// group id may have been reused since).
    func signal(_ job: RunningJob, _ sig: Int32) {
        guard job.pid > 0, !job.adopted || running(job.jobId) else { return }
        Glibc.kill(-job.pid, sig)
    }

    public func cancel(_ job: RunningJob) { signal(job, SIGTERM) }

    public func kill(_ job: RunningJob) { signal(job, SIGKILL) }

    public func killOrphan(jobId: String) {
        if running(jobId), let g = group(jobId), g.pgid > 0 { Glibc.kill(-g.pgid, SIGKILL) }
        for file in [pidFile(jobId), exitFile(jobId), lockFile(jobId)] { unlink(file) }
    }
}

/// glibc ≥ 2.34 has it; the Glibc module hides it behind _GNU_SOURCE.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func posix_spawn_file_actions_addclosefrom_np(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32

/// Calls `body` with a NULL-terminated C array of the strings.
func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var cs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    cs.append(nil)
    defer { for p in cs { free(p) } }
    return body(cs)
}
