import Foundation
import NERCore
#if canImport(Glibc)
import Glibc
#endif

/// The queue: a maildir-like folder that many processes on many hosts may share (docs/spool.md).
///
/// - `tmp/`: jobs being written; `new/`: queued; `cur/`: claimed (the file name carries the owner);
///   `done/`: finished (the final record); `failed/`: dead-lettered with the error.
/// - A job file is named `PP-CREATEDNS-JOBID.json`, so a name sort is priority, then FIFO.
/// - A claim is one atomic rename `new/KEY.json` → `cur/KEY.json@HOST@PID@START`, so two dispatchers
///   never both win, and the owner is known without a second file. The claim file's mtime is the
///   lease: the owner touches it while the job runs; a claim whose owner is gone or whose lease ran
///   out is returned to `new/` with `attempt + 1`, or dead-lettered after `maxAttempts`.
public struct Spool: Sendable {
    public let root: String

    public init(root: String) { self.root = root }
    public init(home: Home) { self.root = home.spool }

    public var tmp: String { root + "/tmp" }
    public var new: String { root + "/new" }
    public var cur: String { root + "/cur" }
    public var done: String { root + "/done" }
    public var failed: String { root + "/failed" }
    /// Per-job event logs written by the pipeline stages (StatusLog).
    public var events: String { root + "/events" }
    /// Per-job run files: the process group of a running job, its output.
    public var run: String { root + "/run" }
    /// `cancel/JOBID` asks the owner of a running job to stop it.
    public var cancelRequests: String { root + "/cancel" }

    public func ensureLayout() throws {
        for d in [root, tmp, new, cur, done, failed, events, run, cancelRequests] { try makeDirectory(d) }
    }

    // MARK: Enqueue

    /// Writes jobs under `tmp/`, makes them durable, and renames them into `new/` (one group
    /// commit for the whole batch). Returns their paths.
    @discardableResult
    public func enqueue(_ jobs: [JSON]) throws -> [String] {
        var files: [(data: Data, path: String)] = []
        for job in jobs {
            guard let jobId = job["job_id"]?.stringValue else { throw ToolError.failure("job without job_id") }
            let key = Spool.key(priority: job["priority"]?.intValue ?? 0, createdNanos: Spool.nowNanos(), jobId: jobId)
            files.append((job.ndjsonLine(), new + "/" + key))
        }
        try AtomicFile.writeBatch(files, stagingDir: tmp)
        return files.map(\.path)
    }

    static func key(priority: Int, createdNanos: UInt64, jobId: String) -> String {
        let p = 9 - max(-9, min(9, priority))
        let pp = p < 10 ? "0\(p)" : "\(p)"
        let ns = String(createdNanos)
        return "\(pp)-\(String(repeating: "0", count: max(0, 20 - ns.count)))\(ns)-\(jobId).json"
    }

    static func nowNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// The job id inside a spool file name (`PP-NS-JOBID.json[@owner...]`).
    public static func jobId(fromFileName name: String) -> String? {
        let base = ClaimName(fileName: name)?.key ?? name
        guard base.hasSuffix(".json") else { return nil }
        let parts = base.dropLast(5).split(separator: "-", maxSplits: 2)
        return parts.count == 3 ? String(parts[2]) : nil
    }

    // MARK: Listing

    public enum State: String, Sendable { case queued, running, done, failed }

    public struct Entry: Sendable {
        public var state: State
        public var path: String
        public var jobId: String
        public var owner: ProcessIdentity?
        public var leaseRenewed: Date?
    }

    /// Every job in the spool, oldest first within each state.
    public func entries() -> [Entry] {
        var out: [Entry] = []
        for (state, dir) in [(State.queued, new), (.running, cur), (.done, done), (.failed, failed)] {
            for name in Spool.sortedNames(dir) {
                guard let id = Spool.jobId(fromFileName: name) else { continue }
                var e = Entry(state: state, path: dir + "/" + name, jobId: id)
                if state == .running {
                    e.owner = ClaimName(fileName: name)?.owner
                    e.leaseRenewed = modificationDate(e.path)
                }
                out.append(e)
            }
        }
        return out
    }

    public func find(_ jobId: String) -> Entry? {
        entries().first { $0.jobId == jobId }
    }

    static func sortedNames(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { !$0.hasPrefix(".") }
            .sorted()
    }

    public func read(_ path: String) throws -> JSON {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ToolError.noInput("\(path): no such job file")
        }
        do { return try JSON.parse(data) } catch let e as ToolError {
            throw ToolError.data("\(path): \(e.message)")
        }
    }

    // MARK: Claims

    public struct Claim: Sendable {
        public let path: String
        public let key: String
        public let jobId: String
        public var job: JSON

    }

    /// The name of a job file held in `cur/` (docs/spool.md): `KEY@HOST@PID@TICKS` for a
    /// dispatcher's claim, hidden as `.KEY@recovering@HOST@PID@TICKS` (or `@cancelling@`) while a
    /// recovery or a cancellation holds it. KEY is the file's name in `new/`.
    public struct ClaimName: Sendable, Equatable {
        public var key: String
        public var owner: ProcessIdentity
        /// `recovering` or `cancelling` for the hidden names; nil for a claim.
        public var purpose: String?

        public init(key: String, owner: ProcessIdentity, purpose: String? = nil) {
            self.key = key
            self.owner = owner
            self.purpose = purpose
        }

        public init?(fileName name: String) {
            let hidden = name.hasPrefix(".")
            let parts = name.dropFirst(hidden ? 1 : 0).split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == (hidden ? 5 : 4), let pid = Int32(parts[parts.count - 2]),
                  let ticks = UInt64(parts[parts.count - 1]) else { return nil }
            key = String(parts[0])
            purpose = hidden ? String(parts[1]) : nil
            owner = ProcessIdentity(host: String(parts[parts.count - 3]), pid: pid, startTicks: ticks)
        }

        public var fileName: String {
            (purpose == nil ? "" : ".") + ([key] + (purpose.map { [$0] } ?? [])
                + [owner.host, String(owner.pid), String(owner.startTicks)]).joined(separator: "@")
        }
    }

    /// Claims the first job of `candidates` (names in `new/`, best first) that is still there.
    /// Losing a race for one (ENOENT) moves on to the next.
    public func claim(from candidates: inout ArraySlice<String>, owner: ProcessIdentity) throws -> Claim? {
        while let key = candidates.popFirst() {
            let claimed = cur + "/" + ClaimName(key: key, owner: owner).fileName
            // No fsync: a claim lost to a power cut leaves the job queued, and it simply runs again.
            guard try AtomicFile.move(new + "/" + key, to: claimed, durable: false) else { continue }
            touch(claimed)
            let job: JSON
            do { job = try read(claimed) } catch {
                // An unreadable job can never run: dead-letter it rather than loop on it.
                try? deadLetter(path: claimed, key: key, job: ["job_id": .string(Spool.jobId(fromFileName: key) ?? key)],
                                error: "unreadable job file: \(error)")
                continue
            }
            return Claim(path: claimed, key: key, jobId: Spool.jobId(fromFileName: key) ?? key, job: job)
        }
        return nil
    }

    /// The names in `new/`, best first.
    public func queuedNames() -> [String] {
        Spool.sortedNames(new).filter { $0.hasSuffix(".json") }
    }

    /// Claims currently held, by anyone (the global count `--max-running` caps).
    public func claimNames() -> [String] {
        Spool.sortedNames(cur).filter { $0.contains("@") }
    }

    /// Takes over the claim `name` (in `cur/`) of a dispatcher that is gone while its job still runs
    /// elsewhere (a Slurm job): one rename to the new owner, so of two adopters exactly one wins.
    public func adopt(claimName name: String, owner: ProcessIdentity) throws -> Claim? {
        guard let key = ClaimName(fileName: name)?.key else { return nil }
        let mine = cur + "/" + ClaimName(key: key, owner: owner).fileName
        guard try AtomicFile.move(cur + "/" + name, to: mine, durable: false) else { return nil }
        touch(mine)
        return Claim(path: mine, key: key, jobId: Spool.jobId(fromFileName: key) ?? key, job: try read(mine))
    }

    /// Gives a claim back to the queue unchanged (same attempt): the job never started.
    public func release(_ claim: Claim) throws {
        _ = try AtomicFile.move(claim.path, to: new + "/" + claim.key)
    }

    /// Renews a lease: the claim file's mtime is the heartbeat.
    public func renew(_ claim: Claim) { touch(claim.path) }

    /// A finished job: its final record goes to `done/`, the claim disappears.
    /// Without `durable` the caller fsyncs `done/` itself, once for many jobs.
    public func complete(_ claim: Claim, record: JSON, durable: Bool = true) throws {
        if record == claim.job {
            try AtomicFile.move(claim.path, to: done + "/" + claim.key, durable: durable)
        } else {
            try AtomicFile.write(record.ndjsonLine(), to: done + "/" + claim.key)
            // If this unlink is lost to a crash, recovery finds the job in done/ and drops the claim.
            unlink(claim.path)
        }
    }

    public enum FailureOutcome: Equatable, Sendable { case requeued(attempt: Int), deadLettered }

    /// A failed attempt: back to `new/` with `attempt + 1`, or to `failed/` with the error once
    /// `maxAttempts` attempts have been made (or when `retry` is false, e.g. cancelled).
    public func fail(_ claim: Claim, error: String, maxAttempts: Int, retry: Bool = true) throws -> FailureOutcome {
        try fail(path: claim.path, key: claim.key, job: claim.job, error: error, maxAttempts: maxAttempts, retry: retry)
    }

    func fail(path: String, key: String, job: JSON, error: String, maxAttempts: Int, retry: Bool) throws -> FailureOutcome {
        let attempt = job["attempt"]?.intValue ?? 1
        if retry && attempt < maxAttempts {
            var next = job
            next["attempt"] = .int(Int64(attempt + 1))
            next["last_error"] = .string(error)
            // Idempotent: the requeued copy has the same name, so a crash between the two steps
            // below leaves a job that the next recovery finds already queued.
            try AtomicFile.write(next.ndjsonLine(), to: tmp + "/" + key)
            try AtomicFile.move(tmp + "/" + key, to: new + "/" + key)
            unlink(path)
            return .requeued(attempt: attempt + 1)
        }
        try deadLetter(path: path, key: key, job: job, error: error)
        return .deadLettered
    }

    func deadLetter(path: String, key: String, job: JSON, error: String) throws {
        var dead = job
        dead["status"] = "failed"
        dead["error"] = .string(error)
        dead["failed_at"] = .string(Timestamp.now())
        try AtomicFile.write(dead.ndjsonLine(), to: failed + "/" + key)
        unlink(path)
    }

    public struct Recovery: Sendable {
        public var jobId: String
        public var job: JSON
        public var owner: ProcessIdentity?
        public var outcome: FailureOutcome
        public var reason: String
    }

    /// Returns claims whose owner is gone (same host) or whose lease expired (any host) to the
    /// queue with `attempt + 1`. Exactly one recoverer wins each claim: it first renames the claim
    /// to a hidden name carrying its own identity. A recoverer that dies half-way leaves that hidden
    /// file, which the next recovery finishes (or drops, if the job already reached the queue).
    /// `killOrphan` runs first so a dead owner's job processes never run on beside the retry.
    public func recoverExpired(lease: TimeInterval, maxAttempts: Int, except me: ProcessIdentity,
                               killOrphan: (String) -> Void = { _ in }) -> [Recovery] {
        var out: [Recovery] = []
        let now = Date()
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: cur)) ?? []).sorted()
        for name in names {
            guard let held = ClaimName(fileName: name), held.owner != me else { continue }
            let hidden = held.purpose != nil, owner = held.owner, key = held.key
            let path = cur + "/" + name
            let reason: String
            if owner.isAliveHere == false {
                reason = "dispatcher \(owner) died"
            } else if let m = modificationDate(path), now.timeIntervalSince(m) > lease {
                reason = "lease of dispatcher \(owner) expired"
            } else { continue }
            let jobId = Spool.jobId(fromFileName: key) ?? key
            let mine = cur + "/" + ClaimName(key: key, owner: me, purpose: "recovering").fileName
            guard (try? AtomicFile.move(path, to: mine)) == true else { continue }
            if isFinished(key: key) || (hidden && isQueued(key: key)) {
                unlink(mine)  // the job got further than its claim says (finished, or already requeued)
                continue
            }
            killOrphan(jobId)
            guard let job = try? read(mine) else { unlink(mine); continue }
            if let outcome = try? fail(path: mine, key: key, job: job, error: reason, maxAttempts: maxAttempts, retry: true) {
                out.append(Recovery(jobId: jobId, job: job, owner: owner, outcome: outcome, reason: reason))
            }
        }
        return out
    }

    func isFinished(key: String) -> Bool {
        fileExists(done + "/" + key) || fileExists(failed + "/" + key)
    }

    func isQueued(key: String) -> Bool {
        fileExists(new + "/" + key) || claimNames().contains { ClaimName(fileName: $0)?.key == key }
    }

    // MARK: Cancel and purge

    /// Cancels a job: a queued one is dead-lettered at once; a running one gets a cancel request
    /// its dispatcher acts on. Returns the state the job was in.
    public func cancel(_ jobId: String) throws -> State {
        guard let e = find(jobId) else { throw ToolError.noInput("no job \(clipped(jobId)) in \(root)") }
        switch e.state {
        case .queued:
            let key = (e.path as NSString).lastPathComponent
            let me = ProcessIdentity.current
            let mine = cur + "/" + ClaimName(key: key, owner: me, purpose: "cancelling").fileName
            guard try AtomicFile.move(e.path, to: mine) else { return try cancel(jobId) }
            try deadLetter(path: mine, key: key, job: try read(mine), error: "cancelled by \(currentUser())")
        case .running:
            try AtomicFile.write("\(Timestamp.now()) \(currentUser())\n", to: cancelRequests + "/" + jobId)
        case .done, .failed:
            throw ToolError(.failure, "job \(jobId) already \(e.state.rawValue)")
        }
        return e.state
    }

    public func cancelRequested(_ jobId: String) -> Bool {
        fileExists(cancelRequests + "/" + jobId)
    }

    public func clearCancel(_ jobId: String) { unlink(cancelRequests + "/" + jobId) }

    /// Deletes finished and dead-lettered jobs (and their event and run files) and stale temp files.
    /// Queued and running jobs are never touched. Returns how many jobs were removed.
    @discardableResult
    public func purge() -> Int {
        var n = 0
        for dir in [done, failed] {
            for name in Spool.sortedNames(dir) {
                if let id = Spool.jobId(fromFileName: name) {
                    unlink(events + "/" + id + ".ndjson")
                    for ext in ["out", "err", "sh", "rc", "pid", "lock"] { unlink(run + "/" + id + "." + ext) }
                }
                if unlink(dir + "/" + name) == 0 { n += 1 }
            }
            AtomicFile.syncDirectory(dir)
        }
        let hourAgo = Date().addingTimeInterval(-3600)
        for name in Spool.sortedNames(tmp) where (modificationDate(tmp + "/" + name) ?? .distantFuture) < hourAgo {
            unlink(tmp + "/" + name)
        }
        return n
    }
}

public func touch(_ path: String) {
    utimensat(AT_FDCWD, path, nil, 0)
}

public func modificationDate(_ path: String) -> Date? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
}
