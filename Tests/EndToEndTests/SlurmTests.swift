import Foundation
import NERCore
import NERRegistry
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// ner-dispatch --backend slurm against a real Slurm (`.ci/run` starts one with
/// ../shared/tools/local-slurm.sh). Skipped when the Slurm commands are missing or `sinfo` cannot
/// reach a controller.
enum SlurmCluster {
    static func tool(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        where access("\(dir)/\(name)", X_OK) == 0 {
            return "\(dir)/\(name)"
        }
        return nil
    }

    static let available: Bool = {
        guard tool("sbatch") != nil, tool("squeue") != nil, tool("scancel") != nil, let sinfo = tool("sinfo") else {
            print("SlurmTests skipped: sbatch/squeue/sinfo not on PATH (start one with ../shared/tools/local-slurm.sh)")
            return false
        }
        guard let r = try? run(sinfo, ["-h"]), r.status == 0 else {
            print("SlurmTests skipped: sinfo cannot reach a Slurm controller")
            return false
        }
        return true
    }()

    /// `squeue` lines (`%i|%T|%j`) of every job Slurm still knows, finished ones included.
    static func jobs(states: String = "all") -> [(id: String, state: String, name: String)] {
        guard let r = try? run(tool("squeue")!, ["-h", "-r", "-t", states, "-o", "%i|%T|%j"]) else { return [] }
        return r.lines.compactMap {
            let f = $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            return f.count == 3 ? (f[0], f[1], f[2]) : nil
        }
    }
}

@Suite(.enabled(if: SlurmCluster.available, "needs a running Slurm (sbatch, squeue, sinfo)"))
struct SlurmTests {
    /// Queues `count` one-CPU jobs named `name` (unique per test, so tests running at once can
    /// tell their Slurm jobs apart).
    func queue(_ t: TempDir, count: Int, name: String, time: String = "10") throws -> [String] {
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let line = #"{"name":"\#(name)","train":"\#(train)","resources":{"cpus":1,"mem":"64M","time":"\#(time)"}}"#
        let r = try run("ner-queue", ["--home", t.path], stdin: Array(repeating: line, count: count).joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        return try r.lines.map { try JSON.parse($0)["job_id"]!.stringValue! }
    }

    func spawn(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestTools.path("ner-dispatch"))
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    func files(_ t: TempDir, _ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(t.path)/spool/\(dir)")) ?? []).filter { !$0.hasPrefix(".") }
    }

    /// Six jobs through Slurm with --max-running 2: Slurm never holds more than two of them, and
    /// every job is registered with its Slurm job id and every transition.
    @Test func sixJobsNeverMoreThanTwoHeld() throws {
        let t = TempDir("ner-slurm-cap"); defer { t.remove() }
        let name = "cap\(UInt32.random(in: 0..<1_000_000))"
        let ids = try queue(t, count: 6, name: name)
        let d = try spawn(["--home", t.path, "--backend", "slurm", "--drain", "--max-running", "2", "--poll", "0.2",
                           "--command", "cat > /dev/null; sleep 1"])
        var peak = 0
        while d.isRunning {
            let held = SlurmCluster.jobs(states: "PD,R,CG,CF").filter { $0.name.hasPrefix(name + "-") }.count
            peak = max(peak, held)
            usleep(100_000)
        }
        #expect(d.terminationStatus == 0)
        #expect(peak <= 2)
        #expect(peak >= 1)
        #expect(files(t, "done").count == 6)
        let registry = try Registry(path: t.file("registry.sqlite"))
        var slurmIds: Set<String> = []
        for id in ids {
            let job = try #require(try registry.job(id))
            #expect(job.status == "done")
            let slurmId = try #require(job.backendId)
            #expect(Int(slurmId) != nil)
            slurmIds.insert(slurmId)
            #expect(job.record?["slurm_job_id"]?.stringValue == slurmId)
            #expect(try registry.transitions(jobId: id).map(\.status) == ["queued", "running", "done"])
        }
        #expect(slurmIds.count == 6)
        let ours = SlurmCluster.jobs().filter { $0.name.hasPrefix(name + "-") }
        #expect(ours.count == 6)
        #expect(ours.allSatisfy { $0.state == "COMPLETED" && slurmIds.contains($0.id) })
    }

    /// A Bayesian sweep through Slurm, driven by `ner-dispatch --once` as cron runs it: each run
    /// records the trials that ended and makes the next ones; the sweep ends with every trial
    /// made once and scored.
    @Test func aBayesSweepRunsUnderSlurmFromCron() throws {
        let t = TempDir("ner-slurm-bayes"); defer { t.remove() }
        let name = "bayes\(UInt32.random(in: 0..<1_000_000))"
        let train = t.write("train.txt", "EU I-ORG\n\n")
        // The score is highest at learning rate 0.001.
        let score = t.write("score.sh", #"""
            lr=$(grep -o '"learning_rate":[0-9.eE+-]*' | head -1 | cut -d: -f2)
            awk -v lr="$lr" 'BEGIN { x = log(lr) / log(10) + 3; printf "{\"metrics\":{\"dev\":{\"f1\":%.6f}}}\n", -x * x }'
            """#)
        let spec = t.write("bayes.json", #"""
            {"name": "\#(name)", "method": "bayes", "trials": 4, "parallel": 2,
             "base": {"train": "\#(train)", "resources": {"cpus": 1, "mem": "64M", "time": "5"}},
             "space": {"learning_rate": {"log_uniform": [0.00001, 0.1]}}}
            """#)
        let q = try run("ner-queue", ["--home", t.path, "--sweep", spec])
        #expect(q.status == 0, "\(q.stderr)")
        let first = try #require(q.lines.first)
        let sweepId = try #require(try JSON.parse(first)["sweep_id"]?.stringValue)
        let registry = try Registry(path: t.file("registry.sqlite"))
        let deadline = Date().addingTimeInterval(120)
        while try registry.sweep(sweepId)?.finishedAt == nil && Date() < deadline {
            let d = try run("ner-dispatch", ["--home", t.path, "--backend", "slurm", "--once", "--max-running", "2",
                                             "--command", "bash \(score)"])
            #expect(d.status == 0, "\(d.stderr)")
            usleep(500_000)
        }
        let trials = try registry.sweepTrials(sweepId)
        #expect(trials.map(\.trial) == [1, 2, 3, 4])
        for trial in trials {
            let job = try #require(try registry.job(trial.jobId))
            #expect(job.status == "done")
            #expect(job.record?["metrics"]?["dev"]?["f1"]?.doubleValue != nil)
        }
        #expect(try registry.sweep(sweepId)?.finishedAt != nil)
    }

    /// A job that fails, one that hits its time limit and one cancelled with scancel: each attempt
    /// ends `failed` with Slurm's verdict, is retried as configured, and is dead-lettered at the end.
    @Test func failedTimedOutAndCancelledJobsAreRetriedThenDeadLettered() throws {
        let t = TempDir("ner-slurm-fail"); defer { t.remove() }
        let slow = TempDir("ner-slurm-timeout"); defer { slow.remove() }
        let tag = UInt32.random(in: 0..<1_000_000)
        // Slurm enforces limits in whole minutes (checked every 30 s), so this one costs 60-90 s;
        // it runs beside the others with a single attempt.
        let timedOut = try queue(slow, count: 1, name: "timeout\(tag)", time: "1")[0]
        let timeoutRun = try spawn(["--home", slow.path, "--backend", "slurm", "--drain", "--max-attempts", "1",
                                    "--poll", "1", "--command", "cat > /dev/null; sleep 300"])
        let failing = try queue(t, count: 1, name: "fail\(tag)")[0]
        let cancelled = try queue(t, count: 1, name: "scancel\(tag)")[0]
        let command = """
            cat > /dev/null; case "$NER_JOB_ID" in fail*) echo "ner-train: error: train.txt:3: expected 4 columns, found 2" >&2; exit 3 ;; esac; sleep 60
            """
        let d = try spawn(["--home", t.path, "--backend", "slurm", "--drain", "--max-attempts", "2", "--poll", "0.2",
                           "--command", command])
        var scancelled: Set<String> = []
        while d.isRunning {
            for job in SlurmCluster.jobs(states: "R") where job.name.hasPrefix(cancelled) && !scancelled.contains(job.id) {
                _ = try run(SlurmCluster.tool("scancel")!, [job.id])
                scancelled.insert(job.id)
            }
            usleep(200_000)
        }
        #expect(d.terminationStatus == 1)
        #expect(scancelled.count == 2)
        let registry = try Registry(path: t.file("registry.sqlite"))
        for (id, verdict) in [(failing, "FAILED (exit 3:0)"), (cancelled, "CANCELLED")] {
            let job = try #require(try registry.job(id))
            #expect(job.status == "failed")
            #expect(job.attempt == 2)
            #expect(job.error?.contains(verdict) == true, "\(job.error ?? "")")
            let transitions = try registry.transitions(jobId: id)
            #expect(transitions.map(\.status) == ["queued", "running", "failed", "queued", "running", "failed"])
            #expect(transitions.filter { $0.status == "failed" }.allSatisfy { $0.detail?.contains(verdict) == true })
        }
        #expect(try registry.job(failing)?.error?.contains("expected 4 columns, found 2") == true)
        #expect(files(t, "failed").count == 2)

        timeoutRun.waitUntilExit()
        #expect(timeoutRun.terminationStatus == 1)
        let slowRegistry = try Registry(path: slow.file("registry.sqlite"))
        let job = try #require(try slowRegistry.job(timedOut))
        #expect(job.status == "failed")
        #expect(job.error?.contains("TIMEOUT") == true, "\(job.error ?? "")")
        #expect(try slowRegistry.transitions(jobId: timedOut).map(\.status) == ["queued", "running", "failed"])
        #expect(files(slow, "failed").count == 1)
    }

    /// kill -9 of the dispatcher while its jobs run under Slurm: the next dispatcher takes them
    /// over from the registry, records their end, and submits none of them again.
    @Test func killedDispatcherJobsAreAdoptedNotResubmitted() throws {
        let t = TempDir("ner-slurm-kill"); defer { t.remove() }
        let name = "kill\(UInt32.random(in: 0..<1_000_000))"
        let ids = try queue(t, count: 3, name: name)
        let command = #"cat > /dev/null; sleep 4; echo "$NER_JOB_ID $NER_ATTEMPT" >> "\#(t.path)/ran""#
        let args = ["--home", t.path, "--backend", "slurm", "--drain", "--max-running", "3", "--poll", "0.2", "--command", command]
        let first = try spawn(args)
        let deadline = Date().addingTimeInterval(30)
        let registry = try Registry(path: t.file("registry.sqlite"))
        while Date() < deadline, try registry.jobs(status: "running").count < 3 { usleep(100_000) }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(try registry.jobs(status: "running").count == 3)
        let second = try run("ner-dispatch", args)
        #expect(second.status == 0, "\(second.stderr)")
        let ran = try String(contentsOfFile: t.file("ran"), encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(ran.sorted() == ids.map { "\($0) 1" }.sorted())
        for id in ids {
            #expect(try registry.transitions(jobId: id).map(\.status) == ["queued", "running", "done"])
        }
        let submitted = SlurmCluster.jobs().filter { $0.name.hasPrefix(name + "-") }
        #expect(submitted.count == 3)
        #expect(Set(submitted.map(\.name)) == Set(ids.map { $0 + ".1" }))
        #expect(files(t, "done").count == 3 && files(t, "cur").isEmpty)
    }
}

extension SlurmTests {
    /// A 4-point sweep goes to Slurm as one job array; `best` and `promote` pick the trial with
    /// the highest dev F1.
    @Test func sweepRunsAsOneJobArray() throws {
        let t = TempDir("ner-slurm-sweep"); defer { t.remove() }
        let (sweepId, jobIds) = try FakeTraining.queueSweep(t, name: "arr", rates: ["0.001", "0.002", "0.003", "0.004"])
        let d = try run("ner-dispatch", ["--home", t.path, "--backend", "slurm", "--drain", "--max-running", "4",
                                         "--poll", "0.2", "--command", FakeTraining.command(in: t)])
        #expect(d.status == 0, "\(d.stderr)")
        let tasks = SlurmCluster.jobs().filter { $0.name == sweepId + ".array" }
        #expect(tasks.count == 4)
        let arrayId = try #require(tasks.first?.id.split(separator: "_").first.map(String.init))
        #expect(Set(tasks.map(\.id)) == Set((0..<4).map { "\(arrayId)_\($0)" }))
        #expect(tasks.allSatisfy { $0.state == "COMPLETED" })
        let registry = try Registry(path: t.file("registry.sqlite"))
        for id in jobIds {
            let job = try #require(try registry.job(id))
            #expect(job.status == "registered")
            #expect(job.backendId?.hasPrefix(arrayId + "_") == true)
            #expect(try registry.transitions(jobId: id).map(\.status) == ["queued", "running", "trained", "packed", "registered"])
        }
        let best = try run("ner-register", ["best", "--sweep", sweepId, "--by", "dev.f1", "--home", t.path])
        #expect(best.status == 0, "\(best.stderr)")
        let winner = try JSON.parse(best.stdout)
        #expect(winner["score"]?.doubleValue == 0.91)
        let promote = try run("ner-register", ["promote", "--sweep", sweepId, "--by", "dev.f1", "--home", t.path])
        #expect(promote.status == 0, "\(promote.stderr)")
        #expect(try registry.aliases(name: "arr")["production"] == winner["model_id"]?.stringValue)
        #expect(try registry.model(winner["model_id"]!.stringValue!)?.record["sweep_params"]?["learning_rate"]?.doubleValue == 0.003)
    }
}

extension SlurmTests {
    /// The cron mode: `--once` submits and exits without waiting; `ner-queue --cancel` scancels
    /// the Slurm job while no dispatcher runs; the next dispatcher takes the job over and records
    /// it cancelled, not retried.
    @Test func onceSubmitsAndLeavesThenCancelReachesSlurm() throws {
        let t = TempDir("ner-slurm-once"); defer { t.remove() }
        let name = "once\(UInt32.random(in: 0..<1_000_000))"
        let id = try queue(t, count: 1, name: name)[0]
        let args = ["--home", t.path, "--backend", "slurm", "--max-running", "1", "--poll", "0.2",
                    "--command", "cat > /dev/null; sleep 60"]
        let started = Date()
        let once = try run("ner-dispatch", args + ["--once"])
        #expect(once.status == 0, "\(once.stderr)")
        #expect(Date().timeIntervalSince(started) < 20)
        #expect(files(t, "cur").count == 1)
        let registry = try Registry(path: t.file("registry.sqlite"))
        let slurmId = try #require(try registry.job(id)?.backendId)
        #expect(SlurmCluster.jobs().contains { $0.id == slurmId && $0.name == id + ".1" })

        let cancel = try run("ner-queue", ["--home", t.path, "--cancel", id])
        #expect(cancel.status == 0, "\(cancel.stderr)")
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, SlurmCluster.jobs().first(where: { $0.id == slurmId })?.state != "CANCELLED" { usleep(100_000) }
        #expect(SlurmCluster.jobs().first { $0.id == slurmId }?.state == "CANCELLED")

        // Exit 1: the cancelled job ends in spool/failed during this run.
        let after = try run("ner-dispatch", args + ["--drain"])
        #expect(after.status == 1, "\(after.stderr)")
        #expect(try registry.job(id)?.status == "cancelled")
        #expect(try registry.transitions(jobId: id).map(\.status) == ["queued", "running", "cancelled"])
        #expect(files(t, "failed").count == 1 && files(t, "cur").isEmpty && files(t, "new").isEmpty)
    }
}

/// What needs no cluster: a machine without the Slurm commands is told so plainly.
@Suite struct SlurmBackendTests {
    @Test func missingSbatchIsExit69WithOneLine() throws {
        let t = TempDir("ner-no-slurm"); defer { t.remove() }
        let r = try run("ner-dispatch", ["--home", t.path, "--backend", "slurm", "--once"], env: ["PATH": "/nonexistent"])
        #expect(r.status == 69)
        #expect(r.stderr == "ner-dispatch: error: sbatch not found on PATH: --backend slurm needs the Slurm client commands\n")
    }

    /// Stand-in Slurm commands: sbatch fails with `message`, the others answer nothing.
    func fakeSlurm(_ t: TempDir, sbatchError message: String) -> [String: String] {
        for tool in ["squeue", "scancel", "scontrol"] { t.write("bin/\(tool)", "#!/bin/sh\nexit 1\n") }
        t.write("bin/sbatch", "#!/bin/sh\necho 'sbatch: error: \(message)' >&2\nexit 1\n")
        for tool in ["sbatch", "squeue", "scancel", "scontrol"] { chmod(t.file("bin/\(tool)"), 0o755) }
        return ["PATH": t.file("bin") + ":/usr/bin:/bin"]
    }

    func queueTwo(_ t: TempDir) throws {
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let r = try run("ner-queue", ["--home", t.path], stdin: "{\"train\":\"\(train)\"}\n{\"train\":\"\(train)\"}\n")
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// A controller that does not answer is exit 69 and costs no attempt: the jobs stay queued.
    @Test func controllerDownIsExit69AndJobsStayQueued() throws {
        let t = TempDir("ner-slurm-down"); defer { t.remove() }
        try queueTwo(t)
        let env = fakeSlurm(t, sbatchError: "Batch job submission failed: Unable to contact slurm controller (connect failure)")
        let r = try run("ner-dispatch", ["--home", t.path, "--backend", "slurm", "--once", "--max-running", "2"], env: env)
        #expect(r.status == 69)
        #expect(r.stderr == "ner-dispatch: error: sbatch: Batch job submission failed: Unable to contact slurm controller (connect failure)\n")
        let list = try run("ner-queue", ["--home", t.path, "--list"])
        let jobs = try list.lines.map { try JSON.parse($0) }
        #expect(jobs.count == 2)
        #expect(jobs.allSatisfy { $0["state"] == "queued" && $0["attempt"] == 1 })
    }

    /// A job sbatch refuses (a partition that does not exist) is a failed attempt with sbatch's words.
    @Test func refusedSubmissionIsAFailedAttempt() throws {
        let t = TempDir("ner-slurm-refused"); defer { t.remove() }
        try queueTwo(t)
        let env = fakeSlurm(t, sbatchError: "Batch job submission failed: Invalid partition name specified")
        let r = try run("ner-dispatch", ["--home", t.path, "--backend", "slurm", "--drain", "--max-running", "2",
                                         "--max-attempts", "2", "--poll", "0.05"], env: env)
        #expect(r.status == 1)
        let list = try run("ner-queue", ["--home", t.path, "--list"])
        let jobs = try list.lines.map { try JSON.parse($0) }
        #expect(jobs.count == 2)
        #expect(jobs.allSatisfy {
            $0["state"] == "failed" && $0["attempt"] == 2
                && $0["error"]?.stringValue == "sbatch rejected the job: Batch job submission failed: Invalid partition name specified"
        })
    }
}

extension SlurmTests {
    /// examples/slurm/infer-array.sbatch with 4 shards per input, one input per format ner-infer
    /// reads: Slurm runs each as a 4-task array and a merge job after it, and each merged output is
    /// byte for byte what one ner-infer over the whole input writes.
    @Test func inferArrayOfFourShardsMatchesOneRun() throws {
        let t = TempDir("ner-slurm-infer"); defer { t.remove() }
        let name = "infer\(UInt32.random(in: 0..<1_000_000))"
        try InferArray.registerModel(t.path, name: name)
        var submitted: [(format: String, input: String, output: String, array: String, merge: String)] = []
        for (format, input) in InferArray.inputs(t, copies: 3) {
            let output = t.file("out.\(format)")
            let r = try InferArray.submit(t.path, ["4", input, output, "--model", name, "--format", format],
                                          env: ["NER_HOME": t.path, "NER_SBATCH_ARGS": "--cpus-per-task=1 --mem=256M --time=5"])
            #expect(r.status == 0, "\(format): \(r.stderr)")
            let array = try #require(r.stderr.firstMatch(of: #/array (\d+) /#)?.1).description
            submitted.append((format, input, output, array, r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        let merges = Set(submitted.map(\.merge))
        let deadline = Date().addingTimeInterval(50)
        func ended() -> [String: String] {
            Dictionary(SlurmCluster.jobs().filter { merges.contains($0.id) }.map { ($0.id, $0.state) }) { a, _ in a }
        }
        while Date() < deadline, ended().count < merges.count || ended().values.contains(where: { ["PENDING", "RUNNING", "COMPLETING", "CONFIGURING"].contains($0) }) {
            usleep(200_000)
        }
        for s in submitted {
            #expect(ended()[s.merge] == "COMPLETED", "\(s.format): merge job \(s.merge) \(ended()[s.merge] ?? "unknown")")
            let tasks = SlurmCluster.jobs().filter { $0.id.hasPrefix(s.array + "_") }
            #expect(Set(tasks.map(\.id)) == Set((0..<4).map { "\(s.array)_\($0)" }), "\(s.format): \(tasks)")
            #expect(tasks.allSatisfy { $0.state == "COMPLETED" })
            let merged = try? String(contentsOfFile: s.output, encoding: .utf8)
            #expect(merged == (try InferArray.oneRun(t.path, name, s.format, s.input)), "\(s.format)")
            #expect(!FileManager.default.fileExists(atPath: s.output + ".parts"))
        }
    }
}
