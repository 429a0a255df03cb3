import Foundation
import NERCore
import NEREngine
import Testing
import TestSupport

/// Sentence vectors (`NERModel.sentenceVectors`): exact for identical texts, independent of the
/// rest of the batch, and close for paraphrases with GloVe vectors.
@Suite(.serialized) struct SentenceVectorTests {
    /// A small model trained from the Wikigold examples and the given vectors, once per file.
    static func model(embeddings: String, in dir: TempDir) throws -> NERModel {
        let data = TestTools.repoRoot + "/examples/data"
        let job = """
        {"name": "sim", "spec": {"train": "\(data)/train.txt", "embeddings": "\(embeddings)", "epochs": 1, \
        "hidden_size": 32, "char_dim": 16, "threads": 2, "seed": 1}}
        """
        let trained = try run("ner-train", ["--output", dir.file("model"), "--quiet"], stdin: job + "\n")
        try #require(trained.status == 0, "\(trained.stderr)")
        return try NERModel.load(dir.file("model"))
    }

    static let demoVectors = TestTools.repoRoot + "/examples/data/glove.6B.50d.demo.txt.gz"

    /// (sentence, close paraphrase, unrelated sentence), from Tests/Fixtures/similarity-triples.tsv.
    static func triples() throws -> [(String, String, String)] {
        let text = try String(contentsOfFile: TestTools.repoRoot + "/Tests/Fixtures/similarity-triples.tsv", encoding: .utf8)
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return (f[0], f[1], f[2])
        }
    }

    @Test func identicalTextsAndBatchIndependence() throws {
        let dir = TempDir("sentence-vectors")
        defer { dir.remove() }
        let model = try Self.model(embeddings: Self.demoVectors, in: dir)
        let text = "The children played football in the park after school."
        let alone = model.sentenceVectors([text])[0]
        #expect(alone.count == model.sentenceVectorSize)
        #expect(abs(NERModel.cosine(alone, model.sentenceVectors([text])[0]) - 1) < 1e-5)
        #expect(abs(NERModel.cosine(alone, alone) - 1) < 1e-5)
        let norm = alone.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(abs(norm - 1) < 1e-5)

        // Among texts longer and shorter, several sentences, and a copy of itself: the same vector.
        let others = [
            "Paris.",
            String(repeating: "Stock prices fell sharply on Monday morning in London and New York . ", count: 12),
            "He bought a new car. She sold her old bicycle. They moved to Berlin in May.",
            "",
        ]
        let batch = model.sentenceVectors(others + [text] + others.reversed() + [text])
        for v in [batch[others.count], batch.last!] {
            #expect(zip(alone, v).allSatisfy { abs($0 - $1) < 1e-5 })
        }
        for (i, other) in others.enumerated() where !other.isEmpty {
            let single = model.sentenceVectors([other])[0]
            #expect(zip(single, batch[i]).allSatisfy { abs($0 - $1) < 1e-5 }, "text \(i)")
        }
        // No tokens, no vector.
        #expect(batch[others.count - 1].allSatisfy { $0 == 0 })
        #expect(NERModel.cosine(batch[others.count - 1], alone) == 0)
    }

    /// Paraphrase above the unrelated sentence in at least 90% of the triples. The demo vectors hold
    /// 620 of the 629 distinct tokens of the triples (lower-cased).
    @Test func paraphrasesOutscoreUnrelatedSentencesWithDemoVectors() throws {
        let dir = TempDir("sentence-triples")
        defer { dir.remove() }
        try Self.expectTriples(with: try Self.model(embeddings: Self.demoVectors, in: dir), vectors: "demo GloVe subset")
    }

    @Test(.enabled(if: TestTools.sharedData != nil, "needs ../shared/data/glove (the full GloVe 6B 50d); absent here"))
    func paraphrasesOutscoreUnrelatedSentencesWithFullGloVe() throws {
        let dir = TempDir("sentence-triples-full")
        defer { dir.remove() }
        let vectors = TestTools.sharedData! + "/glove/glove.6B.50d.txt.gz"
        try Self.expectTriples(with: try Self.model(embeddings: vectors, in: dir), vectors: "full GloVe 6B 50d")
    }

    static func expectTriples(with model: NERModel, vectors: String) throws {
        let triples = try triples()
        #expect(triples.count >= 50)
        let v = model.sentenceVectors(triples.flatMap { [$0.0, $0.1, $0.2] })
        var right = 0
        for i in triples.indices where NERModel.cosine(v[3 * i], v[3 * i + 1]) > NERModel.cosine(v[3 * i], v[3 * i + 2]) {
            right += 1
        }
        let accuracy = Double(right) / Double(triples.count)
        print("sentence vectors, \(vectors): paraphrase above unrelated in \(right) of \(triples.count) triples (\(String(format: "%.1f", accuracy * 100))%)")
        #expect(accuracy >= 0.9, "\(right) of \(triples.count)")
    }
}
