import NERCore
import NERText
import Testing

@Suite struct EvaluationTests {
    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) < 1e-9 }

    @Test func oneRightOneWrongType() throws {
        let s = Evaluation.score(gold: [["B-PER", "I-PER", "O", "B-LOC"]], predicted: [["B-PER", "I-PER", "O", "B-ORG"]])
        #expect((s.goldCount, s.predictedCount, s.correctCount) == (2, 2, 1))
        #expect(close(s.precision, 0.5) && close(s.recall, 0.5) && close(s.f1, 0.5))
        #expect(s.perType["PER"] == TypeScore(precision: 1, recall: 1, f1: 1, support: 1))
        #expect(s.perType["LOC"] == TypeScore(precision: 0, recall: 0, f1: 0, support: 1))
        #expect(s.perType["ORG"] == TypeScore(precision: 0, recall: 0, f1: 0, support: 0))
    }

    @Test func missedEntityLowersRecallOnly() {
        let s = Evaluation.score(gold: [["B-PER", "I-PER", "O", "B-LOC"]], predicted: [["B-PER", "I-PER", "O", "O"]])
        #expect(close(s.precision, 1) && close(s.recall, 0.5))
        #expect(close(s.f1, 2.0 / 3.0))
    }

    @Test func partialSpanIsWrong() {
        // Exact match only: a predicted `New` for gold `New York` is one false positive and one miss.
        let s = Evaluation.score(gold: [["B-LOC", "I-LOC"]], predicted: [["B-LOC", "O"]])
        #expect((s.goldCount, s.predictedCount, s.correctCount) == (1, 1, 0))
        #expect(s.f1 == 0)
    }

    @Test func iob1GoldAgainstBIOPredictions() {
        // I-X after O starts an entity, so IOB1 gold and BIO predictions of the same spans agree.
        let s = Evaluation.score(gold: [["I-PER", "I-PER", "O", "I-LOC"]], predicted: [["B-PER", "I-PER", "O", "B-LOC"]])
        #expect(close(s.f1, 1) && s.correctCount == 2)
    }

    @Test func iob1BAfterISplits() {
        // Gold is two LOC entities (B- after I- of the same type); one merged prediction matches neither.
        let s = Evaluation.score(gold: [["I-LOC", "B-LOC"]], predicted: [["I-LOC", "I-LOC"]])
        #expect((s.goldCount, s.predictedCount, s.correctCount) == (2, 1, 0))
        #expect(s.precision == 0 && s.recall == 0 && s.f1 == 0)
    }

    @Test func typeChangeMidSpan() {
        // `I-PER I-ORG` is two entities; predicting the PER half right gives P = 1/1, R = 1/2.
        let s = Evaluation.score(gold: [["I-PER", "I-ORG", "O"]], predicted: [["I-PER", "O", "O"]])
        #expect((s.goldCount, s.predictedCount, s.correctCount) == (2, 1, 1))
        #expect(close(s.precision, 1) && close(s.recall, 0.5) && close(s.f1, 2.0 / 3.0))
        #expect(s.perType["ORG"]?.support == 1 && s.perType["ORG"]?.recall == 0)
    }

    @Test func entityAtSentenceEndAndSentencesDoNotMerge() {
        // An entity ending one sentence and one starting the next are two entities.
        let gold = [["O", "I-MISC"], ["I-MISC", "O"]]
        let s = Evaluation.score(gold: gold, predicted: gold)
        #expect((s.goldCount, s.correctCount) == (2, 2))
        let merged = Evaluation.score(gold: gold, predicted: [["O", "I-MISC"], ["O", "O"]])
        #expect((merged.goldCount, merged.predictedCount, merged.correctCount) == (2, 1, 1))
        #expect(close(merged.precision, 1) && close(merged.recall, 0.5))
    }

    @Test func emptyPredictionsScoreZeroPrecision() {
        let s = Evaluation.score(gold: [["B-PER", "O", "B-LOC", "I-LOC"], ["B-ORG"]], predicted: [["O", "O", "O", "O"], ["O"]])
        #expect((s.goldCount, s.predictedCount, s.correctCount) == (3, 0, 0))
        #expect(s.precision == 0 && s.recall == 0 && s.f1 == 0)
        let none = Evaluation.score(gold: [["O"]], predicted: [["O"]])
        #expect(none.precision == 0 && none.recall == 0 && none.f1 == 0 && none.perType.isEmpty)
    }

    @Test func microAverageOverSentences() {
        let s = Evaluation.score(gold: [["B-PER"], ["B-LOC", "O", "B-ORG"]], predicted: [["B-PER"], ["B-LOC", "B-PER", "O"]])
        #expect((s.goldCount, s.predictedCount, s.correctCount) == (3, 3, 2))
        #expect(close(s.precision, 2.0 / 3.0) && close(s.recall, 2.0 / 3.0) && close(s.f1, 2.0 / 3.0))
        let per = s.perType["PER"]
        #expect(per?.support == 1 && per?.precision == 0.5 && per?.recall == 1)
        #expect(close(per?.f1 ?? 0, 2.0 / 3.0))
    }

    @Test func countsStreamTheSameAsScore() {
        var c = EvaluationCounts()
        c.add(gold: ["B-PER"], predicted: ["B-PER"])
        c.add(gold: ["B-LOC", "O", "B-ORG"], predicted: ["B-LOC", "B-PER", "O"])
        #expect(c.scores == Evaluation.score(gold: [["B-PER"], ["B-LOC", "O", "B-ORG"]],
                                             predicted: [["B-PER"], ["B-LOC", "B-PER", "O"]]))
    }

    @Test func jsonShape() {
        let s = Evaluation.score(gold: [["B-PER", "O"]], predicted: [["B-PER", "B-LOC"]])
        let j = s.json
        #expect(j["precision"] == .double(0.5))
        #expect(j["recall"] == .double(1))
        #expect(j["gold_count"] == .int(1) && j["predicted_count"] == .int(2) && j["correct_count"] == .int(1))
        #expect(j["per_type"]?["PER"]?["support"] == .int(1))
        #expect(j["per_type"]?["LOC"]?["precision"] == .double(0))
    }
}

@Suite struct SeqevalAgreementTests {
    /// Random tag sequences in each scheme score exactly as seqeval (and so conlleval) scores them.
    @Test(arguments: seqevalCases.map(\.scheme))
    func matchesSeqeval(scheme: String) throws {
        let c = try #require(seqevalCases.first { $0.scheme == scheme })
        let s = Evaluation.score(gold: c.gold, predicted: c.predicted)
        #expect(abs(s.precision - c.precision) < 1e-12)
        #expect(abs(s.recall - c.recall) < 1e-12)
        #expect(abs(s.f1 - c.f1) < 1e-12)
        for (type, v) in c.perType {
            let t = try #require(s.perType[type])
            #expect(abs(t.precision - v[0]) < 1e-12 && abs(t.recall - v[1]) < 1e-12 && abs(t.f1 - v[2]) < 1e-12, "\(type)")
            #expect(t.support == Int(v[3]))
        }
    }
}
