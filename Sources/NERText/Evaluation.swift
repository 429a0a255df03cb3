import NERCore

/// Precision, recall and F1 of one entity type; `support` is its number of gold entities.
public struct TypeScore: Sendable, Equatable {
    public var precision, recall, f1: Double
    public var support: Int

    public init(precision: Double, recall: Double, f1: Double, support: Int) {
        self.precision = precision
        self.recall = recall
        self.f1 = f1
        self.support = support
    }
}

/// Entity-level scores. All rates are fractions in [0, 1] (conlleval prints percentages: multiply by 100).
public struct Scores: Sendable, Equatable {
    public var precision, recall, f1: Double
    public var perType: [String: TypeScore]
    public var goldCount, predictedCount, correctCount: Int

    public init(precision: Double, recall: Double, f1: Double, perType: [String: TypeScore],
                goldCount: Int, predictedCount: Int, correctCount: Int) {
        self.precision = precision
        self.recall = recall
        self.f1 = f1
        self.perType = perType
        self.goldCount = goldCount
        self.predictedCount = predictedCount
        self.correctCount = correctCount
    }

    /// `{"precision", "recall", "f1", "per_type": {"PER": {"precision", "recall", "f1", "support"}},
    /// "gold_count", "predicted_count", "correct_count"}`.
    public var json: JSON {
        var per: [String: JSON] = [:]
        for (type, s) in perType {
            per[type] = ["precision": .double(s.precision), "recall": .double(s.recall), "f1": .double(s.f1),
                         "support": .int(Int64(s.support))]
        }
        return ["precision": .double(precision), "recall": .double(recall), "f1": .double(f1),
                "per_type": .object(per), "gold_count": .int(Int64(goldCount)),
                "predicted_count": .int(Int64(predictedCount)), "correct_count": .int(Int64(correctCount))]
    }
}

/// The standard NER measure: an entity counts as correct only when its span and type both match a gold
/// entity exactly; micro-averaged over all entities, and per type.
public enum Evaluation {
    /// Scores `predicted` against `gold`, sentence by sentence (the i-th lists belong together). Spans are
    /// read with conlleval's chunk rules, so IOB1, BIO and BIOES tags all score as conlleval and seqeval
    /// score them. With nothing predicted, precision is 0 (conlleval's convention), and F1 is 0 whenever
    /// precision + recall is 0.
    public static func score(gold: [[String]], predicted: [[String]]) -> Scores {
        var counts = EvaluationCounts()
        for i in 0..<max(gold.count, predicted.count) {
            counts.add(gold: i < gold.count ? gold[i] : [], predicted: i < predicted.count ? predicted[i] : [])
        }
        return counts.scores
    }
}

/// Running entity counts, for scoring a stream sentence by sentence without keeping it.
public struct EvaluationCounts: Sendable, Equatable {
    public private(set) var gold: [String: Int] = [:]
    public private(set) var predicted: [String: Int] = [:]
    public private(set) var correct: [String: Int] = [:]

    public init() {}

    public mutating func add(gold goldTags: [String], predicted predictedTags: [String]) {
        let g = Tags.spans(goldTags), p = Tags.spans(predictedTags)
        for s in g { gold[s.type, default: 0] += 1 }
        for s in p { predicted[s.type, default: 0] += 1 }
        for s in Set(g).intersection(p) { correct[s.type, default: 0] += 1 }
    }

    public var scores: Scores {
        func rates(_ c: Int, _ g: Int, _ p: Int) -> (Double, Double, Double) {
            let precision = p > 0 ? Double(c) / Double(p) : 0
            let recall = g > 0 ? Double(c) / Double(g) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            return (precision, recall, f1)
        }
        var per: [String: TypeScore] = [:]
        for type in Set(gold.keys).union(predicted.keys) {
            let g = gold[type] ?? 0
            let (pr, re, f) = rates(correct[type] ?? 0, g, predicted[type] ?? 0)
            per[type] = TypeScore(precision: pr, recall: re, f1: f, support: g)
        }
        let g = gold.values.reduce(0, +), p = predicted.values.reduce(0, +), c = correct.values.reduce(0, +)
        let (pr, re, f) = rates(c, g, p)
        return Scores(precision: pr, recall: re, f1: f, perType: per, goldCount: g, predictedCount: p, correctCount: c)
    }
}
