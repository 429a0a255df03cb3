import Foundation
import NERCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// ner-queue: valid jobs land in spool/new; bad input exits with its documented code, one line,
/// and writes nothing.
@Suite struct QueueTests {
    func spoolFiles(_ home: String, _ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(home)/spool/\(dir)")) ?? []).filter { !$0.hasPrefix(".") }
    }

    /// A warm start names a model that exists now: a folder, a tarball or a registered name.
    @Test func initFromMustNameAModel() throws {
        let t = TempDir("ner-queue-init-from"); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let missing = try run("ner-queue", ["--home", t.path, "--train", train, "--init-from", "nosuch"])
        #expect(missing.status == 66)
        #expect(missing.stderr.contains("init_from: no model 'nosuch'"), "\(missing.stderr)")
        let viaStdin = try run("ner-queue", ["--home", t.path], stdin: #"{"train": "\#(train)", "init_from": "nosuch"}"# + "\n")
        #expect(viaStdin.status == 66)
        #expect(viaStdin.stderr.contains("stdin:1: init_from"), "\(viaStdin.stderr)")
        try FileManager.default.createDirectory(atPath: t.file("parent"), withIntermediateDirectories: true)
        let folder = try run("ner-queue", ["--home", t.path, "--train", train, "--init-from", t.file("parent")])
        #expect(folder.status == 0, "\(folder.stderr)")
        let spec = try JSON.parse(folder.stdout)["spec"]
        #expect(spec?["init_from"]?.stringValue == t.file("parent"))
        // Left unset, the learning rate and patience are chosen from the data's size when the job trains.
        #expect(spec?["learning_rate"] == nil && spec?["patience"] == nil)
        let parsed = try #require(try spec?.decode(JobSpec.self))
        #expect(parsed.settings(trainingSentences: 100) == JobSpec.smallDataDefaults)
        #expect(parsed.settings(trainingSentences: 10_000) == JobSpec.largeDataDefaults)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: t.file("spool/new"))) ?? []).count == 1)
        // Replay: a data path like the others, which must exist; replay_sentences needs it.
        let replayed = try run("ner-queue", ["--home", t.path, "--train", train, "--init-from", t.file("parent"),
                                             "--replay", train, "--replay-sentences", "500"])
        #expect(replayed.status == 0, "\(replayed.stderr)")
        let replaySpec = try JSON.parse(replayed.stdout)["spec"]
        #expect(replaySpec?["replay"]?.stringValue == train && replaySpec?["replay_sentences"] == 500)
        let noFile = try run("ner-queue", ["--home", t.path, "--train", train, "--replay-sentences", "5"])
        #expect(noFile.status == 64 && noFile.stderr.contains("replay_sentences needs replay"), "\(noFile.stderr)")
        let missingReplay = try run("ner-queue", ["--home", t.path, "--train", train, "--replay", t.file("nope.txt")])
        #expect(missingReplay.status == 66 && missingReplay.stderr.contains("replay file"), "\(missingReplay.stderr)")
    }

    @Test func queuesAJobFromFlags() throws {
        let t = TempDir(); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let r = try run("ner-queue", ["--home", t.path, "--name", "news", "--train", train, "--epochs", "7", "--gpus", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let job = try JSON.parse(r.stdout)
        #expect(job["name"] == "news")
        #expect(job["job_id"]?.stringValue?.hasPrefix("news-") == true)
        #expect(job["attempt"] == 1)
        #expect(job["spec"]?["epochs"] == 7)
        #expect(job["spec"]?["train"]?.stringValue == train)
        #expect(job["spec"]?["resources"]?["gpus"] == 1)
        let queued = spoolFiles(t.path, "new")
        #expect(queued.count == 1)
        #expect(queued.first?.hasSuffix("\(job["job_id"]!.stringValue!).json") == true)
        #expect(spoolFiles(t.path, "tmp").isEmpty)
    }

    @Test func queuesManyFromStdinWithFlagDefaults() throws {
        let t = TempDir(); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let lines = (0..<20).map { #"{"name":"g\#($0)","train":"\#(train)","seed":\#($0),"priority":\#($0 % 3)}"# }
        let r = try run("ner-queue", ["--home", t.path, "--epochs", "3"], stdin: lines.joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        let jobs = try r.lines.map { try JSON.parse($0) }
        #expect(jobs.count == 20)
        #expect(jobs.allSatisfy { $0["spec"]?["epochs"] == 3 })
        #expect(Set(jobs.compactMap { $0["job_id"]?.stringValue }).count == 20)
        let list = try run("ner-queue", ["--home", t.path, "--list"])
        let listed = try list.lines.map { try JSON.parse($0) }
        // Higher priority first, FIFO within a priority.
        #expect(listed.map { $0["priority"]!.intValue! } == jobs.map { $0["priority"]!.intValue! }.sorted(by: >))
        let seedsOfPriority2 = listed.filter { $0["priority"] == 2 }.compactMap { $0["name"]?.stringValue }
        #expect(seedsOfPriority2 == ["g2", "g5", "g8", "g11", "g14", "g17"])
    }

    @Test(arguments: [
        // (stdin, args, expected exit, text the one-line error must contain)
        ("{\"train\":\"TRAIN\"}\n{broken\n", [String](), Int32(65), "stdin:2:"),
        ("{\"train\":\"/nonexistent/train.txt\"}\n", [], 66, "/nonexistent/train.txt"),
        ("{\"train\":\"TRAIN\",\"epochs\":-2}\n", [], 65, "epochs"),
        ("{\"train\":\"TRAIN\",\"epoch\":2}\n", [], 65, "unknown field 'epoch' (did you mean 'epochs'?)"),
        ("{\"spec\":{\"train\":\"TRAIN\",\"bogus_field\":3}}\n", [], 65, "stdin:1: unknown field 'spec.bogus_field'"),
        ("", ["--train", "/dev/zero"], 66, "train file /dev/zero: not a regular file"),
        ("{\"train\":\"/dev/zero\"}\n", [], 66, "stdin:1: train file /dev/zero: not a regular file"),
        ("{\"train\":\"TRAIN\",\"dev\":\"/tmp\"}\n", [], 66, "dev file /tmp: not a regular file"),
        ("{\"train\":\"TRAIN\\u0000.old\"}\n", [], 65, "stdin:1: train path contains a NUL byte"),
        ("", ["--train", "TRAIN", "--time", "soon"], 64, "resources.time 'soon' is not a Slurm time"),
        ("{\"train\":\"TRAIN\",\"resources\":{\"time\":\"1:2:3:4\"}}\n", [], 65, "stdin:1: resources.time '1:2:3:4'"),
        ("{\"train\":\"TRAIN\",\"epochs\":\"ten\"}\n", [], 65, "epochs: expected a number"),
        ("[1,2]\n", [], 65, "expected a JSON object"),
        ("", ["--train", "TRAIN", "--epochs=-2"], 64, "epochs"),
        ("", ["--train", "/nonexistent/x.txt"], 66, "/nonexistent/x.txt"),
        ("", ["--train", "TRAIN", "--name", "../evil"], 64, "name"),
    ])
    func badInputWritesNothing(stdin: String, args: [String], status: Int32, mentions: String) throws {
        let t = TempDir(); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let r = try run("ner-queue", ["--home", t.path] + args.map { $0 == "TRAIN" ? train : $0 },
                        stdin: stdin.replacingOccurrences(of: "TRAIN", with: train))
        #expect(r.status == status, "\(r.stderr)")
        let errLines = r.stderr.split(separator: "\n")
        #expect(errLines.count == 1, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("ner-queue: error: "), "\(r.stderr)")
        #expect(r.stderr.contains(mentions), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(spoolFiles(t.path, "new").isEmpty)
        #expect(spoolFiles(t.path, "tmp").isEmpty)
    }

    /// A huge value is shown cut, with its size, so one bad request cannot flood a terminal or log.
    @Test func longValuesAreCutInErrors() throws {
        let t = TempDir(); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let name = String(repeating: "n", count: 10 << 20)
        let r = try run("ner-queue", ["--home", t.path], stdin: #"{"name":"\#(name)","train":"\#(train)"}"# + "\n")
        #expect(r.status == 65)
        #expect(r.stderr == "ner-queue: error: stdin:1: name '\(name.prefix(80))… (10485760 bytes)' must be 1-64 letters, "
                + "digits, '.', '_' or '-', not starting with '.' or '-'\n")
        let show = try run("ner-queue", ["--home", t.path, "--show", String(repeating: "j", count: 100_000)])
        #expect(show.status == 66)
        #expect(show.stderr.utf8.count < 300, "\(show.stderr.prefix(300))")
    }

    /// With `sinfo` on PATH, a partition it does not list is refused when queuing rather than by
    /// three failed submissions later; a `sinfo` that cannot answer only warns.
    @Test func partitionsAreCheckedWithSinfo() throws {
        let t = TempDir(); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let bin = t.file("bin")
        t.write("bin/sinfo", "#!/bin/sh\n[ -n \"$SINFO_FAILS\" ] && { echo 'sinfo: cannot reach the controller' >&2; exit 1; }\necho cpu; echo gpu; echo gpu\n")
        chmod(t.file("bin/sinfo"), 0o755)
        let env = ["PATH": bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")]
        let ok = try run("ner-queue", ["--home", t.path, "--train", train, "--partition", "gpu"], env: env)
        #expect(ok.status == 0, "\(ok.stderr)")
        let flag = try run("ner-queue", ["--home", t.path, "--train", train, "--partition", "gpux"], env: env)
        #expect(flag.status == 64)
        #expect(flag.stderr == "ner-queue: error: resources.partition 'gpux' is not a Slurm partition here (sinfo lists cpu, gpu)\n")
        let line = #"{"train":"\#(train)","resources":{"partition":"big"}}"# + "\n"
        let data = try run("ner-queue", ["--home", t.path], stdin: line, env: env)
        #expect(data.status == 65)
        #expect(data.stderr.hasPrefix("ner-queue: error: stdin:1: resources.partition 'big'"), "\(data.stderr)")
        var failing = env
        failing["SINFO_FAILS"] = "1"
        let warned = try run("ner-queue", ["--home", t.path, "--train", train, "--partition", "gpux"], env: failing)
        #expect(warned.status == 0, "\(warned.stderr)")
        #expect(warned.stderr.contains("warning: cannot check resources.partition: sinfo failed: sinfo: cannot reach the controller"))
        #expect(spoolFiles(t.path, "new").count == 2)
    }

    @Test func cancelAQueuedJobDeadLettersIt() throws {
        let t = TempDir(); defer { t.remove() }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let job = try JSON.parse(try run("ner-queue", ["--home", t.path, "--train", train]).stdout)
        let id = job["job_id"]!.stringValue!
        let c = try run("ner-queue", ["--home", t.path, "--cancel", id])
        #expect(c.status == 0, "\(c.stderr)")
        let shown = try JSON.parse(try run("ner-queue", ["--home", t.path, "--show", id]).stdout)
        #expect(shown["state"] == "failed")
        #expect(shown["error"]?.stringValue?.hasPrefix("cancelled") == true)
        #expect(try run("ner-queue", ["--home", t.path, "--show", "nope-1"]).status == 66)
        #expect(try run("ner-queue", ["--home", t.path, "--purge"]).status == 0)
        #expect(spoolFiles(t.path, "failed").isEmpty)
    }
}
