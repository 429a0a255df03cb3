import Foundation
import NERCore
import NEREngine
import Testing
import TestSupport

/// Warm start (`init_from`, docs/records.md): training that begins from a model's weights.
@Suite struct WarmStartTests {
    /// The synthetic corpus with one entity type's tags turned into O.
    static func without(_ type: String, _ corpus: String) -> String {
        corpus.replacingOccurrences(of: " B-\(type)\n", with: " O\n").replacingOccurrences(of: " I-\(type)\n", with: " O\n")
    }

    func train(_ dir: TempDir, _ name: String, train: String, dev: String, epochs: Int, extra: [String: JSON] = [:]) throws -> JSON {
        var record = try JSON.parse(Synthetic.job(train: train, dev: dev, epochs: epochs))
        var spec = try #require(record["spec"]?.objectValue)
        for (k, v) in extra { spec[k] = v }
        record["spec"] = .object(spec)
        record["name"] = .string(name)
        let r = try run("ner-train", ["--output", dir.file(name), "--quiet"], stdin: record.compactString + "\n")
        try #require(r.status == 0, "\(r.stderr)")
        return try JSON.parse(try #require(r.lines.first))
    }

    /// With the same data and tags and a learning rate too small to move anything, the warm-started
    /// model tags exactly as its parent: every weight carried over to the right place.
    @Test func sameTagsReproduceTheParentsPredictions() throws {
        let dir = TempDir("warm-same"); defer { dir.remove() }
        let trainFile = dir.write("train.txt", Synthetic.corpus(80, seed: 1))
        let devFile = dir.write("dev.txt", Synthetic.corpus(20, seed: 2))
        let parent = try train(dir, "parent", train: trainFile, dev: devFile, epochs: 3)
        let child = try train(dir, "child", train: trainFile, dev: devFile, epochs: 1,
                              extra: ["init_from": .string(dir.file("parent")), "learning_rate": 1e-9])
        #expect(child["parent_id"] == parent["model_id"])
        #expect(child["warm_start"]?["carried_types"] == ["LOC", "ORG", "PER"])
        #expect(child["warm_start"]?["new_types"] == [])
        #expect(child["warm_start"]?["new_words"] == 0)

        let sentences = Synthetic.corpus(40, seed: 9).split(separator: "\n\n").map { $0.split(separator: "\n").map { String($0.split(separator: " ")[0]) } }
        let a = try NERModel.load(dir.file("parent")).predict(sentences)
        let b = try NERModel.load(dir.file("child")).predict(sentences)
        #expect(a.map(\.tags) == b.map(\.tags))
        #expect(zip(a, b).allSatisfy { x, y in zip(x.scores, y.scores).allSatisfy { abs($0 - $1) < 1e-3 } })
    }

    /// A parent that never saw ORG, warm-started on data that has it: ORG is learned, and the types
    /// it knew stay as good as they were.
    @Test func aNewTypeIsLearnedAndTheOldOnesStay() throws {
        let dir = TempDir("warm-new-type"); defer { dir.remove() }
        let corpus = Synthetic.corpus(160, seed: 1), devCorpus = Synthetic.corpus(40, seed: 2)
        let parent = try train(dir, "parent", train: dir.write("train-no-org.txt", Self.without("ORG", corpus)),
                               dev: dir.write("dev-no-org.txt", Self.without("ORG", devCorpus)), epochs: 12)
        let known = try #require(parent["metrics"]?["dev"]?["per_type"])
        #expect(known["ORG"] == nil)
        let child = try train(dir, "child", train: dir.write("train.txt", corpus), dev: dir.write("dev.txt", devCorpus),
                              epochs: 6, extra: ["init_from": .string(dir.file("parent")), "freeze_epochs": 1])
        #expect(child["warm_start"]?["carried_types"] == ["LOC", "PER"])
        #expect(child["warm_start"]?["new_types"] == ["ORG"])
        let scores = try #require(child["metrics"]?["dev"]?["per_type"])
        #expect(scores["ORG"]?["f1"]?.doubleValue ?? 0 >= 0.95, "\(scores)")
        for type in ["PER", "LOC"] {
            let before = known[type]?["f1"]?.doubleValue ?? 0, after = scores[type]?["f1"]?.doubleValue ?? 0
            #expect(before >= 0.95 && after >= before - 0.02, "\(type): \(before) -> \(after)")
        }
    }

    /// Mismatches are exit 65 naming them: vectors of another dimension than the parent's words,
    /// and a parent model file of a format version this build does not read.
    @Test func mismatchedParentsAreRefused() throws {
        let dir = TempDir("warm-mismatch"); defer { dir.remove() }
        let trainFile = dir.write("train.txt", Synthetic.corpus(20, seed: 1))
        _ = try train(dir, "parent", train: trainFile, dev: trainFile, epochs: 1)
        let vectors = dir.write("v.txt", "alice 0.1 0.2 0.3 0.4\nparis 0.5 0.6 0.7 0.8\n")
        let job = Synthetic.job(train: trainFile, dev: nil, epochs: 1, extra: [:])
        let dims = try run("ner-train", ["--output", dir.file("c1"), "--init-from", dir.file("parent"), "--embeddings", vectors, "-q"], stdin: job)
        #expect(dims.status == 65)
        #expect(dims.stderr.contains("word_dim 12"), "\(dims.stderr)")

        let future = dir.file("future")
        try FileManager.default.copyItem(atPath: dir.file("parent"), toPath: future)
        var model = try JSON.parse(try #require(FileManager.default.contents(atPath: future + "/model.json")))
        model["format_version"] = 99
        try model.prettyEncoded().write(to: URL(fileURLWithPath: future + "/model.json"))
        let version = try run("ner-train", ["--output", dir.file("c2"), "--init-from", future, "-q"], stdin: job)
        #expect(version.status == 65)
        #expect(version.stderr.contains("format version 99"), "\(version.stderr)")

        let missing = try run("ner-train", ["--output", dir.file("c3"), "--init-from", "no-such-model", "--home", dir.path, "-q"], stdin: job)
        #expect(missing.status == 66, "\(missing.stderr)")
        #expect(!fileExists(dir.file("c1")) && !fileExists(dir.file("c2")) && !fileExists(dir.file("c3")))
    }
}

/// Weight averaging (`weight_average`, docs/records.md): the moving average of the epoch-end weights
/// is scored on dev beside the weights themselves.
@Suite struct WeightAverageTests {
    @Test func anAverageOverOneEpochIsTheWeightsAndALongerOneIsScoredEachEpoch() throws {
        let dir = TempDir("weight-average"); defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(80, seed: 1))
        let dev = dir.write("dev.txt", Synthetic.corpus(20, seed: 2))
        func history(_ k: Int) throws -> [JSON] {
            var record = try JSON.parse(Synthetic.job(train: train, dev: dev, epochs: 4))
            var spec = try #require(record["spec"]?.objectValue)
            spec["weight_average"] = .int(Int64(k))
            record["spec"] = .object(spec)
            let r = try run("ner-train", ["--output", dir.file("m\(k)"), "--quiet"], stdin: record.compactString + "\n")
            try #require(r.status == 0, "\(r.stderr)")
            #expect(try JSON.parse(try #require(r.lines.first))["spec"]?["weight_average"]?.intValue == k)
            return try String(contentsOfFile: dir.file("m\(k)/history.ndjson"), encoding: .utf8)
                .split(separator: "\n").map { try JSON.parse(String($0)) }
        }
        // Over one epoch the average is the weights themselves: the same score every epoch.
        let one = try history(1)
        #expect(one.count == 4)
        #expect(one.allSatisfy { $0["dev_f1_average"] != nil && $0["dev_f1_average"] == $0["dev_f1"] }, "\(one)")
        // Over three, it is scored every epoch; the first epoch's average is that epoch's weights.
        let three = try history(3)
        #expect(three.allSatisfy { $0["dev_f1_average"]?.doubleValue != nil })
        #expect(three[0]["dev_f1_average"] == three[0]["dev_f1"])
        // Without it, nothing is averaged.
        #expect(try history(0).allSatisfy { $0["dev_f1_average"] == nil })
    }
}

/// Replay (`replay`, `replay_sentences`, docs/records.md): sentences of another file, drawn afresh
/// each epoch, trained on beside the training set.
@Suite struct ReplayTests {
    func trainRecord(_ dir: TempDir, _ name: String, train: String, dev: String, epochs: Int, _ extra: [String: JSON]) throws -> RunResult {
        var record = try JSON.parse(Synthetic.job(train: train, dev: dev, epochs: epochs))
        var spec = try #require(record["spec"]?.objectValue)
        for (k, v) in extra { spec[k] = v }
        spec["learning_rate"] = 0.004
        record["spec"] = .object(spec)
        return try run("ner-train", ["--output", dir.file(name)], stdin: record.compactString + "\n")
    }

    /// Ten sentences teach little; the same ten with 150 replayed ones teach much more, so the
    /// replayed sentences are trained on. Types the training data lacks are read as O.
    @Test func replayedSentencesAreTrainedOnAndForeignTypesDropped() throws {
        let dir = TempDir("replay"); defer { dir.remove() }
        let corpus = Synthetic.corpus(160, seed: 1)
        let sentences = corpus.split(separator: "\n\n", omittingEmptySubsequences: true)
        let few = dir.write("few.txt", sentences.prefix(10).joined(separator: "\n\n") + "\n")
        let many = dir.write("many.txt", sentences.dropFirst(10).joined(separator: "\n\n") + "\n")
        let dev = dir.write("dev.txt", Synthetic.corpus(40, seed: 2))
        let alone = try trainRecord(dir, "alone", train: few, dev: dev, epochs: 4, [:])
        let replayed = try trainRecord(dir, "replayed", train: few, dev: dev, epochs: 4, ["replay": .string(many), "replay_sentences": 150])
        try #require(alone.status == 0 && replayed.status == 0, "\(alone.stderr)\n\(replayed.stderr)")
        let a = try JSON.parse(try #require(alone.lines.first)), r = try JSON.parse(try #require(replayed.lines.first))
        let fa = a["metrics"]?["dev"]?["f1"]?.doubleValue ?? 1, fr = r["metrics"]?["dev"]?["f1"]?.doubleValue ?? 0
        #expect(fr >= 0.75 && fr > fa + 0.3, "alone \(fa), with replay \(fr)")
        #expect(r["spec"]?["replay_sentences"] == 150)
        #expect(replayed.stderr.contains("replaying 150 of the 150 sentences of \(many) each epoch"), "\(replayed.stderr)")

        // Without ORG in the training data, the replayed ORG tags are read as O: no ORG is learned.
        let noOrg = dir.write("few-no-org.txt", WarmStartTests.without("ORG", try String(contentsOfFile: few, encoding: .utf8)))
        let dropped = try trainRecord(dir, "dropped", train: noOrg, dev: dev, epochs: 4, ["replay": .string(many), "replay_sentences": 150])
        try #require(dropped.status == 0, "\(dropped.stderr)")
        let d = try JSON.parse(try #require(dropped.lines.first))
        let org = d["metrics"]?["dev"]?["per_type"]?["ORG"]
        #expect(org?["support"]?.intValue ?? 0 > 0 && org?["precision"]?.doubleValue == 0 && org?["recall"]?.doubleValue == 0, "\(String(describing: org))")
        #expect(d["metrics"]?["dev"]?["predicted_count"]?.intValue ?? 0 > 0)
        #expect(dropped.stderr.contains("its ORG read as O"), "\(dropped.stderr)")
        // Unset, replay_sentences is the training set's size (10 here), at most the whole file.
        let unset = try trainRecord(dir, "unset", train: noOrg, dev: dev, epochs: 1, ["replay": .string(many)])
        try #require(unset.status == 0, "\(unset.stderr)")
        #expect(try JSON.parse(try #require(unset.lines.first))["spec"]?["replay_sentences"] == 10)
    }

    @Test func badReplaySettingsAreRefused() throws {
        let dir = TempDir("replay-bad"); defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(10, seed: 1))
        let bad = dir.write("bad.txt", "Alice B-PER\nParis B-LOC extra\n")
        let cases: [([String: JSON], Int32, String)] = [
            (["replay_sentences": 5], 65, "replay_sentences needs replay"),
            (["replay": .string(dir.file("missing.txt"))], 66, "replay file"),
            (["replay": .string(train), "replay_sentences": 0], 65, "replay_sentences must be between 1"),
            (["replay": .string(bad)], 65, "bad.txt:2: expected 2 columns, found 3"),
        ]
        for (i, (extra, status, message)) in cases.enumerated() {
            let r = try trainRecord(dir, "m\(i)", train: train, dev: train, epochs: 1, extra)
            #expect(r.status == status, "\(extra): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(extra): \(r.stderr)")
            #expect(!fileExists(dir.file("m\(i)")))
        }
    }
}
