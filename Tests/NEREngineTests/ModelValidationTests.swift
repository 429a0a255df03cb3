import Foundation
import NERCore
import NEREngine
import Testing
import TestSupport

/// Malformed model folders, as a hand edit, a foreign writer or a diverged training run leaves them:
/// every tool refuses them with exit 65 and a line naming what is wrong, never a crash and never
/// quietly different entities (docs/model-format.md).
@Suite(.serialized) struct ModelValidationTests {
    /// One small trained model, copied and damaged by each case.
    static let trained: (dir: TempDir, model: String)? = {
        let dir = TempDir("engine-validate")
        let train = dir.write("train.txt", Synthetic.corpus(160, seed: 1))
        let r = try? run("ner-train", ["--output", dir.file("m"), "--quiet"], stdin: Synthetic.job(train: train, dev: nil, epochs: 8))
        guard r?.status == 0 else { return nil }
        atexit { ModelValidationTests.trained?.dir.remove() }
        return (dir, dir.file("m"))
    }()

    func copy(_ label: String) throws -> String {
        let (dir, model) = try #require(Self.trained, "ner-train failed")
        let to = dir.file("\(label)-\(UUID().uuidString.prefix(6))")
        try FileManager.default.copyItem(atPath: model, toPath: to)
        return to
    }

    func infer(_ model: String) throws -> RunResult {
        try run("ner-infer", ["--model", model, "--format", "json", "--quiet"],
                stdin: #"{"text": "Grace Jones works for Globex in Oslo."}"# + "\n")
    }

    func editConfig(_ model: String, _ key: String, _ value: JSON) throws {
        let path = model + "/model.json"
        var j = try JSON.parse(try #require(FileManager.default.contents(atPath: path)))
        var config = try #require(j["config"])
        config[key] = value
        j["config"] = config
        try j.prettyEncoded().write(to: URL(fileURLWithPath: path))
    }

    /// The byte offset of a tensor's data in weights.bin, read from its table.
    func tensorOffset(_ weights: Data, _ name: String) throws -> Int {
        let count = Int(weights.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self) })
        for i in 0..<count {
            let at = 64 + 64 * i
            let entry = String(decoding: weights[at..<at + 40].prefix { $0 != 0 }, as: UTF8.self)
            if entry == name { return Int(weights.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at + 40, as: UInt64.self) }) }
        }
        throw ToolError.data("no tensor \(name) in weights.bin")
    }

    func poke(_ model: String, at offset: Int, _ bytes: [UInt8]) throws {
        let path = model + "/weights.bin"
        var data = try #require(FileManager.default.contents(atPath: path))
        data.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        try data.write(to: URL(fileURLWithPath: path))
    }

    static let nan: [UInt8] = withUnsafeBytes(of: Float.nan.bitPattern.littleEndian, Array.init)

    @Test func theUndamagedModelLoadsAndFindsEntities() throws {
        let r = try infer(try copy("ok"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"entities\":[{"), "\(r.stdout)")
    }

    @Test(arguments: [
        ("max_word_chars", JSON.int(-5)), ("max_word_chars", 0), ("max_word_chars", 1), ("max_word_chars", 65),
        ("max_word_chars", .int(1 << 40)), ("hidden", 0), ("hidden", .int(1 << 62)), ("word_dim", 5000),
        ("word_vocab", .int(1 << 40)), ("char_window", 2), ("char_window", -3), ("char_dim", -1),
        ("tag_count", 3), ("char_vocab", 0), ("max_word_chars", "25"),
    ])
    func configOutOfRangeIsRefusedWith65NamingTheField(key: String, value: JSON) throws {
        let model = try copy("config")
        try editConfig(model, key, value)
        let r = try infer(model)
        #expect(r.status == 65, "\(key) = \(value.compactString): \(r.stderr)")
        #expect(r.stderr.hasPrefix("ner-infer: error: model.json: config.\(key) "), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        let packed = try run("ner-pack", [model, "--home", model + "-home", "--quiet"])
        #expect(packed.status == 65, "\(packed.stderr)")
        let stored = (try? FileManager.default.contentsOfDirectory(atPath: model + "-home/artifacts")) ?? []
        #expect(stored.isEmpty, "nothing may be packed: \(stored)")
    }

    @Test func otherFieldsAreCheckedToo() throws {
        let cases: [(String, JSON, String)] = [
            ("labels", ["PER", "PER"], "labels"), ("labels", [1, 2], "labels"), ("tags", ["O"], "tags"),
            ("chars", ["ab"], "chars"), ("id", "../x", "id"), ("name", "a b", "name"),
            ("toolchain", ["min": "9.0.0", "max": "9.9.9"], "toolchain"), ("config", "big", "config"),
            ("files", ["weights": "../w.bin", "vocab": "vocab.bin"], "files"), ("created_at", 5, "created_at"),
        ]
        for (key, value, named) in cases {
            let model = try copy("field")
            let path = model + "/model.json"
            var j = try JSON.parse(try #require(FileManager.default.contents(atPath: path)))
            j[key] = value
            try j.prettyEncoded().write(to: URL(fileURLWithPath: path))
            let r = try infer(model)
            #expect(r.status == 65, "\(key): \(r.stderr)")
            #expect(r.stderr.hasPrefix("ner-infer: error: model.json: \(named)"), "\(key): \(r.stderr)")
        }
    }

    @Test func nonFiniteWeightsAreRefusedByLoadAndPack() throws {
        // A NaN among the dense weights (the CRF's transitions) made every sentence come out without
        // entities; loading refuses it.
        let dense = try copy("nan-dense")
        let weights = try #require(FileManager.default.contents(atPath: dense + "/weights.bin"))
        try poke(dense, at: try tensorOffset(weights, "crf.transitions") + 8, Self.nan)
        let r = try infer(dense)
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("crf.transitions holds a non-finite value"), "\(r.stderr)")
        let p = try run("ner-pack", [dense, "--home", dense + "-home", "--quiet"])
        #expect(p.status == 65, "\(p.stderr)")

        // One in a word vector spoils only the sentences with that word; loading leaves the word
        // vectors unread, so packing is where it is caught.
        let words = try copy("nan-words")
        try poke(words, at: try tensorOffset(weights, "word_embeddings") + 4 * 12 + 4, [0x00, 0x00, 0x80, 0x7F])
        let w = try run("ner-pack", [words, "--home", words + "-home", "--quiet"])
        #expect(w.status == 65, "\(w.stderr)")
        #expect(w.stderr.contains("word_embeddings holds a non-finite value (NaN or infinity) in row 1"), "\(w.stderr)")
        let s = try run("ner-pack", ["--home", words + "-home", "--quiet"], stdin: #"{"model_dir": "\#(words)"}"# + "\n")
        #expect(s.status == 65)
        #expect(s.stderr.hasPrefix("ner-pack: error: stdin:1: "), "\(s.stderr)")
    }

    @Test func corruptTensorTableIsRefusedNotTrapped() throws {
        let all1 = [UInt8](repeating: 0xFF, count: 8)
        for (label, offset) in [("data-offset", 16), ("file-size", 24), ("tensor-offset", 64 + 40)] {
            let model = try copy(label)
            try poke(model, at: offset, all1)
            let r = try infer(model)
            #expect(r.status == 65, "\(label): \(r.stderr)")
            #expect(r.stderr.contains("weights.bin"), "\(label): \(r.stderr)")
        }
    }
}
