/// One name, one type within a document (docs/engine.md, "One name, one type per document").
///
/// The tagger reads one sentence at a time, so a name repeated through a document can get different
/// types in different sentences ("Caloi" as an organisation in one, a person in the next). Within one
/// document, when the same words are tagged as entities of different types and one type holds a
/// strict majority of at least two of those mentions, every mention the tagger was unsure of (mean
/// token confidence under 0.95) takes that type. Spans are never moved, added or removed, and a tie
/// changes nothing. The confidence gate keeps metonymy: in a sports page "New York" is rightly a
/// team (ORG) in the standings and a place (LOC) in the dateline, both tagged with confidence.
public enum DocumentConsistency {
    /// Mentions at least this confident keep their own type.
    public static let confident: Float = 0.95

    /// Retypes, in place, the entities of one document: `tokens[i]`, `tags[i]` and `scores[i]` (the
    /// per-token confidences) are its sentence `i`. Tags may be in any scheme `Tags.spans` reads; a
    /// retyped span is written in BIO.
    public static func harmonize(tokens: [[String]], tags: inout [[String]], scores: [[Float]]) {
        precondition(tokens.count == tags.count && scores.count == tags.count, "one tag list per sentence")
        // A name is its tokens: a slice of the sentence, compared and hashed without copying.
        var mentions: [(sentence: Int, span: EntitySpan, key: ArraySlice<String>)] = []
        for (i, sentenceTags) in tags.enumerated() {
            for span in Tags.spans(sentenceTags) { mentions.append((i, span, tokens[i][span.start..<span.end])) }
        }
        guard mentions.count > 2 else { return }
        var votes: [ArraySlice<String>: [String: Int]] = [:]
        for m in mentions { votes[m.key, default: [:]][m.span.type, default: 0] += 1 }
        var winner: [ArraySlice<String>: String] = [:]
        for (key, byType) in votes where byType.count > 1 {
            let total = byType.values.reduce(0, +)
            if let (type, n) = byType.max(by: { $0.value < $1.value }), n >= 2, 2 * n > total { winner[key] = type }
        }
        guard !winner.isEmpty else { return }
        for m in mentions {
            guard let type = winner[m.key], type != m.span.type else { continue }
            let confidence = scores[m.sentence][m.span.start..<m.span.end].reduce(0, +) / Float(m.span.end - m.span.start)
            if confidence >= confident { continue }
            tags[m.sentence][m.span.start] = "B-" + type
            for t in (m.span.start + 1)..<m.span.end { tags[m.sentence][t] = "I-" + type }
            // An `I-` tag right after the span would now read as its continuation.
            if m.span.end < tags[m.sentence].count {
                let next = ParsedTag(tags[m.sentence][m.span.end])
                if next.prefix == UInt8(ascii: "I") && next.type == type { tags[m.sentence][m.span.end] = "B-" + type }
            }
        }
    }

    /// Harmonizes `predicted` (one tag list per sentence of `sentences`, its confidences in `scores`)
    /// document by document: a run of sentences with the same `document` number is one document; a
    /// sentence without one is a document alone.
    public static func harmonize(_ sentences: [Sentence], predicted: inout [[String]], scores: [[Float]]) {
        precondition(sentences.count == predicted.count, "one prediction per sentence")
        var start = 0
        while start < sentences.count {
            var end = start + 1
            if let doc = sentences[start].document {
                while end < sentences.count && sentences[end].document == doc { end += 1 }
            }
            if end - start > 1 {
                var part = Array(predicted[start..<end])
                harmonize(tokens: sentences[start..<end].map(\.tokens), tags: &part, scores: Array(scores[start..<end]))
                predicted.replaceSubrange(start..<end, with: part)
            }
            start = end
        }
    }
}
