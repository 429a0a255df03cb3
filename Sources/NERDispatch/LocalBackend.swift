import Foundation
import NERCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs each job as `bash -o pipefail -c COMMAND` in its own process group, so the whole pipeline
/// can be stopped at once (cancel, or a dead dispatcher's orphans).
public final class LocalBackend: DispatchBackend {
    public let name = "local"
    let spool: Spool

    public init(spool: Spool) { self.spool = spool }

    func pidFile(_ jobId: String) -> String { spool.run + "/" + jobId + ".pid" }

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

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        // The job gets stdin, stdout and stderr only: no registry handles, no pipes of whoever
        // started the dispatcher (a reader waiting for EOF must not wait on the job too).
        _ = posix_spawn_file_actions_addclosefrom_np(&actions, 3)

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

        let args = ["bash", "-o", "pipefail", "-c", command]
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
        let ticks = processStartTicks(pid) ?? 0
        try AtomicFile.write("\(hostName()) \(pid) \(ticks)\n", to: pidFile(job.jobId))
    }

    public func poll(_ job: RunningJob) -> JobExit? {
        var status: Int32 = 0
        let r = waitpid(job.pid, &status, WNOHANG)
        if r == 0 { return nil }
        unlink(pidFile(job.jobId))
        if r < 0 { return .failed("lost track of process \(job.pid): \(errnoString())") }
        // Nothing in the job may outlive it: stop stragglers left in its process group.
        kill(-job.pid, SIGKILL)
        let low = status & 0x7f
        if low == 0 {
            let code = (status >> 8) & 0xff
            return code == 0 ? .succeeded : .failed("exit \(code)")
        }
        return .failed("killed by signal \(low)")
    }

    public func cancel(_ job: RunningJob) {
        kill(-job.pid, SIGTERM)
    }

    public func killOrphan(jobId: String) {
        guard let text = try? String(contentsOfFile: pidFile(jobId), encoding: .utf8) else { return }
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard f.count == 3, String(f[0]) == hostName(), let pgid = Int32(f[1]), let ticks = UInt64(f[2]) else { return }
        if processStartTicks(pgid) == ticks { kill(-pgid, SIGKILL) }
        unlink(pidFile(jobId))
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
