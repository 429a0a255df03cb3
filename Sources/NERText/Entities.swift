import NERCore

/// An entity found in text, the shape `POST /ner` and `ner-infer` return (docs/records.md):
/// `{"text": "George Washington", "tag": "PER", "start": 0, "end": 17, "score": 0.99}`.
/// `start`/`end` count Unicode scalars from the start of the input text, end exclusive.
public struct Entity: Codable, Sendable, Equatable {
    public var text: String
    public var tag: String
    public var start: Int
    public var end: Int
    public var score: Double

    public init(text: String, tag: String, start: Int, end: Int, score: Double) {
        self.text = text
        self.tag = tag
        self.start = start
        self.end = end
        self.score = score
    }

    /// The record as a JSON object, without a round trip through an encoder.
    public var json: JSON {
        ["text": .string(text), "tag": .string(tag), "start": .int(Int64(start)), "end": .int(Int64(end)),
         "score": .double(score)]
    }
}

public enum Entities {
    /// Entities from one sentence's tokens and predicted tags (any scheme `Tags.spans` reads) with
    /// per-token confidences. `start`/`end` are Unicode-scalar offsets into `text`, `text` is the exact
    /// substring there (inner whitespace included), and `score` is the mean confidence of the entity's
    /// tokens, rounded to 4 decimals.
    public static func extract(tokens: [TextToken], tags: [String], scores: [Float], in text: String) -> [Entity] {
        var walker = ScalarWalker(text)
        return extract(tokens: tokens, tags: tags, scores: scores, walker: &walker)
    }

    static func extract(tokens: [TextToken], tags: [String], scores: [Float], walker: inout ScalarWalker) -> [Entity] {
        precondition(tokens.count == tags.count, "one tag per token")
        let spans = Tags.spans(tags)
        guard !spans.isEmpty else { return [] }
        return spans.map { span in
            let start = tokens[span.start].start, end = tokens[span.end - 1].end
            var sum = 0.0
            for i in span.start..<span.end { sum += i < scores.count ? Double(scores[i]) : 0 }
            let mean = sum / Double(span.end - span.start)
            return Entity(text: walker.substring(start, end), tag: span.type, start: start, end: end,
                          score: (mean * 10_000).rounded() / 10_000)
        }
    }
}

/// Turns increasing scalar offsets into substrings with one forward walk over the text, so a sentence's
/// entities cost one pass rather than one pass each.
struct ScalarWalker {
    let scalars: String.UnicodeScalarView
    var index: String.Index
    var offset = 0

    init(_ text: String) {
        scalars = text.unicodeScalars
        index = scalars.startIndex
    }

    mutating func seek(_ target: Int) -> String.Index {
        if target < offset {
            index = scalars.startIndex
            offset = 0
        }
        index = scalars.index(index, offsetBy: target - offset)
        offset = target
        return index
    }

    mutating func substring(_ start: Int, _ end: Int) -> String {
        let a = seek(start)
        let b = seek(end)
        return String(scalars[a..<b])
    }
}

extension Entities {
    /// Entities of each text: tokenizes every text into sentences, asks `predict` once for the tags and
    /// per-token confidences of all of them, and maps the results back to offsets into each text. This
    /// is the whole text-in, entities-out path of `ner-infer`; `ner-serve` runs the same two halves,
    /// `tokenize` and `locate`, on either side of its batcher.
    public static func find(in texts: [String], predict: ([[String]]) -> [(tags: [String], scores: [Float])]) -> [[Entity]] {
        let (sentences, words) = tokenize(texts)
        return locate(in: texts, sentences: sentences, predictions: words.isEmpty ? [] : predict(words))
    }

    /// Each text's sentences, and every sentence's words in one list for the model.
    public static func tokenize(_ texts: [String]) -> (sentences: [[[TextToken]]], words: [[String]]) {
        let sentences = texts.map { Tokenizer.sentences($0) }
        return (sentences, sentences.flatMap { $0.map { $0.map(\.text) } })
    }

    /// Maps predictions (one `(tags, scores)` per sentence, in the order `tokenize` listed them) back to
    /// entities with Unicode-scalar offsets into each whole text, however many sentences it holds.
    public static func locate(in texts: [String], sentences: [[[TextToken]]],
                              predictions: [(tags: [String], scores: [Float])]) -> [[Entity]] {
        precondition(predictions.count == sentences.reduce(0) { $0 + $1.count }, "one prediction per sentence")
        var next = 0
        return zip(texts, sentences).map { text, sentences in
            let own = predictions[next..<(next + sentences.count)]
            next += sentences.count
            var found: [Entity] = []
            var walker = ScalarWalker(text)
            // Each text is one document: a name it repeats gets one type (DocumentConsistency).
            // A one-sentence text has nothing to harmonize, and most texts are one sentence.
            var harmonized: [[String]]? = nil
            if sentences.count > 1 {
                var tags = own.map(\.tags)
                DocumentConsistency.harmonize(tokens: sentences.map { $0.map(\.text) }, tags: &tags, scores: own.map(\.scores))
                harmonized = tags
            }
            for (i, tokens) in sentences.enumerated() {
                let p = own[own.startIndex + i]
                found += extract(tokens: tokens, tags: harmonized?[i] ?? p.tags, scores: p.scores, walker: &walker)
            }
            return found
        }
    }
}

extension Entity {
    /// Appends `[{"text":…,"tag":…,"start":…,"end":…,"score":…},…]`, the keys in the order
    /// docs/records.md shows them (not sorted, unlike other records). Written straight into bytes: on the hot path of `ner-infer` and `ner-serve`
    /// a dictionary per entity cost more than tagging.
    public static func appendJSON(_ list: [Entity], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (i, e) in list.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"text":"#.utf8)
            JSON.appendString(e.text, to: &out)
            out.append(contentsOf: #","tag":"#.utf8)
            JSON.appendString(e.tag, to: &out)
            out.append(contentsOf: #","start":"#.utf8)
            out.append(contentsOf: String(e.start).utf8)
            out.append(contentsOf: #","end":"#.utf8)
            out.append(contentsOf: String(e.end).utf8)
            out.append(contentsOf: #","score":"#.utf8)
            JSON.appendNumber(e.score, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
    }
}
