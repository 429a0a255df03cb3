import Foundation
import NERCore
import NERRegistry
import Testing
import TestSupport

/// A stand-in for ner-train: it "trains" in no time, scoring each trial by its learning rate
/// (0.003 wins), and hands a trained record to the real ner-pack | ner-register.
enum FakeTraining {
    static let scores: [String: Double] = ["0.001": 0.62, "0.002": 0.78, "0.003": 0.91, "0.004": 0.55]

    static func command(in t: TempDir) -> String {
        let cases = scores.map { "\($0.key)) f1=\($0.value) ;;" }.joined(separator: " ")
        t.write("fake-train.sh", """
            rec=$(cat)
            lr=$(printf '%s' "$rec" | grep -o '"learning_rate":[0-9.e-]*' | head -1 | cut -d: -f2)
            case "$lr" in \(cases) *) f1=0.1 ;; esac
            d="$NER_HOME/models/$NER_JOB_ID"; mkdir -p "$d"; echo "weights of $NER_JOB_ID" > "$d/weights.bin"
            trained="${rec%\\}},\\"status\\":\\"trained\\",\\"model_dir\\":\\"$d\\",\\"metrics\\":{\\"dev\\":{\\"f1\\":$f1}}}"
            printf '%s\\n' "$trained" >> "$NER_STATUS_FILE"
            printf '%s\\n' "$trained" | ner-pack | ner-register

            """)
        return "bash \(t.file("fake-train.sh"))"
    }

    /// Queues a grid sweep over `rates` and returns its sweep id and job ids.
    static func queueSweep(_ t: TempDir, name: String, rates: [String]) throws -> (sweepId: String, jobIds: [String]) {
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let spec = t.write("sweep.json", """
            {"name": "\(name)", "base": {"train": "\(train)", "resources": {"cpus": 1, "mem": "64M", "time": "10"}},
             "grid": {"learning_rate": [\(rates.joined(separator: ", "))]}}
            """)
        let r = try run("ner-queue", ["--home", t.path, "--sweep", spec])
        #expect(r.status == 0, "\(r.stderr)")
        let jobs = try r.lines.map { try JSON.parse($0) }
        let sweepId = try #require(jobs.first?["sweep_id"]?.stringValue)
        #expect(jobs.allSatisfy { $0["sweep_id"]?.stringValue == sweepId })
        return (sweepId, jobs.map { $0["job_id"]!.stringValue! })
    }
}

@Suite struct SweepTests {
    /// A grid sweep run locally: every trial registered under the sweep id; `best` and
    /// `promote --sweep` pick the highest dev F1; `--from` retrains the winner with more epochs and
    /// links the new model to it.
    @Test func gridSweepBestPromoteAndRetrain() throws {
        let t = TempDir("ner-sweep"); defer { t.remove() }
        let (sweepId, jobIds) = try FakeTraining.queueSweep(t, name: "grid", rates: ["0.001", "0.003", "0.002"])
        #expect(jobIds.count == 3)
        let d = try run("ner-dispatch", ["--home", t.path, "--drain", "--max-running", "3", "--poll", "0.05",
                                         "--command", FakeTraining.command(in: t)])
        #expect(d.status == 0, "\(d.stderr)")

        let best = try run("ner-register", ["best", "--sweep", sweepId, "--by", "dev.f1", "--home", t.path])
        #expect(best.status == 0, "\(best.stderr)")
        let winner = try JSON.parse(best.stdout)
        #expect(winner["score"]?.doubleValue == 0.91)
        #expect(winner["sweep_id"]?.stringValue == sweepId)
        let winnerId = try #require(winner["model_id"]?.stringValue)
        let registry = try Registry(path: t.file("registry.sqlite"))
        #expect(try registry.model(winnerId)?.record["sweep_params"]?["learning_rate"]?.doubleValue == 0.003)
        let all = try run("ner-register", ["best", "--sweep", sweepId, "--all", "--home", t.path])
        #expect(try all.lines.map { try JSON.parse($0)["score"]!.doubleValue! } == [0.91, 0.78, 0.62])

        let promote = try run("ner-register", ["promote", "--sweep", sweepId, "--home", t.path])
        #expect(promote.status == 0, "\(promote.stderr)")
        #expect(try registry.aliases(name: "grid")["production"] == winnerId)

        let again = try run("ner-queue", ["--home", t.path, "--from", "grid@production", "--epochs", "40"])
        #expect(again.status == 0, "\(again.stderr)")
        let job = try JSON.parse(again.stdout)
        #expect(job["parent_id"]?.stringValue == winnerId)
        #expect(job["spec"]?["epochs"]?.intValue == 40)
        #expect(job["spec"]?["learning_rate"]?.doubleValue == 0.003)
        let retrain = try run("ner-dispatch", ["--home", t.path, "--drain", "--poll", "0.05", "--command", FakeTraining.command(in: t)])
        #expect(retrain.status == 0, "\(retrain.stderr)")
        let child = try #require(try registry.job(job["job_id"]!.stringValue!)?.modelId)
        #expect(try registry.model(child)?.parentId == winnerId)
        #expect(try registry.model(child)?.version == 4)
    }

    /// Bad sweep specs are refused before anything is queued.
    /// Relative data paths in a sweep file are the file's own; those given as flags are the working
    /// directory's.
    @Test func relativePathsInASweepFileAreTheFilesOwn() throws {
        let t = TempDir("ner-sweep-relative"); defer { t.remove() }
        t.write("project/data/train.txt", "EU I-ORG\n\n")
        t.write("project/data/dev.txt", "EU I-ORG\n\n")
        let sweep = t.write("project/sweep.json", #"{"name": "rel", "base": {"train": "data/train.txt"}, "grid": {"epochs": [1, 2]}}"#)
        let r = try run("ner-queue", ["--home", t.path, "--sweep", sweep])
        #expect(r.status == 0, "\(r.stderr)")
        let trains = try r.lines.map { try JSON.parse($0)["spec"]?["train"]?.stringValue }
        #expect(trains == [t.file("project/data/train.txt"), t.file("project/data/train.txt")])

        let cwd = FileManager.default.currentDirectoryPath
        let up = String(repeating: "../", count: cwd.split(separator: "/").count)
        let relative = up + t.file("project/data/dev.txt").dropFirst()
        let withFlag = try run("ner-queue", ["--home", t.path, "--sweep", sweep, "--dev", relative])
        #expect(withFlag.status == 0, "\(withFlag.stderr)")
        #expect(try JSON.parse(try #require(withFlag.lines.first))["spec"]?["dev"]?.stringValue == t.file("project/data/dev.txt"))
    }

    /// `--seeds` queues one job per seed as one sweep; `best --summary` gives the mean and sample
    /// standard deviation of their scores, and the winner.
    @Test func seedsAreOneSweepAndSummarize() throws {
        let t = TempDir("ner-seeds"); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let q = try run("ner-queue", ["--home", t.path, "--name", "s", "--train", train, "--seeds", "1,2,3", "--time", "10"])
        #expect(q.status == 0, "\(q.stderr)")
        let jobs = try q.lines.map { try JSON.parse($0) }
        #expect(jobs.map { $0["spec"]?["seed"]?.intValue } == [1, 2, 3])
        let sweepId = try #require(jobs.first?["sweep_id"]?.stringValue)
        #expect(jobs.allSatisfy { $0["sweep_id"]?.stringValue == sweepId })
        // A stand-in trainer whose dev F1 is 0.6 + seed / 100.
        t.write("fake.sh", """
            rec=$(cat)
            seed=$(printf '%s' "$rec" | grep -o '"seed":[0-9]*' | head -1 | cut -d: -f2)
            d="$NER_HOME/models/$NER_JOB_ID"; mkdir -p "$d"; echo "w $NER_JOB_ID" > "$d/weights.bin"
            printf '%s\n' "${rec%\\}},\\"status\\":\\"trained\\",\\"model_dir\\":\\"$d\\",\\"metrics\\":{\\"dev\\":{\\"f1\\":0.6$seed}}}" | ner-pack | ner-register

            """)
        let d = try run("ner-dispatch", ["--home", t.path, "--drain", "--max-running", "3", "--poll", "0.05", "--command", "bash " + t.file("fake.sh")])
        #expect(d.status == 0, "\(d.stderr)")
        let summary = try run("ner-register", ["best", "--sweep", sweepId, "--summary", "--home", t.path])
        #expect(summary.status == 0, "\(summary.stderr)")
        let o = try JSON.parse(summary.stdout)
        #expect(o["type"] == "sweep_summary")
        #expect(o["trials"] == 3)
        let dev = try #require(o["metrics"]?["dev.f1"])
        #expect(dev["n"] == 3)
        #expect(abs((dev["mean"]?.doubleValue ?? 0) - 0.62) < 1e-9)
        #expect(abs((dev["std"]?.doubleValue ?? 0) - 0.01) < 1e-9)
        #expect(o["metrics"]?["test.f1"] == nil)
        let best = try JSON.parse(try run("ner-register", ["best", "--sweep", sweepId, "--home", t.path]).stdout)
        #expect(o["best"] == best["model_id"])
        #expect(best["score"]?.doubleValue == 0.63)

        for bad in [["--seeds", "1,x"], ["--seeds", "1,1"], ["--seeds", ""]] {
            #expect(try run("ner-queue", ["--home", t.path, "--train", train] + bad).status == 64, "\(bad)")
        }
        #expect(try run("ner-queue", ["--home", t.path, "--seeds", "1,2"], stdin: "{}\n").status == 64)
    }

    @Test func badSweepSpecsQueueNothing() throws {
        let t = TempDir("ner-sweep-bad"); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        for (spec, message) in [
            (#"{"base": {"train": "\#(train)"}}"#, "give exactly one of grid or random"),
            (#"{"base": {"train": "\#(train)"}, "grid": {"learning_rate": []}}"#, "grid.learning_rate must be a non-empty list"),
            (#"{"base": {"train": "\#(train)"}, "grid": {"epochs": [1, 0]}}"#, "trial 2: epochs must be between 1 and 10000"),
            (#"{"base": {"train": "\#(train)"}, "random": {"dropout": {"uniform": [0.1, 0.5]}}}"#, "needs trials"),
            (#"{"base": {"train": "\#(train)"}, "method": "bayes", "trials": 5}"#, "a bayes sweep needs space"),
            (#"{"base": {"train": "\#(train)"}, "method": "annealing", "trials": 5, "space": {}}"#, "unknown method 'annealing'"),
            (#"{"base": {"train": "\#(train)"}, "method": "bayes", "trials": 5, "parallel": 0, "space": {"dropout": {"uniform": [0, 0.5]}}}"#,
             "parallel must be 1 or more"),
            (#"{"base": {"train": "\#(train)"}, "method": "bayes", "trials": 5, "goal": "up", "space": {"dropout": {"uniform": [0, 0.5]}}}"#,
             "goal must be"),
            (#"{"base": {"train": "\#(train)"}, "method": "bayes", "trials": 5, "space": {"dropout": {"normal": [0, 1]}}}"#,
             "space.dropout: unknown distribution 'normal'"),
            (#"{"base": {"train": "\#(train)"}, "method": "bayes", "trials": 5, "space": {"dropout": {"uniform": [0.5, 1.5]}}}"#,
             "dropout must be in [0, 1)"),
            (#"{"base": {"train": "\#(train)"}, "method": "grid", "grid": {"seed": [1]}, "parallel": 2}"#, "a grid sweep takes no 'parallel'"),
        ] {
            let f = t.write("s.json", spec)
            let r = try run("ner-queue", ["--home", t.path, "--sweep", f])
            #expect(r.status == 65, "\(spec): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(r.stderr)")
        }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: t.file("spool/new"))) ?? []).isEmpty)
    }

    /// A grid's size is the product of its lists: ten lists of ten values ask for 10^10 trials.
    /// The count is refused (64, naming it) before any trial is built, at once and in little memory.
    @Test(.disabled(if: TestTools.sanitizer != nil, "peak memory is not bounded under a sanitizer"))
    func aHugeGridIsRefusedBeforeItIsBuilt() throws {
        let t = TempDir("ner-sweep-huge"); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let keys = ["epochs", "batch_size", "hidden_size", "word_dim", "char_dim", "seed", "threads", "patience",
                    "learning_rate", "dropout"]
        let values = (1...10).map { "0.0\($0)" }.joined(separator: ",")
        let grid = keys.map { #""\#($0)":[\#(values)]"# }.joined(separator: ",")
        let f = t.write("huge.json", #"{"base":{"train":"\#(train)"},"grid":{\#(grid)}}"#)
        let started = Date()
        let r = try run("ner-queue", ["--home", t.path, "--sweep", f])
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr == "ner-queue: error: \(f): the sweep has 10000000000 trials, more than --max-trials 10000; "
                + "narrow it or raise --max-trials\n")
        let (status, peakKiB) = try runMeasuringMemory("ner-queue", ["--home", t.path, "--sweep", "-"], input: f,
                                                       output: t.file("out.txt"))
        #expect(status == 64)
        #expect(peakKiB < 100_000, "peak \(peakKiB) KiB")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: t.file("spool/new"))) ?? []).isEmpty)
    }

    @Test func maxTrialsSetsTheLimit() throws {
        let t = TempDir("ner-sweep-max"); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let grid = t.write("grid.json", #"{"base":{"train":"\#(train)"},"grid":{"seed":[1,2,3]}}"#)
        let random = t.write("random.json", #"{"base":{"train":"\#(train)"},"trials":5,"random":{"seed":{"int":[1,9]}}}"#)
        for (file, limit, status, says) in [(grid, "2", Int32(64), "the sweep has 3 trials, more than --max-trials 2"),
                                            (random, "4", 64, "the sweep has 5 trials, more than --max-trials 4"),
                                            (grid, "0", 64, "--max-trials must be 1 or more"),
                                            (grid, "3", 0, ""), (random, "5", 0, "")] {
            let r = try run("ner-queue", ["--home", t.path, "--sweep", file, "--max-trials", limit])
            #expect(r.status == status, "\(file) --max-trials \(limit): \(r.stderr)")
            #expect(says.isEmpty || r.stderr.contains(says), "\(r.stderr)")
            #expect(r.lines.count == (status == 0 ? Int(limit)! : 0))
        }
    }

    /// A random sweep is reproducible for its seed.
    @Test func randomSweepIsReproducible() throws {
        let t = TempDir("ner-sweep-random"); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let f = t.write("s.json", #"{"name":"rnd","base":{"train":"\#(train)"},"trials":5,"seed":7,"random":{"learning_rate":{"log_uniform":[0.0001,0.01]},"hidden_size":{"choice":[100,200]}}}"#)
        func params() throws -> [JSON] {
            let r = try run("ner-queue", ["--home", t.path, "--sweep", f])
            #expect(r.status == 0, "\(r.stderr)")
            return try r.lines.map { try JSON.parse($0)["sweep_params"]! }
        }
        let a = try params(), b = try params()
        #expect(a.count == 5)
        #expect(a == b)
        #expect(a.allSatisfy { ($0["learning_rate"]?.doubleValue).map { $0 >= 0.0001 && $0 <= 0.01 } == true })
        #expect(Set(a.compactMap { $0["learning_rate"]?.doubleValue }).count == 5)
    }
}

extension SweepTests {
    /// Successive halving: four short trials, then --halve continues the best half with twice the
    /// epochs as rung 1 (the poor half stops), then the best of those as rung 2, then refuses.
    @Test func successiveHalvingKeepsTheBestHalfEachRung() throws {
        let t = TempDir("ner-halving"); defer { t.remove() }
        let (sweepId, _) = try FakeTraining.queueSweep(t, name: "sh", rates: ["0.001", "0.002", "0.003", "0.004"])
        let dispatch = ["--home", t.path, "--drain", "--max-running", "4", "--poll", "0.05", "--command", FakeTraining.command(in: t)]
        #expect(try run("ner-dispatch", dispatch).status == 0)
        let registry = try Registry(path: t.file("registry.sqlite"))

        func halve() throws -> [JSON] {
            let r = try run("ner-queue", ["--home", t.path, "--halve", sweepId])
            #expect(r.status == 0, "\(r.stderr)")
            return try r.lines.map { try JSON.parse($0) }
        }
        let rung1 = try halve()
        #expect(rung1.map { $0["spec"]!["learning_rate"]!.doubleValue! } == [0.003, 0.002])
        #expect(rung1.allSatisfy { $0["sweep_rung"] == 1 && $0["spec"]?["epochs"] == 60 && $0["sweep_id"]?.stringValue == sweepId })
        // The rung is not finished yet: asking again is a temporary failure.
        let early = try run("ner-queue", ["--home", t.path, "--halve", sweepId])
        #expect(early.status == 75, "\(early.stderr)")

        #expect(try run("ner-dispatch", dispatch).status == 0)
        for job in rung1 {
            let model = try #require(try registry.job(job["job_id"]!.stringValue!)?.modelId)
            #expect(try registry.model(model)?.parentId == job["parent_id"]?.stringValue)
        }
        let rung2 = try halve()
        #expect(rung2.count == 1)
        #expect(rung2.first?["spec"]?["learning_rate"]?.doubleValue == 0.003)
        #expect(rung2.first?["spec"]?["epochs"] == 120)
        #expect(try run("ner-dispatch", dispatch).status == 0)
        let done = try run("ner-queue", ["--home", t.path, "--halve", sweepId])
        #expect(done.status == 1)
        #expect(done.stderr.contains("down to 1 scored trial(s) at rung 2"), "\(done.stderr)")
        #expect(try registry.sweepModels(sweepId, by: "dev.f1").count == 7)
    }
}
