import Foundation
import NERCore
import NERRegistry
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Bayesian sweeps through the real ner-queue and ner-dispatch, with a `--command` stand-in that
/// scores each trial by Branin's function of its learning rate and dropout (the search maximises
/// minus Branin, whose best is -0.397887).
@Suite struct BayesSweepTests {
    /// Reads the trial's learning_rate and dropout from its record, maps them onto Branin's domain
    /// ([-5, 10] × [0, 15]) and prints the score as the job's result. Trials with dropout above
    /// `failAbove` exit 3 instead, like a run that diverged.
    static func objective(in t: TempDir, failAbove: Double = 1) -> String {
        t.write("branin.sh", #"""
            rec=$(cat)
            lr=$(printf '%s' "$rec" | grep -o '"learning_rate":[0-9.eE+-]*' | head -1 | cut -d: -f2)
            dr=$(printf '%s' "$rec" | grep -o '"dropout":[0-9.eE+-]*' | head -1 | cut -d: -f2)
            echo "$NER_JOB_ID" >> "$NER_HOME/ran"
            awk -v lr="$lr" -v dr="$dr" -v cap="\#(failAbove)" 'BEGIN {
                if (dr + 0 > cap + 0) { print "diverged" > "/dev/stderr"; exit 3 }
                pi = atan2(0, -1)
                x1 = -5 + 15 * (log(lr) / log(10) + 5) / 4; x2 = 15 * dr / 0.9
                a = x2 - 5.1 / (4 * pi * pi) * x1 * x1 + 5 / pi * x1 - 6
                f = a * a + 10 * (1 - 1 / (8 * pi)) * cos(x1) + 10
                printf "{\"metrics\":{\"dev\":{\"f1\":%.6f}}}\n", -f
            }'
            """#)
        return "bash \(t.file("branin.sh"))"
    }

    static func sweepFile(_ t: TempDir, trials: Int, parallel: Int, seed: Int = 1) -> String {
        let train = t.write("train.txt", "EU I-ORG\n\n")
        return t.write("bayes.json", """
            {"name": "branin", "method": "bayes", "trials": \(trials), "parallel": \(parallel), "seed": \(seed),
             "base": {"train": "\(train)", "resources": {"time": "1:00"}},
             "space": {"learning_rate": {"log_uniform": [0.00001, 0.1]}, "dropout": {"uniform": [0, 0.9]}}}
            """)
    }

    static func start(_ t: TempDir, trials: Int, parallel: Int) throws -> (sweepId: String, queued: [JSON]) {
        let r = try run("ner-queue", ["--home", t.path, "--sweep", sweepFile(t, trials: trials, parallel: parallel)])
        #expect(r.status == 0, "\(r.stderr)")
        let queued = try r.lines.map { try JSON.parse($0) }
        let sweepId = try #require(queued.first?["sweep_id"]?.stringValue)
        return (sweepId, queued)
    }

    func ran(_ t: TempDir) -> [String] {
        ((try? String(contentsOfFile: t.path + "/ran", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// A dispatcher drains the sweep: each finished trial brings the next, every trial runs once,
    /// and the sweep ends with all of them made and scored, the best near Branin's minimum.
    @Test func aDispatcherRunsTheWholeSweep() throws {
        let t = TempDir("ner-bayes"); defer { t.remove() }
        let (sweepId, queued) = try Self.start(t, trials: 16, parallel: 2)
        #expect(queued.count == 2)
        let d = try run("ner-dispatch", ["--home", t.path, "--drain", "--max-running", "2", "--poll", "0.02",
                                         "--command", Self.objective(in: t)])
        #expect(d.status == 0, "\(d.stderr)")
        let registry = try Registry(path: t.path + "/registry.sqlite")
        let trials = try registry.sweepTrials(sweepId)
        #expect(trials.map(\.trial) == Array(1...16))
        #expect(Set(trials.map(\.jobId)).count == 16)
        #expect(ran(t).sorted() == trials.map(\.jobId).sorted())
        #expect(try registry.sweep(sweepId)?.finishedAt != nil)
        let scores = try trials.map { try #require(registry.job($0.jobId)?.record?["metrics"]?["dev"]?["f1"]?.doubleValue) }
        let regret = -scores.max()! - 0.397887
        print("bayes sweep of 16 trials under ner-dispatch: best regret \(regret)")
        #expect(regret < 1.5, "best regret \(regret) after 16 trials")
        // The first trials cover the space; the later ones come from the model.
        #expect(d.stderr.contains("sweep \(sweepId): 16 of 16 trial(s) made"))
    }

    /// `--suggest` run again queues nothing more; `--n` raises the number in flight; racing steps
    /// together make each trial once.
    @Test func suggestIsIdempotentAndRacesSafely() throws {
        let t = TempDir("ner-bayes-suggest"); defer { t.remove() }
        let (sweepId, queued) = try Self.start(t, trials: 10, parallel: 2)
        #expect(queued.count == 2)
        for _ in 0..<2 {
            let again = try run("ner-queue", ["--home", t.path, "--suggest", sweepId])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.isEmpty)
            #expect(again.stderr.contains("2 of 10 trial(s) made, 2 in flight"))
        }
        let steps = try (0..<4).map { _ in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: TestTools.path("ner-queue"))
            p.arguments = ["--home", t.path, "--suggest", sweepId, "--n", "5"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        for p in steps { p.waitUntilExit(); #expect(p.terminationStatus == 0) }
        let registry = try Registry(path: t.path + "/registry.sqlite")
        #expect(try registry.sweepTrials(sweepId).count == 5)
        let spooled = try FileManager.default.contentsOfDirectory(atPath: t.path + "/spool/new")
        #expect(spooled.count == 5)

        let unknown = try run("ner-queue", ["--home", t.path, "--suggest", "nope-123"])
        #expect(unknown.status == 66)
        #expect(unknown.stderr.contains("no sweep nope-123"))
        let zero = try run("ner-queue", ["--home", t.path, "--suggest", sweepId, "--n", "0"])
        #expect(zero.status == 64)
    }

    /// Failed trials count as failed, are never tried again, and the sweep still makes all its
    /// trials and finishes.
    @Test func failedTrialsCountAsFailedAndAreNotSuggestedAgain() throws {
        let t = TempDir("ner-bayes-fail"); defer { t.remove() }
        let (sweepId, _) = try Self.start(t, trials: 10, parallel: 2)
        let d = try run("ner-dispatch", ["--home", t.path, "--drain", "--max-running", "2", "--max-attempts", "1",
                                         "--poll", "0.02", "--command", Self.objective(in: t, failAbove: 0.6)])
        #expect(d.status == 1, "dead-lettered trials make the run exit 1: \(d.stderr)")
        let registry = try Registry(path: t.path + "/registry.sqlite")
        let trials = try registry.sweepTrials(sweepId)
        #expect(trials.count == 10)
        let failed = try trials.filter { try registry.job($0.jobId)?.status == "failed" }
        #expect(!failed.isEmpty, "the Latin hypercube puts some first trials above dropout 0.6")
        #expect(failed.allSatisfy { ($0.params["dropout"]?.doubleValue ?? 0) > 0.6 })
        let points = trials.map { [$0.params["learning_rate"]!.doubleValue!, $0.params["dropout"]!.doubleValue!] }
        #expect(Set(points.map { "\($0)" }).count == 10, "no point is tried twice")
        #expect(try registry.sweep(sweepId)?.finishedAt != nil)
        #expect(d.stderr.contains("\(failed.count) failed"))
    }

    /// A dispatcher killed mid-sweep, then another: every trial is made once and runs once. A trial
    /// recorded in the registry whose job never reached the spool (a crash between the two writes)
    /// is queued by the next step.
    @Test func theSweepSurvivesAKilledDispatcherAndALostJob() throws {
        let t = TempDir("ner-bayes-kill"); defer { t.remove() }
        let (sweepId, _) = try Self.start(t, trials: 8, parallel: 2)
        let command = "sleep 0.3; " + Self.objective(in: t)
        let first = Process()
        first.executableURL = URL(fileURLWithPath: TestTools.path("ner-dispatch"))
        first.arguments = ["--home", t.path, "--watch", "--max-running", "2", "--poll", "0.02", "--command", command]
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        let registry = try Registry(path: t.path + "/registry.sqlite")
        #expect(waitFor(30) { ((try? registry.sweepTrials(sweepId).count) ?? 0) >= 4 })
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()

        // A trial the registry holds but the spool never got.
        var made = try registry.sweepTrials(sweepId)
        if made.count < 8 {
            var record = made[0].record
            let lostId = "branin-lost-\(made.count + 1)"
            record["job_id"] = .string(lostId)
            record["sweep_trial"] = .int(Int64(made.count + 1))
            try registry.addSweepTrials([SweepTrialRow(sweepId: sweepId, trial: made.count + 1, jobId: lostId,
                                                       params: made[0].params, record: record)])
        }
        let second = try run("ner-dispatch", ["--home", t.path, "--drain", "--max-running", "2", "--poll", "0.02",
                                              "--command", command])
        #expect(second.status == 0, "\(second.stderr)")
        made = try registry.sweepTrials(sweepId)
        #expect(made.map(\.trial) == Array(1...8))
        #expect(ran(t).sorted() == made.map(\.jobId).sorted(), "every trial ran exactly once")
        #expect(try registry.sweep(sweepId)?.finishedAt != nil)
    }
}

private func waitFor(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}
