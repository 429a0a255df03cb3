import Foundation
import NERCore
import NERRegistry
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// ner-dispatch against a real spool and registry, with `--command` stand-ins.
@Suite struct DispatchTests {
    func queue(_ t: TempDir, count: Int, name: String = "job") throws -> [String] {
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let lines = (0..<count).map { _ in #"{"name":"\#(name)","train":"\#(train)"}"# }.joined(separator: "\n")
        let r = try run("ner-queue", ["--home", t.path], stdin: lines + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        return try r.lines.map { try JSON.parse($0)["job_id"]!.stringValue! }
    }

    func files(_ t: TempDir, _ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(t.path)/spool/\(dir)")) ?? []).filter { !$0.hasPrefix(".") }
    }

    func spawn(_ tool: String, _ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestTools.path(tool))
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Four dispatchers race over 500 jobs: each runs exactly once, none lost, and no more than
    /// --max-running run at once across all of them.
    @Test func fourDispatchersRunEveryJobExactlyOnce() throws {
        let t = TempDir("ner-race"); defer { t.remove() }
        let ids = try queue(t, count: 500)
        let cap = 6
        try FileManager.default.createDirectory(atPath: t.file("running"), withIntermediateDirectories: true)
        // Each job notes itself, counts the jobs running beside it, and records that it ran.
        let command = """
            mkdir "\(t.path)/running/$NER_JOB_ID"; ls "\(t.path)/running" | wc -l >> "\(t.path)/concurrency"; \
            sleep 0.02; rmdir "\(t.path)/running/$NER_JOB_ID"; echo "$NER_JOB_ID" >> "\(t.path)/ran"
            """
        let dispatchers = try (0..<4).map { _ in
            try spawn("ner-dispatch", ["--home", t.path, "--drain", "--max-running", "\(cap)", "--poll", "0.01", "--command", command])
        }
        for d in dispatchers { d.waitUntilExit(); #expect(d.terminationStatus == 0) }
        let ran = try String(contentsOfFile: t.file("ran"), encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(ran.count == 500)
        #expect(Set(ran) == Set(ids))
        let peak = try String(contentsOfFile: t.file("concurrency"), encoding: .utf8)
            .split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.max() ?? 0
        #expect(peak <= cap)
        #expect(peak > 1)
        #expect(files(t, "done").count == 500)
        #expect(files(t, "new").isEmpty && files(t, "cur").isEmpty && files(t, "failed").isEmpty)
        let registry = try Registry(path: t.path + "/registry.sqlite")
        let finished = try registry.jobs(status: "done")
        #expect(finished.count == 500)
    }

    /// Waits until `condition` holds or `seconds` pass; returns whether it held.
    func waitFor(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() > deadline { return false }
            usleep(50_000)
        }
        return true
    }

    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// True while `pid` is a live (not zombie) process.
    func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    /// kill -9 of a dispatcher whose jobs still run: the next dispatcher takes them over instead of
    /// running them again, and records each once, as attempt 1.
    @Test func killedDispatcherJobsAreTakenOverAndRunOnce() throws {
        let t = TempDir("ner-kill"); defer { t.remove() }
        let ids = try queue(t, count: 3, name: "k")
        let command = #"sleep 3; echo "$NER_JOB_ID $NER_ATTEMPT" >> "\#(t.path)/ran""#
        let first = try spawn("ner-dispatch", ["--home", t.path, "--drain", "--max-running", "3", "--lease", "2", "--command", command])
        #expect(waitFor(20) { files(t, "cur").count == 3 && (try? FileManager.default.contentsOfDirectory(atPath: t.path + "/spool/run"))?.filter { $0.hasSuffix(".pid") }.count == 3 })
        usleep(300_000)
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let second = try run("ner-dispatch", ["--home", t.path, "--drain", "--max-running", "3", "--lease", "2", "--poll", "0.05", "--command", command])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(lines(t.file("ran")).sorted() == ids.map { "\($0) 1" }.sorted())
        let registry = try Registry(path: t.path + "/registry.sqlite")
        for id in ids {
            let statuses = try registry.transitions(jobId: id).map { "\($0.status)/\($0.attempt)" }
            #expect(statuses == ["queued/1", "running/1", "done/1"], "\(statuses)")
        }
        #expect(files(t, "done").count == 3)
        #expect(files(t, "new").isEmpty && files(t, "cur").isEmpty && files(t, "failed").isEmpty)
        sleep(1)
        #expect(lines(t.file("ran")).count == 3)
    }

    /// The orphans of a killed dispatcher finish before anyone looks: their exit status was kept,
    /// so a job that succeeded is recorded done without running again, and one that failed is a
    /// failed attempt, retried.
    @Test func jobsThatEndedAfterTheirDispatcherDiedAreRecordedOnce() throws {
        let t = TempDir("ner-orphan"); defer { t.remove() }
        let ok = try queue(t, count: 2, name: "ok")
        let bad = try queue(t, count: 1, name: "bad")
        let command = #"echo "$NER_JOB_ID $NER_ATTEMPT" >> "\#(t.path)/ran"; sleep 1; [ "$NER_ATTEMPT" = 2 ] || ! grep -q '"name":"bad"'"#
        let first = try spawn("ner-dispatch", ["--home", t.path, "--drain", "--max-running", "3", "--command", command])
        #expect(waitFor(20) { lines(t.file("ran")).count == 3 })
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        // Every orphan has ended and written its exit status.
        #expect(waitFor(20) { ((try? FileManager.default.contentsOfDirectory(atPath: t.path + "/spool/run")) ?? []).filter { $0.hasSuffix(".rc") }.count == 3 })
        let second = try run("ner-dispatch", ["--home", t.path, "--drain", "--poll", "0.05", "--command", command])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(lines(t.file("ran")).sorted() == (ok.map { "\($0) 1" } + bad.flatMap { ["\($0) 1", "\($0) 2"] }).sorted())
        let registry = try Registry(path: t.path + "/registry.sqlite")
        for id in ok {
            #expect(try registry.transitions(jobId: id).map { "\($0.status)/\($0.attempt)" } == ["queued/1", "running/1", "done/1"])
        }
        let statuses = try registry.transitions(jobId: bad[0]).map { "\($0.status)/\($0.attempt)" }
        #expect(statuses == ["queued/1", "running/1", "failed/1", "queued/2", "running/2", "done/2"], "\(statuses)")
        #expect(files(t, "done").count == 3)
    }

    /// A dispatcher that died after committing a job's end to the registry but before moving its
    /// claim to done/: the next one moves the claim, and neither runs the job again nor records it twice.
    @Test func jobRecordedDoneBeforeItsClaimMovedIsNotRunAgain() throws {
        let t = TempDir("ner-done-window"); defer { t.remove() }
        let ids = try queue(t, count: 1)
        let command = #"cat > /dev/null; echo "$NER_JOB_ID $NER_ATTEMPT" >> "\#(t.path)/ran""#
        let first = try run("ner-dispatch", ["--home", t.path, "--drain", "--poll", "0.05", "--command", command])
        #expect(first.status == 0, "\(first.stderr)")
        // Put the claim back as the dead dispatcher left it: in cur/, owned by a dead process here.
        let done = try #require(files(t, "done").first)
        #expect(rename("\(t.path)/spool/done/\(done)", "\(t.path)/spool/cur/\(done)@\(ProcessIdentity.current.host)@4194997@9") == 0)
        let second = try run("ner-dispatch", ["--home", t.path, "--drain", "--poll", "0.05", "--command", command])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(lines(t.file("ran")) == ["\(ids[0]) 1"])
        #expect(files(t, "done") == [done])
        #expect(files(t, "cur").isEmpty && files(t, "new").isEmpty)
        let registry = try Registry(path: t.path + "/registry.sqlite")
        #expect(try registry.transitions(jobId: ids[0]).map { "\($0.status)/\($0.attempt)" } == ["queued/1", "running/1", "done/1"])
    }

    /// The real pipeline, its dispatcher killed mid-training: the orphan finishes and registers,
    /// and the next dispatcher records that instead of training again. One job, one model.
    @Test func killedPipelineRegistersOneModel() throws {
        let t = TempDir("ner-k9"); defer { t.remove() }
        let data = TestTools.repoRoot + "/examples/data"
        let q = try run("ner-queue", ["--home", t.path, "--name", "k9", "--train", data + "/train.txt", "--dev", data + "/dev.txt",
                                      "--epochs", "2", "--threads", "1"])
        #expect(q.status == 0, "\(q.stderr)")
        let first = try spawn("ner-dispatch", ["--home", t.path, "--once"])
        #expect(waitFor(30) { ((try? FileManager.default.contentsOfDirectory(atPath: t.path + "/spool/run")) ?? []).contains { $0.hasSuffix(".pid") } })
        usleep(500_000)
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(waitFor(300) { ((try? FileManager.default.contentsOfDirectory(atPath: t.path + "/spool/run")) ?? []).contains { $0.hasSuffix(".rc") } })
        let second = try run("ner-dispatch", ["--home", t.path, "--drain"])
        #expect(second.status == 0, "\(second.stderr)")
        let list = try run("ner-register", ["list", "--home", t.path])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.lines.count == 1, "\(list.stdout)")
        #expect(files(t, "done").count == 1)
    }

    /// A hung job is stopped at its resources.time: SIGTERM to its process group, SIGKILL after
    /// --grace (this one ignores SIGTERM), a failed attempt with cause "time limit 00:00:02", and
    /// nothing of it left running.
    @Test func hungJobIsStoppedAtItsTimeLimit() throws {
        let t = TempDir("ner-time"); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let q = try run("ner-queue", ["--home", t.path], stdin: #"{"name":"hung","train":"\#(train)","resources":{"time":"00:00:02"}}"# + "\n")
        #expect(q.status == 0, "\(q.stderr)")
        let command = #"trap "" TERM; sleep 1000 & echo $! > "\#(t.path)/pid"; wait"#
        let started = Date()
        let r = try run("ner-dispatch", ["--home", t.path, "--drain", "--max-attempts", "1", "--grace", "1", "--poll", "0.05", "--command", command])
        let took = Date().timeIntervalSince(started)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(took > 2.5 && took < 10, "took \(took) s")
        let dead = try JSON.parse(Data(contentsOf: URL(fileURLWithPath: "\(t.path)/spool/failed/\(try #require(files(t, "failed").first))")))
        #expect(dead["error"]?.stringValue == "time limit 00:00:02")
        let sleeper = try #require(Int32(lines(t.file("pid")).first ?? ""))
        #expect(waitFor(2) { !alive(sleeper) }, "the job's sleep outlived it")
    }

    /// SIGTERM: the dispatcher stops claiming, stops its running job (this one ignores SIGTERM, so
    /// SIGKILL after --grace), puts it back in the queue with its attempt unspent, and exits 0.
    @Test func sigtermStopsRunningJobsAndRequeuesThemUnspent() throws {
        let t = TempDir("ner-sigterm"); defer { t.remove() }
        let ids = try queue(t, count: 2, name: "s")
        let command = #"trap "" TERM; sleep 1000 & echo $! >> "\#(t.path)/pids"; wait"#
        let d = try spawn("ner-dispatch", ["--home", t.path, "--watch", "--grace", "1", "--poll", "0.05", "--command", command])
        #expect(waitFor(20) { lines(t.file("pids")).count == 1 })
        let signalled = Date()
        kill(d.processIdentifier, SIGTERM)
        #expect(waitFor(8) { !d.isRunning }, "the dispatcher did not exit within its grace period")
        if d.isRunning { kill(d.processIdentifier, SIGKILL) }
        d.waitUntilExit()
        #expect(d.terminationStatus == 0)
        #expect(Date().timeIntervalSince(signalled) < 8)
        #expect(files(t, "new").count == 2 && files(t, "cur").isEmpty && files(t, "failed").isEmpty)
        for name in files(t, "new") {
            let job = try JSON.parse(Data(contentsOf: URL(fileURLWithPath: "\(t.path)/spool/new/\(name)")))
            #expect(job["attempt"] == 1)
        }
        let sleeper = try #require(Int32(lines(t.file("pids")).first ?? ""))
        #expect(waitFor(2) { !alive(sleeper) }, "the job's sleep outlived the dispatcher")
        let registry = try Registry(path: t.path + "/registry.sqlite")
        let stopped = try #require(try ids.compactMap { try registry.job($0) }.first { $0.status == "queued" && $0.error != nil })
        #expect(stopped.attempt == 1)
    }

    /// A failing job is retried, then dead-lettered with its cause; the registry shows `failed`
    /// with the error, never a job stuck "running".
    @Test func failingJobIsRetriedThenDeadLettered() throws {
        let t = TempDir("ner-fail"); defer { t.remove() }
        let ids = try queue(t, count: 1, name: "bad")
        let command = #"cat > /dev/null; echo "$NER_ATTEMPT" >> "\#(t.path)/attempts"; echo "ner-train: error: train.txt:3: expected 4 columns, found 2" >&2; exit 65"#
        let r = try run("ner-dispatch", ["--home", t.path, "--drain", "--max-attempts", "3", "--poll", "0.02", "--command", command])
        #expect(r.status == 1)
        #expect(r.stderr.contains("1 job(s) dead-lettered"))
        #expect(try String(contentsOfFile: t.file("attempts"), encoding: .utf8) == "1\n2\n3\n")
        #expect(files(t, "failed").count == 1)
        let dead = try JSON.parse(Data(contentsOf: URL(fileURLWithPath: "\(t.path)/spool/failed/\(files(t, "failed")[0])")))
        #expect(dead["error"]?.stringValue == "exit 65: ner-train: error: train.txt:3: expected 4 columns, found 2")
        #expect(dead["attempt"] == 3)
        let registry = try Registry(path: t.path + "/registry.sqlite")
        let job = try #require(try registry.job(ids[0]))
        #expect(job.status == "failed")
        #expect(job.error?.contains("expected 4 columns") == true)
        let statuses = try registry.transitions(jobId: ids[0]).map(\.status)
        #expect(statuses == ["queued", "running", "failed", "queued", "running", "failed", "queued", "running", "failed"])
        let events = try r.lines.map { try JSON.parse($0) }
        #expect(events.last?["status"] == "dead-lettered")
    }

    /// Cancelling a running job stops its processes and does not retry it.
    @Test func cancellingARunningJobStopsIt() throws {
        let t = TempDir("ner-cancel"); defer { t.remove() }
        let ids = try queue(t, count: 1, name: "c")
        let d = try spawn("ner-dispatch", ["--home", t.path, "--once", "--poll", "0.05", "--command", "sleep 30"])
        let deadline = Date().addingTimeInterval(10)
        while files(t, "cur").isEmpty && Date() < deadline { usleep(50_000) }
        let c = try run("ner-queue", ["--home", t.path, "--cancel", ids[0]])
        #expect(c.status == 0, "\(c.stderr)")
        d.waitUntilExit()
        #expect(Date() < deadline.addingTimeInterval(10))
        #expect(files(t, "failed").count == 1)
        let registry = try Registry(path: t.path + "/registry.sqlite")
        #expect(try registry.job(ids[0])?.status == "cancelled")
    }

    /// Regression: jobs inherited the dispatcher's descriptors (registry files, its parent's pipes),
    /// so a parent waiting for the killed dispatcher's pipes waited for its jobs too.
    @Test func jobsInheritOnlyStandardDescriptors() throws {
        let t = TempDir("ner-fds"); defer { t.remove() }
        _ = try queue(t, count: 1, name: "fd")
        let r = try run("ner-dispatch", ["--home", t.path, "--once", "--command", #"ls /proc/$$/fd > "\#(t.path)/fds""#])
        #expect(r.status == 0, "\(r.stderr)")
        let fds = try String(contentsOfFile: t.file("fds"), encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(fds.filter { $0 != "255" } == ["0", "1", "2"])
    }

    /// --max-running is respected by --once: it claims what may run now and exits when those end.
    @Test func onceClaimsOnlyUpToTheCap() throws {
        let t = TempDir("ner-once"); defer { t.remove() }
        _ = try queue(t, count: 5, name: "o")
        let r = try run("ner-dispatch", ["--home", t.path, "--once", "--max-running", "2", "--poll", "0.02", "--command", "cat > /dev/null"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(files(t, "done").count == 2)
        #expect(files(t, "new").count == 3)
        let statuses = try r.lines.map { try JSON.parse($0)["status"]!.stringValue! }
        #expect(statuses.sorted() == ["done", "done", "running", "running"])
    }
}
