import NERText

/// A CoNLL file as `ner-train` and `ner-infer --conll` read it, in each tag scheme.
enum CoNLLTarget {
    static func run(_ data: [UInt8]) {
        let path = Scratch.write(data, to: "input.conll")
        for scheme in [TagScheme.auto, .iob1] {
            guard let sentences = try? CoNLL.read(path: path, scheme: scheme) else { continue }
            for s in sentences {
                guard s.tokens.count == s.tags.count, !s.tokens.isEmpty else {
                    fatalError("a sentence with \(s.tokens.count) tokens and \(s.tags.count) tags")
                }
                _ = Tags.spans(s.tags)
            }
        }
    }
}
