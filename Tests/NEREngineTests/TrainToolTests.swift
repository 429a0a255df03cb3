import Foundation
import NERCore
import NEREngine
import Testing
import TestSupport

/// A tiny language whose entities are fully determined by the words: a correct tagger learns it perfectly.
enum Synthetic {
    static let first = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"]
    static let last = ["Smith", "Jones", "Brown", "Taylor"]
    static let places = ["Paris", "London", "Rome", "Berlin", "Madrid", "Oslo"]
    static let orgs = ["Acme", "Globex", "Initech", "Umbrella"]

    static func corpus(_ count: Int, seed: UInt64) -> String {
        var rng = SeededRandom(seed: seed)
        func pick(_ a: [String]) -> String { a[Int(rng.next() % UInt64(a.count))] }
        var out = ""
        for i in 0..<count {
            var s: [(String, String)] = []
            switch i % 4 {
            case 0: s = [(pick(first), "B-PER"), ("visited", "O"), (pick(places), "B-LOC"), (".", "O")]
            case 1: s = [(pick(first), "B-PER"), (pick(last), "I-PER"), ("works", "O"), ("for", "O"), (pick(orgs), "B-ORG"),
                         ("in", "O"), (pick(places), "B-LOC"), (".", "O")]
            case 2: s = [("the", "O"), (pick(orgs), "B-ORG"), ("office", "O"), ("is", "O"), ("in", "O"), (pick(places), "B-LOC"), (".", "O")]
            default: s = [(pick(first), "B-PER"), ("met", "O"), (pick(first), "B-PER"), (pick(last), "I-PER"), ("today", "O")]
            }
            out += s.map { "\($0.0) \($0.1)\n" }.joined() + "\n"
        }
        return out
    }

    /// A job record for a small, fast network.
    static func job(train: String, dev: String?, epochs: Int, extra: [String: JSON] = [:]) -> String {
        var spec: [String: JSON] = ["train": .string(train), "epochs": .int(Int64(epochs)), "hidden_size": 16,
                                    "word_dim": 12, "char_dim": 8, "batch_size": 8, "learning_rate": 0.01,
                                    "threads": 2, "seed": 7, "patience": 0]
        if let dev { spec["dev"] = .string(dev) }
        var record: [String: JSON] = ["schema": 1, "name": "synthetic", "spec": .object(spec)]
        for (k, v) in extra { record[k] = v }
        return JSON.object(record).compactString + "\n"
    }
}

@Suite struct TrainToolTests {
    @Test func learnsSyntheticLanguagePerfectlyAndModelLoads() throws {
        let dir = TempDir("engine-synth")
        defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(160, seed: 1))
        let dev = dir.write("dev.txt", Synthetic.corpus(40, seed: 2))
        let r = try run("ner-train", ["--output", dir.file("model"), "--quiet"],
                        stdin: Synthetic.job(train: train, dev: dev, epochs: 12, extra: ["passthrough": "kept"]))
        #expect(r.status == 0, "\(r.stderr)")
        let record = try JSON.parse(try #require(r.lines.first))
        #expect(record["status"] == "trained")
        #expect(record["passthrough"] == "kept")
        #expect(record["model_id"]?.stringValue?.hasPrefix("synthetic-") == true)
        #expect(record["metrics"]?["dev"]?["f1"]?.doubleValue == 1.0)
        #expect(record["metrics"]?["epochs_run"]?.intValue == 12)

        let model = try NERModel.load(try #require(record["model_dir"]?.stringValue))
        #expect(model.id == record["model_id"]?.stringValue)
        #expect(model.labels == ["LOC", "ORG", "PER"])
        let p = model.predict([["Grace", "Jones", "works", "for", "Globex", "in", "Oslo", "."], ["Bob", "visited", "Rome", "."], []])
        #expect(p[0].tags == ["B-PER", "I-PER", "O", "O", "B-ORG", "O", "B-LOC", "O"])
        #expect(p[1].tags == ["B-PER", "O", "B-LOC", "O"])
        #expect(p[2].tags.isEmpty)
        #expect(p[0].scores.allSatisfy { $0 > 0.5 && $0 <= 1.0001 })

        // Loading again and predicting from many threads at once gives the same answers.
        let again = try NERModel.load(record["model_dir"]!.stringValue!)
        let sentences = Synthetic.corpus(30, seed: 5).split(separator: "\n\n").map { $0.split(separator: "\n").map { String($0.split(separator: " ")[0]) } }
        let expected = model.predict(sentences)
        let results = UnsafeMutableBufferPointer<[Prediction]>.allocate(capacity: 4)
        results.initialize(repeating: [])
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 4) { i in results[i] = (i % 2 == 0 ? model : again).predict(sentences) }
        for i in 0..<4 { #expect(results[i] == expected) }

        // The token cache changes no answer: off, far too small (entries evicted all the time), and
        // the default, each asked twice so the second pass is answered from the cache.
        let uncached = try NERModel.load(record["model_dir"]!.stringValue!, tokenCache: 0)
        let tiny = try NERModel.load(record["model_dir"]!.stringValue!, tokenCache: 3)
        let reference = uncached.predict(sentences)
        // Sentences of different lengths tagged in one batch get what each gets alone.
        #expect(Set(sentences.map(\.count)).count > 2)
        let alone = sentences.map { uncached.predict([$0])[0] }
        #expect(alone.map(\.tags) == reference.map(\.tags))
        #expect(zip(alone, reference).allSatisfy { a, b in zip(a.scores, b.scores).allSatisfy { abs($0 - $1) < 1e-5 } })
        // What a token's entry holds does not depend on which batch computed it: a model that has
        // seen other sentences first answers bit for bit the same.
        let warmed = try NERModel.load(record["model_dir"]!.stringValue!)
        _ = warmed.predict(Array(sentences.reversed().prefix(7)))
        #expect(warmed.predict(sentences) == expected)
        for m in [model, tiny] {
            for _ in 0..<2 {
                let got = m.predict(sentences)
                #expect(got.map(\.tags) == reference.map(\.tags))
                #expect(zip(got, reference).allSatisfy { a, b in zip(a.scores, b.scores).allSatisfy { abs($0 - $1) < 1e-5 } })
            }
        }
    }

    /// Also with replay: each epoch's draw depends only on the seed and the epoch.
    @Test(arguments: [false, true]) func resumeContinuesExactly(replay: Bool) throws {
        let dir = TempDir("engine-resume")
        defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(60, seed: 3))
        let dev = dir.write("dev.txt", Synthetic.corpus(16, seed: 4))
        let extra = replay ? ["--replay", dir.write("replay.txt", Synthetic.corpus(50, seed: 5)), "--replay-sentences", "20"] : []
        let straight = try run("ner-train", ["--output", dir.file("a"), "--quiet"] + extra, stdin: Synthetic.job(train: train, dev: dev, epochs: 4))
        #expect(straight.status == 0, "\(straight.stderr)")
        let first = try run("ner-train", ["--output", dir.file("b"), "--quiet"] + extra, stdin: Synthetic.job(train: train, dev: dev, epochs: 2))
        #expect(first.status == 0, "\(first.stderr)")
        let resumed = try run("ner-train", ["--output", dir.file("b"), "--resume", "--epochs", "4", "--quiet"] + extra,
                              stdin: Synthetic.job(train: train, dev: dev, epochs: 2))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let a = try JSON.parse(try #require(straight.lines.first)), b1 = try JSON.parse(try #require(first.lines.first))
        let b = try JSON.parse(try #require(resumed.lines.first))
        #expect(b["model_id"] == b1["model_id"])
        #expect(b["metrics"]?["epochs_run"]?.intValue == 4)
        #expect(a["metrics"]?["dev"] == b["metrics"]?["dev"])
        #expect(a["metrics"]?["best_epoch"] == b["metrics"]?["best_epoch"])
        #expect(b["spec"]?["replay_sentences"] == (replay ? 20 : nil))
        for file in ["checkpoint/state.bin", "weights.bin", "vocab.bin"] {
            let x = FileManager.default.contents(atPath: dir.file("a/" + file)), y = FileManager.default.contents(atPath: dir.file("b/" + file))
            #expect(x != nil && x == y, "\(file) differs between a straight and a resumed run")
        }
        let history = try String(contentsOfFile: dir.file("b/history.ndjson"), encoding: .utf8).split(separator: "\n")
        #expect(history.count == 4)
    }

    @Test func badInputsGiveOneLineErrors() throws {
        let dir = TempDir("engine-bad")
        defer { dir.remove() }
        let good = dir.write("good.txt", Synthetic.corpus(8, seed: 1))
        let cases: [(String, [UInt8], Int32, String)] = [
            ("columns.txt", Array("Alice B-PER\nvisited\nParis B-LOC\n".utf8), 65, "columns.txt:2"),
            ("utf8.txt", Array("Alice B-PER\n".utf8) + [0x66, 0xFF, 0x20, 0x4F, 0x0A], 65, "utf8.txt:2"),
            ("empty.txt", [], 65, "empty.txt"),
        ]
        for (name, bytes, status, needle) in cases {
            let path = dir.file(name)
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let r = try run("ner-train", ["--train", path, "--output", dir.file("m-" + name), "--epochs", "1"])
            #expect(r.status == status, "\(name): \(r.stderr)")
            #expect(r.stderr.hasPrefix("ner-train: error: ") && r.stderr.contains(needle), "\(name): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(name): \(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        let missing = try run("ner-train", ["--train", dir.file("nope.txt"), "--epochs", "1"])
        #expect(missing.status == 66, "\(missing.stderr)")
        #expect(missing.stderr.contains("nope.txt"))

        let vectors = dir.write("vectors.txt", "alice 0.1 0.2 0.3\nparis 0.4 0.5 0.6\nrome 0.7 0.8\n")
        let dim = try run("ner-train", ["--train", good, "--embeddings", vectors, "--output", dir.file("m-emb"), "--epochs", "1"])
        #expect(dim.status == 65, "\(dim.stderr)")
        #expect(dim.stderr.contains("vectors.txt:3") && dim.stderr.contains("expected 3 values"), "\(dim.stderr)")
        #expect(dim.stderr.split(separator: "\n").count == 1)

        // No driver here, whatever the CUDA tests in this process point at.
        let cuda = try run("ner-train", ["--train", good, "--device", "cuda", "--epochs", "1"],
                           env: ["NER_CUDA_DRIVER": "/nonexistent/libcuda.so.1"])
        #expect(cuda.status == 69)
        #expect(cuda.stderr.hasPrefix("ner-train: error: --device cuda: ") && cuda.stderr.split(separator: "\n").count == 1, "\(cuda.stderr)")

        let badJob = try run("ner-train", [], stdin: "{\"spec\": {\"train\": \"\(good)\", \"epochs\": 0}}\n")
        #expect(badJob.status == 65, "\(badJob.stderr)")
        #expect(badJob.stderr.contains("stdin:1") && badJob.stderr.contains("epochs"))
    }

    /// A misspelt or unknown spec field must not train with the default as if it had been set.
    @Test(arguments: [
        (#""bogus_field":3"#, "unknown field 'spec.bogus_field'"),
        (#""epoch":50"#, "unknown field 'spec.epoch' (did you mean 'spec.epochs'?)"),
        (#""resources":{"tme":"1:00:00"}"#, "unknown field 'spec.resources.tme' (did you mean 'spec.resources.time'?)"),
    ])
    func unknownSpecFieldsAreRefused(field: String, says: String) throws {
        let dir = TempDir("engine-spec")
        defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(8, seed: 1))
        let job = #"{"name":"typo","spec":{"train":"\#(train)","epochs":1,\#(field)}}"# + "\n"
        let r = try run("ner-train", ["--output", dir.file("m"), "--quiet"], stdin: job)
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr == "ner-train: error: stdin:1: \(says)\n")
        #expect(r.stdout.isEmpty)
        #expect(!fileExists(dir.file("m")))
    }

    /// Training data must be a regular file named by exactly the path recorded: a device would be
    /// read forever, and a NUL would make open(2) read a file other than the recorded one.
    /// (Without the check, ner-train reads /dev/zero until memory runs out: the time limit fails it.)
    @Test(.timeLimit(.minutes(1))) func dataFilesMustBeRegularFilesWithoutNUL() throws {
        let dir = TempDir("engine-files")
        defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(8, seed: 1))
        let zero = try run("ner-train", ["--train", "/dev/zero", "--output", dir.file("m"), "--epochs", "1"])
        #expect(zero.status == 66, "\(zero.stderr)")
        #expect(zero.stderr == "ner-train: error: train file /dev/zero: not a regular file\n")
        let folder = try run("ner-train", ["--train", dir.path, "--output", dir.file("m"), "--epochs", "1"])
        #expect(folder.status == 66, "\(folder.stderr)")
        #expect(folder.stderr.contains("not a regular file"), "\(folder.stderr)")

        let nul = #"{"spec":{"train":"\#(train)\u0000.extra","epochs":1}}"# + "\n"
        let n = try run("ner-train", ["--output", dir.file("m"), "--quiet"], stdin: nul)
        #expect(n.status == 65, "\(n.stderr)")
        #expect(n.stderr == "ner-train: error: stdin:1: train path contains a NUL byte\n")
        #expect(!fileExists(dir.file("m")))
    }

    /// A finished run leaves its model folder and nothing else: the hidden partial folder it was
    /// built in has been renamed into place.
    @Test func aFinishedRunLeavesNoPartialFolder() throws {
        let dir = TempDir("engine-partial")
        defer { dir.remove() }
        let train = dir.write("data/train.txt", Synthetic.corpus(16, seed: 1))
        let r = try run("ner-train", ["--output", dir.file("out/model"), "--quiet"], stdin: Synthetic.job(train: train, dev: nil, epochs: 1))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("out")) == ["model"])
        #expect(fileExists(dir.file("out/model/model.json")) && fileExists(dir.file("out/model/checkpoint/state.json")))
        #expect(try JSON.parse(try #require(r.lines.first))["model_dir"]?.stringValue == dir.file("out/model"))
    }

    /// Relative paths in a --job file are read against the file's folder, as in make and compose
    /// files, wherever ner-train runs; on stdin they stay the working directory's.
    @Test func relativePathsInAJobFileAreTheFilesOwn() throws {
        let dir = TempDir("engine-job-relative")
        defer { dir.remove() }
        dir.write("project/data/train.txt", Synthetic.corpus(16, seed: 1))
        dir.write("project/data/dev.txt", Synthetic.corpus(4, seed: 2))
        let job = dir.write("project/job.json",
                            #"{"name": "rel", "spec": {"train": "data/train.txt", "dev": "./data/dev.txt", "epochs": 1, "hidden_size": 16, "word_dim": 12, "char_dim": 8}}"# + "\n")
        // The test runs elsewhere: project/data is not under the working directory.
        #expect(!fileExists(FileManager.default.currentDirectoryPath + "/data/train.txt"))
        let r = try run("ner-train", ["--job", job, "--output", dir.file("m"), "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let spec = try JSON.parse(try #require(r.lines.first))["spec"]
        #expect(spec?["train"]?.stringValue == dir.file("project/data/train.txt"))
        #expect(spec?["dev"]?.stringValue == dir.file("project/data/dev.txt"))

        // The same record on stdin names a file under the working directory, which is not there.
        let stdin = try run("ner-train", ["--output", dir.file("m2"), "--quiet"], stdin: try String(contentsOfFile: job, encoding: .utf8))
        #expect(stdin.status == 66, "\(stdin.stderr)")
        #expect(stdin.stderr.contains("data/train.txt"), "\(stdin.stderr)")
    }

    /// Settings a job leaves unset are chosen from the training set's size, and the trained record
    /// says which were used; settings given are kept.
    @Test func unsetSettingsFollowTheTrainingSetsSize() throws {
        let dir = TempDir("engine-size-defaults"); defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(40, seed: 1))
        let dev = dir.write("dev.txt", Synthetic.corpus(10, seed: 2))
        var record = try JSON.parse(Synthetic.job(train: train, dev: dev, epochs: 1))
        var spec = try #require(record["spec"]?.objectValue)
        spec["batch_size"] = nil
        spec["learning_rate"] = nil
        record["spec"] = .object(spec)
        let small = try run("ner-train", ["--output", dir.file("small"), "--quiet"], stdin: record.compactString + "\n")
        #expect(small.status == 0, "\(small.stderr)")
        let used = try JSON.parse(try #require(small.lines.first))["spec"]
        #expect(used?["batch_size"]?.intValue == JobSpec.smallDataDefaults.batchSize)
        #expect(used?["learning_rate"]?.doubleValue == JobSpec.smallDataDefaults.learningRate)
        #expect(used?["weight_average"]?.intValue == JobSpec.smallDataDefaults.weightAverage)
        let given = try run("ner-train", ["--output", dir.file("given"), "--quiet", "--batch-size", "4"], stdin: record.compactString + "\n")
        #expect(try JSON.parse(try #require(given.lines.first))["spec"]?["batch_size"]?.intValue == 4)
        // A large training set gets the large-data settings.
        let large = JobSpec(train: train).settings(trainingSentences: JobSpec.smallData)
        #expect(large == JobSpec.largeDataDefaults)
        #expect(JobSpec(train: train).settings(trainingSentences: JobSpec.smallData - 1) == JobSpec.smallDataDefaults)
    }

    @Test func gzippedVectorsAreRead() throws {
        let dir = TempDir("engine-gz")
        defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(20, seed: 1))
        dir.write("v.txt", "3 4\nalice 0.1 0.2 0.3 0.4\nparis 0.5 0.6 0.7 0.8\nvisited 1 2 3 4\n")
        let gz = Process()
        gz.executableURL = URL(fileURLWithPath: "/bin/sh")
        gz.arguments = ["-c", "gzip -c '\(dir.file("v.txt"))' > '\(dir.file("v.txt.gz"))'"]
        try gz.run()
        gz.waitUntilExit()
        let r = try run("ner-train", ["--output", dir.file("m"), "--embeddings", dir.file("v.txt.gz"), "--quiet"],
                        stdin: Synthetic.job(train: train, dev: nil, epochs: 1))
        #expect(r.status == 0, "\(r.stderr)")
        let model = try String(contentsOfFile: dir.file("m/model.json"), encoding: .utf8)
        let config = try JSON.parse(model)["config"]
        #expect(config?["word_dim"]?.intValue == 4)
        #expect(config?["word_vocab"]?.intValue ?? 0 >= 4)
    }

    @Test func modelFolderProblemsAreReported() throws {
        let dir = TempDir("engine-load")
        defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(12, seed: 1))
        let r = try run("ner-train", ["--output", dir.file("m"), "--quiet"], stdin: Synthetic.job(train: train, dev: nil, epochs: 1))
        #expect(r.status == 0, "\(r.stderr)")
        func status(_ body: () throws -> Void) -> (Int32, String)? {
            do { try body(); return nil } catch let e as ToolError { return (e.status.rawValue, e.message) } catch { return (-1, "\(error)") }
        }
        #expect(status { _ = try NERModel.load(dir.file("absent")) }?.0 == 66)

        let json = dir.file("m/model.json")
        let original = try String(contentsOfFile: json, encoding: .utf8)
        try original.replacingOccurrences(of: "\"format_version\" : 1", with: "\"format_version\" : 3")
            .write(toFile: json, atomically: true, encoding: .utf8)
        let v = status { _ = try NERModel.load(dir.file("m")) }
        #expect(v?.0 == 65)
        #expect(v?.1.contains("model.json: unsupported format version 3 (this build reads 1)") == true, "\(String(describing: v))")
        try original.write(toFile: json, atomically: true, encoding: .utf8)

        let weights = dir.file("m/weights.bin")
        let data = try #require(FileManager.default.contents(atPath: weights))
        try data.prefix(data.count - 4).write(to: URL(fileURLWithPath: weights))
        #expect(status { _ = try NERModel.load(dir.file("m")) }?.0 == 65)
        try data.write(to: URL(fileURLWithPath: weights))
        #expect(status { _ = try NERModel.load(dir.file("m")) } == nil)
    }

    @Test func trainsOnExamples() throws {
        let dir = TempDir("engine-examples")
        defer { dir.remove() }
        let data = TestTools.repoRoot + "/examples/data"
        let r = try run("ner-train", ["--train", data + "/train.txt", "--dev", data + "/dev.txt", "--test", data + "/test.txt",
                                      "--epochs", "1", "--output", dir.file("wiki"), "--name", "wikigold", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let record = try JSON.parse(try #require(r.lines.first))
        #expect(record["metrics"]?["test"]?["f1"]?.doubleValue != nil)
        #expect(record["metrics"]?["dev"]?["f1"]?.doubleValue ?? 0 > 0.05)
        let metrics = try JSON.parse(try #require(FileManager.default.contents(atPath: dir.file("wiki/metrics.json"))))
        #expect(metrics["best_epoch"]?.intValue == 1)
        let model = try NERModel.load(dir.file("wiki"))
        #expect(model.name == "wikigold")
        #expect(model.predict([["John", "lives", "in", "London", "."]])[0].tags.count == 5)
    }

    @Test(.enabled(if: TestTools.sharedData != nil, "needs the CoNLL-2003 files in ../shared/data"))
    func trainsOnASampleOfConll() throws {
        let dir = TempDir("engine-conll")
        defer { dir.remove() }
        let shared = try #require(TestTools.sharedData)
        // The first 1000 sentences of CoNLL-2003 (IOB1), one epoch: reading, conversion and training at real scale.
        let lines = try String(contentsOfFile: shared + "/conll2003/train.txt", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        var text = "", sentences = 0
        for line in lines {
            text += line + "\n"
            if line.isEmpty { sentences += 1; if sentences == 1000 { break } }
        }
        let small = dir.write("conll-small.txt", text)
        let c = try run("ner-train", ["--train", small, "--dev", shared + "/conll2003/dev.txt", "--epochs", "3",
                                      "--learning-rate", "0.01", "--batch-size", "16", "--output", dir.file("conll"), "--quiet"])
        #expect(c.status == 0, "\(c.stderr)")
        let cr = try JSON.parse(try #require(c.lines.first))
        #expect(cr["metrics"]?["dev"]?["f1"]?.doubleValue ?? 0 > 0.2)
        #expect(try NERModel.load(dir.file("conll")).labels == ["LOC", "MISC", "ORG", "PER"])
    }
}
