import Foundation

/// How a text becomes one vector for similarity (docs/engine.md, "Sentence vectors"): the BiLSTM's
/// output states averaged over the text's tokens, beside its word vectors averaged with SIF weights
/// a / (a + p(w)) that favour rare words. Each half is scaled to unit length, so neither outweighs
/// the other, and the whole by 1/√2, so the vector has unit length and a cosine is a dot product.
struct SentencePooling {
    /// SIF's a: a word as frequent as 1 in 1,000 tokens gets weight 1/2.
    static let sifA = 1e-3

    let stateWidth: Int
    let wordDim: Int
    /// a · H, where p(w) = 1 / (rank · H) is Zipf's law over the vocabulary (H its harmonic number).
    private let rankScale: Float

    init(config: ModelConfig) {
        stateWidth = 2 * config.hidden
        wordDim = config.wordDim
        // A model's words are stored in the order of its vectors file (GloVe's: most frequent first),
        // so a word's row is its frequency rank; the model keeps no counts.
        let harmonic = log(Double(max(config.wordVocab, 2))) + 0.5772
        rankScale = Float(SentencePooling.sifA * harmonic)
    }

    var size: Int { stateWidth + wordDim }

    /// The SIF weight of word row `id`; 0 for row 0, the unknown word.
    @inline(__always)
    func weight(_ id: Int32) -> Float {
        let x = rankScale * Float(id)
        return x / (x + 1)
    }
}

extension Tagger {
    /// One vector per text, each given as its encoded sentences (see `SentencePooling`). The states
    /// come from the CPU path whatever the device: each sentence is run on its own rows, so a text's
    /// vector does not depend on the other texts of the call.
    func sentenceVectors(_ texts: [[EncodedSentence]], threads: Int) -> [[Float]] {
        let pooling = SentencePooling(config: params.config)
        let width = pooling.stateWidth, dw = pooling.wordDim
        let sentences = texts.flatMap { $0 }
        var stateSums = [Float](repeating: 0, count: sentences.count * width)
        let batches = inBatches(sentences, threads: threads) { ws -> [Float] in
            let states = ws.hiddenStates(params, cache: projectionCache)
            var sums = [Float](repeating: 0, count: ws.n * width)
            let ids = ws.ids
            sums.withUnsafeMutableBufferPointer { out in
                for i in 0..<ws.n {
                    let sum = out.baseAddress! + i * width
                    for t in 0..<ids.lengths[i] {
                        let row = states + (ids.stepStart[t] + i) * width
                        for j in 0..<width { sum[j] += row[j] }
                    }
                }
            }
            return sums
        }
        for (ids, sums) in batches {
            for (j, i) in ids.enumerated() {
                stateSums.replaceSubrange(i * width..<(i + 1) * width, with: sums[j * width..<(j + 1) * width])
            }
        }
        let words = UnsafePointer(params.words)
        var next = 0
        return texts.map { text in
            var v = [Float](repeating: 0, count: pooling.size)
            v.withUnsafeMutableBufferPointer { out in
                let states = out.baseAddress!, average = states + width
                for s in text {
                    stateSums.withUnsafeBufferPointer { all in
                        let sum = all.baseAddress! + next * width
                        for j in 0..<width { states[j] += sum[j] }
                    }
                    next += 1
                    for id in s.words {
                        let a = pooling.weight(id)
                        if a == 0 { continue }
                        let row = words + Int(id) * dw
                        for j in 0..<dw { average[j] += a * row[j] }
                    }
                }
                SentencePooling.normalize(states, count: width)
                SentencePooling.normalize(average, count: dw)
            }
            return v
        }
    }
}

extension SentencePooling {
    /// Scales `count` floats to length 1/√2; leaves all zeros as they are.
    static func normalize(_ v: UnsafeMutablePointer<Float>, count: Int) {
        var squares: Double = 0
        for j in 0..<count { squares += Double(v[j]) * Double(v[j]) }
        guard squares > 0 else { return }
        let scale = Float(1 / (squares * 2).squareRoot())
        for j in 0..<count { v[j] *= scale }
    }
}
