import NERText

/// Raw text as `ner-infer` and `POST /ner` tokenize it, and entities mapped back onto it. Invariants:
/// tokens are in order, do not overlap and are exactly the text at their offsets; no sentence is
/// longer than the limit; entity texts are exactly the text at their offsets.
enum TokenizerTarget {
    static func run(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        let scalars = Array(text.unicodeScalars)
        func substring(_ start: Int, _ end: Int) -> String {
            var s = ""
            s.unicodeScalars.append(contentsOf: scalars[start..<end])
            return s
        }
        let maxTokens = 7
        var last = 0
        for sentence in Tokenizer.sentences(text, maxTokens: maxTokens) {
            guard !sentence.isEmpty, sentence.count <= maxTokens else { fatalError("a sentence of \(sentence.count) tokens") }
            for t in sentence {
                guard last <= t.start, t.start < t.end, t.end <= scalars.count else {
                    fatalError("token \(t.start)..<\(t.end) after \(last) in \(scalars.count) scalars")
                }
                guard t.text == substring(t.start, t.end) else { fatalError("token text '\(t.text)' is not the text at \(t.start)..<\(t.end)") }
                last = t.end
            }
        }
        guard Tokenizer.tokens(text).count == Tokenizer.sentences(text).reduce(0, { $0 + $1.count }) else {
            fatalError("sentence splitting lost or added tokens")
        }

        // Tags from the tokens' shapes, so spans of every kind occur.
        let found = Entities.find(in: [text]) { sentences in
            sentences.map { words in
                let tags = words.enumerated().map { i, w -> String in
                    switch (w.utf8.first ?? 0) % 4 {
                    case 0: return "O"
                    case 1: return "B-PER"
                    case 2: return "I-PER"
                    default: return i % 2 == 0 ? "I-ORG" : "B-LOC"
                    }
                }
                return (tags, [Float](repeating: 0.5, count: words.count))
            }
        }
        for e in found[0] {
            guard 0 <= e.start, e.start < e.end, e.end <= scalars.count, e.text == substring(e.start, e.end) else {
                fatalError("entity '\(e.text)' at \(e.start)..<\(e.end) is not the text there")
            }
        }
        var out: [UInt8] = []
        Entity.appendJSON(found[0], to: &out)
    }
}
