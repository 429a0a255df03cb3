import NERCore
import NERText
import Testing

@Suite struct EntitiesTests {
    @Test func offsetsAndExactSubstrings() throws {
        let text = "George Washington went to  New  York."
        let tokens = try #require(Tokenizer.sentences(text).first)
        #expect(tokens.map(\.text) == ["George", "Washington", "went", "to", "New", "York", "."])
        let found = Entities.extract(tokens: tokens, tags: ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"],
                                     scores: [0.9, 0.8, 1, 1, 0.5, 0.25, 1], in: text)
        #expect(found == [
            Entity(text: "George Washington", tag: "PER", start: 0, end: 17, score: 0.85),
            Entity(text: "New  York", tag: "LOC", start: 27, end: 36, score: 0.375),
        ])
    }

    @Test func nonASCIIOffsets() throws {
        let text = "🙂 Zürich and Müller."
        let tokens = try #require(Tokenizer.sentences(text).first)
        let found = Entities.extract(tokens: tokens, tags: ["O", "B-LOC", "O", "B-PER", "O"],
                                     scores: [1, 0.123456, 1, 1, 1], in: text)
        #expect(found == [
            Entity(text: "Zürich", tag: "LOC", start: 2, end: 8, score: 0.1235),
            Entity(text: "Müller", tag: "PER", start: 13, end: 19, score: 1),
        ])
    }

    @Test func jsonRecordShape() throws {
        let e = Entity(text: "George Washington", tag: "PER", start: 0, end: 17, score: 0.99)
        #expect(e.json.compactString == #"{"end":17,"score":0.99,"start":0,"tag":"PER","text":"George Washington"}"#)
        #expect(try JSON.from(e) == e.json)
    }

    @Test func findMapsEverySentenceBackToItsText() {
        let gazetteer = ["Angela": "B-PER", "Merkel": "I-PER", "Paris": "B-LOC", "Berlin": "B-LOC"]
        var calls = 0
        let texts = ["Angela Merkel visited Paris. She left Berlin.", "", "Berlin"]
        let found = Entities.find(in: texts) { sentences in
            calls += 1
            return sentences.map { words in
                (tags: words.map { gazetteer[$0] ?? "O" }, scores: words.map { _ in Float(0.5) })
            }
        }
        #expect(calls == 1)
        #expect(found == [
            [Entity(text: "Angela Merkel", tag: "PER", start: 0, end: 13, score: 0.5),
             Entity(text: "Paris", tag: "LOC", start: 22, end: 27, score: 0.5),
             Entity(text: "Berlin", tag: "LOC", start: 38, end: 44, score: 0.5)],
            [],
            [Entity(text: "Berlin", tag: "LOC", start: 0, end: 6, score: 0.5)],
        ])
    }
}
