import NERText
import Testing

@Suite struct TagsTests {
    func span(_ type: String, _ start: Int, _ end: Int) -> EntitySpan { EntitySpan(type: type, start: start, end: end) }

    @Test func iob1Spans() {
        // I-X after O starts an entity; B-X after I-X of the same type splits; a type change splits.
        #expect(Tags.spans(["O", "I-ORG", "I-ORG", "O"]) == [span("ORG", 1, 3)])
        #expect(Tags.spans(["I-LOC", "I-LOC", "B-LOC", "I-LOC"]) == [span("LOC", 0, 2), span("LOC", 2, 4)])
        #expect(Tags.spans(["I-PER", "I-ORG"]) == [span("PER", 0, 1), span("ORG", 1, 2)])
        #expect(Tags.spans(["O", "B-MISC", "I-MISC"]) == [span("MISC", 1, 3)])
        #expect(Tags.spans(["B-MISC", "O", "B-MISC"]) == [span("MISC", 0, 1), span("MISC", 2, 3)])
        #expect(Tags.spans([]) == [])
        #expect(Tags.spans(["O", "O"]) == [])
    }

    @Test func bioSpansIncludingInvalidSequences() {
        #expect(Tags.spans(["B-PER", "I-PER", "O", "B-LOC"]) == [span("PER", 0, 2), span("LOC", 3, 4)])
        // conlleval reads an I- with another type than the B- before it as a new entity.
        #expect(Tags.spans(["B-PER", "I-LOC"]) == [span("PER", 0, 1), span("LOC", 1, 2)])
        #expect(Tags.spans(["B-PER", "B-PER"]) == [span("PER", 0, 1), span("PER", 1, 2)])
    }

    @Test func bioesSpans() {
        #expect(Tags.spans(["S-PER", "B-ORG", "I-ORG", "E-ORG", "S-ORG"])
                == [span("PER", 0, 1), span("ORG", 1, 4), span("ORG", 4, 5)])
        #expect(Tags.spans(["B-LOC", "E-LOC", "E-LOC"]) == [span("LOC", 0, 2), span("LOC", 2, 3)])
        #expect(Tags.spans(["S-PER", "I-PER"]) == [span("PER", 0, 1), span("PER", 1, 2)])
    }

    @Test func bareTypesReadAsInside() {
        #expect(Tags.spans(["PER", "PER", "O", "LOC"]) == [span("PER", 0, 2), span("LOC", 3, 4)])
    }

    @Test func conversions() {
        #expect(Tags.toBIO(["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]) == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"])
        #expect(Tags.toBIOES(["B-PER", "I-PER", "I-PER", "O", "B-LOC", "B-ORG", "I-ORG"])
                == ["B-PER", "I-PER", "E-PER", "O", "S-LOC", "B-ORG", "E-ORG"])
        #expect(Tags.fromBIOES(["B-PER", "I-PER", "E-PER", "O", "S-LOC", "B-ORG", "E-ORG"])
                == ["B-PER", "I-PER", "I-PER", "O", "B-LOC", "B-ORG", "I-ORG"])
    }

    @Test func conversionsRoundTrip() {
        let bio: [[String]] = [
            [], ["O"], ["B-PER"], ["B-PER", "I-PER", "I-PER", "I-PER"], ["B-LOC", "B-LOC", "O", "B-ORG", "I-ORG"],
            ["O", "B-MISC", "I-MISC", "B-MISC", "O", "B-PER"],
        ]
        for tags in bio {
            #expect(Tags.fromBIOES(Tags.toBIOES(tags)) == tags)
            #expect(Tags.toBIO(tags) == tags)
            #expect(Tags.spans(Tags.toBIOES(tags)) == Tags.spans(tags))
        }
        let iob1 = ["I-LOC", "B-LOC", "O", "I-PER", "I-PER", "I-ORG"]
        #expect(Tags.spans(Tags.toBIO(iob1)) == Tags.spans(iob1))
        #expect(Tags.toBIO(iob1) == ["B-LOC", "B-LOC", "O", "B-PER", "I-PER", "B-ORG"])
    }
}
