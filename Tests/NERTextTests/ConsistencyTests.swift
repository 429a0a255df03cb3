import NERText
import Testing

@Suite struct ConsistencyTests {
    /// Harmonized with every token at confidence 0.6, or as `scores` says.
    func harmonized(_ sentences: [[String]], _ tags: [[String]], scores: [[Float]]? = nil) -> [[String]] {
        var t = tags
        DocumentConsistency.harmonize(tokens: sentences, tags: &t, scores: scores ?? tags.map { $0.map { _ in 0.6 } })
        return t
    }

    /// Metonymy: a team named after its city is tagged with confidence, and keeps its type.
    @Test func aConfidentMentionKeepsItsType() {
        let tokens = [["NEW", "YORK", "1996-08-28"], ["NEW", "YORK", "beat", "Texas"], ["at", "NEW", "YORK"], ["NEW", "YORK", "rallied"]]
        let tags = [["B-LOC", "I-LOC", "O"], ["B-ORG", "I-ORG", "O", "B-ORG"], ["O", "B-LOC", "I-LOC"], ["B-ORG", "I-ORG", "O"]]
        let sure: [[Float]] = [[0.99, 0.99, 1], [0.6, 0.6, 1, 0.9], [1, 0.97, 0.97], [0.7, 0.7, 1]]
        // LOC holds no strict majority (2 of 4): nothing changes whatever the confidences.
        #expect(harmonized(tokens, tags) == tags)
        var three = tags
        three[3] = ["B-LOC", "I-LOC", "O"]
        // LOC 3 of 4: the unsure ORG mention becomes LOC, unless it is itself confident.
        #expect(harmonized(tokens, three, scores: sure)[1] == ["B-LOC", "I-LOC", "O", "B-ORG"])
        var confident = sure
        confident[1] = [0.96, 0.96, 1, 0.9]
        #expect(harmonized(tokens, three, scores: confident) == three)
    }

    @Test func aStrictMajorityRetypesTheOtherMentions() {
        let tokens = [["Caloi", "makes", "bikes"], ["Luiz", "founded", "Caloi"], ["Caloi", "grew"]]
        let tags = [["B-ORG", "O", "O"], ["B-PER", "O", "B-PER"], ["B-ORG", "O"]]
        #expect(harmonized(tokens, tags) == [["B-ORG", "O", "O"], ["B-PER", "O", "B-ORG"], ["B-ORG", "O"]])
    }

    @Test func multiTokenNamesMatchOnAllTheirWords() {
        let tokens = [["Casa", "Luiz", "Caloi"], ["in", "Casa", "Luiz", "Caloi"], ["Casa", "Luiz", "Caloi", "!"], ["Luiz", "Caloi"]]
        let tags = [["B-ORG", "I-ORG", "I-ORG"], ["O", "B-ORG", "I-ORG", "I-ORG"], ["B-PER", "I-PER", "I-PER", "O"], ["B-PER", "I-PER"]]
        // "Luiz Caloi" alone is another name, left as it is.
        #expect(harmonized(tokens, tags) == [tags[0], tags[1], ["B-ORG", "I-ORG", "I-ORG", "O"], ["B-PER", "I-PER"]])
    }

    @Test func tiesAndSingleMentionsChangeNothing() {
        let tokens = [["Jordan"], ["Jordan"], ["Jordan", "and", "Jordan"], ["Paris"]]
        let tie = [["B-PER"], ["B-LOC"], ["B-PER", "O", "B-LOC"], ["B-LOC"]]
        #expect(harmonized(tokens, tie) == tie)
        // Two against one, but the winner needs two mentions: here it has them.
        let twoToOne = [["B-PER"], ["B-LOC"], ["B-PER", "O", "O"], ["B-LOC"]]
        #expect(harmonized(tokens, twoToOne) == [["B-PER"], ["B-PER"], ["B-PER", "O", "O"], ["B-LOC"]])
        // Case matters: "paris" is another string.
        let cased = [["Paris"], ["paris"], ["Paris"]]
        let t = [["B-LOC"], ["B-PER"], ["B-LOC"]]
        #expect(harmonized(cased, t) == t)
    }

    /// A retyped span must not swallow the next entity: in BIO an `I-` of the new type after it
    /// would read as its continuation.
    @Test func aRetypedSpanKeepsItsBoundaries() {
        let tokens = [["Ajax", "Amsterdam"], ["Ajax"], ["Ajax"]]
        let tags = [["B-LOC", "I-ORG"], ["B-ORG"], ["B-ORG"]]
        let out = harmonized(tokens, tags)
        #expect(out == [["B-ORG", "B-ORG"], ["B-ORG"], ["B-ORG"]])
        #expect(Tags.spans(out[0]).count == 2)
    }

    @Test func documentsAreRunsOfTheSameNumberAndSentencesWithoutOneStandAlone() {
        func s(_ w: String, _ doc: Int?) -> Sentence { Sentence(tokens: [w], tags: ["O"], document: doc) }
        let sentences = [s("Acme", 0), s("Acme", 0), s("Acme", 0), s("Acme", 1), s("Acme", 1), s("Acme", 1),
                         s("Acme", nil), s("Acme", nil), s("Acme", nil)]
        var predicted = [["B-ORG"], ["B-ORG"], ["B-PER"], ["B-PER"], ["B-PER"], ["B-ORG"], ["B-ORG"], ["B-ORG"], ["B-PER"]]
        DocumentConsistency.harmonize(sentences, predicted: &predicted, scores: predicted.map { _ in [0.5] })
        #expect(predicted == [["B-ORG"], ["B-ORG"], ["B-ORG"], ["B-PER"], ["B-PER"], ["B-PER"], ["B-ORG"], ["B-ORG"], ["B-PER"]])
    }

    /// The text path: each text passed to `Entities.find` is one document, and texts do not vote
    /// for each other.
    @Test func eachTextIsOneDocument() {
        let texts = ["Caloi makes bikes. Caloi grew. Caloi was sold.", "Caloi smiled."]
        let found = Entities.find(in: texts) { sentences in
            sentences.enumerated().map { i, words in
                // The second sentence is the odd one out, and the other text says PER.
                let type = (i == 1 || i == 3) ? "PER" : "ORG"
                return (tags: words.map { $0 == "Caloi" ? "B-" + type : "O" }, scores: words.map { _ in Float(0.8) })
            }
        }
        #expect(found[0].map(\.tag) == ["ORG", "ORG", "ORG"])
        #expect(found[1].map(\.tag) == ["PER"])
    }
}
