import NEREngine
import NERText

/// Text in, entities out, split around the batcher: `tokenize` before the forward pass, `entities`
/// after it, with offsets into each whole text however many sentences it holds.
enum Tagging {
    /// Each text's sentences, and all sentences' words in one list for the model.
    static func tokenize(_ texts: [String]) -> (sentences: [[[TextToken]]], words: [[String]]) {
        let sentences = texts.map { Tokenizer.sentences($0) }
        return (sentences, sentences.flatMap { $0.map { $0.map(\.text) } })
    }

    /// Maps predictions (one per sentence, in the order `tokenize` listed them) back to entities with
    /// Unicode-scalar offsets into each text.
    static func entities(_ texts: [String], _ sentences: [[[TextToken]]], _ predictions: [Prediction]) -> [[Entity]] {
        var next = 0
        return zip(texts, sentences).map { text, sentences in
            var found: [Entity] = []
            var cursor = ScalarCursor(text)
            for tokens in sentences {
                let p = predictions[next]
                next += 1
                guard p.tags.contains(where: { $0 != "O" }) else { continue }
                // Entities.extract walks its text from the start; handing it just this sentence keeps a
                // long body with many sentences linear instead of quadratic.
                let base = tokens[0].start
                let slice = cursor.slice(base, tokens[tokens.count - 1].end)
                let local = tokens.map { TextToken(text: $0.text, start: $0.start - base, end: $0.end - base) }
                for var e in Entities.extract(tokens: local, tags: p.tags, scores: p.scores, in: slice) {
                    e.start += base
                    e.end += base
                    found.append(e)
                }
            }
            return found
        }
    }
}

/// Substrings at increasing Unicode-scalar offsets, found with one forward walk over the text.
struct ScalarCursor {
    private let scalars: String.UnicodeScalarView
    private var index: String.Index
    private var offset = 0

    init(_ text: String) {
        scalars = text.unicodeScalars
        index = scalars.startIndex
    }

    /// The scalars `start..<end`; `start` must not be before the previous call's `start`.
    mutating func slice(_ start: Int, _ end: Int) -> String {
        index = scalars.index(index, offsetBy: start - offset)
        offset = start
        let last = scalars.index(index, offsetBy: end - start)
        return String(scalars[index..<last])
    }
}
