import Foundation
import NEREngine
import Testing

/// The math, layer by layer: the reference path against finite differences, and the batched BLAS
/// path against the reference.
@Suite struct GradientTests {
    /// Central differences in Double on the reference loss, for a sample of entries of every tensor
    /// (character embeddings and convolution, word embeddings, both LSTM directions, the output
    /// layer and the CRF).
    @Test(arguments: [true, false])
    func referenceGradientsMatchFiniteDifferences(withCharacters: Bool) {
        let net = NetworkCheck(seed: 3, charDim: withCharacters ? 3 : 0)
        let sentences = net.randomSentences(count: 3, maxLength: 5, seed: 11)
        let (_, analytic) = net.referenceGradients(sentences)
        var rng = SystemRandomNumberGenerator()
        let eps = 1e-6
        for name in net.tensorNames {
            let values = net.values[name]!
            if values.isEmpty { continue }
            let picks = values.count <= 12 ? Array(values.indices) : (0..<12).map { _ in Int.random(in: values.indices, using: &rng) }
            for i in picks {
                var plus = net.values, minus = net.values
                plus[name]![i] += eps
                minus[name]![i] -= eps
                let numeric = (net.referenceLoss(plus, sentences) - net.referenceLoss(minus, sentences)) / (2 * eps)
                let a = analytic[name]![i]
                #expect(abs(numeric - a) <= 1e-6 + 1e-4 * max(abs(numeric), abs(a)), "\(name)[\(i)]: numeric \(numeric), analytic \(a)")
            }
        }
    }

    @Test(arguments: [true, false])
    func fastPathMatchesReference(withCharacters: Bool) {
        let net = NetworkCheck(seed: 5, charDim: withCharacters ? 3 : 0)
        let sentences = net.randomSentences(count: 9, maxLength: 6, seed: 2)
        let ref = net.referenceGradients(sentences)
        let fast = net.fastGradients(sentences, batchSize: 3)
        #expect(abs(ref.loss - fast.loss) <= 1e-4 * abs(ref.loss), "loss: reference \(ref.loss), fast \(fast.loss)")
        for name in net.tensorNames {
            let r = ref.gradients[name]!, f = fast.gradients[name]!
            #expect(r.count == f.count)
            let scale = max(1, r.map(abs).max() ?? 0)
            let worst = zip(r, f).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-4 * scale, "\(name): largest difference \(worst)")
        }
        // A gradient of all zeros would pass the comparison vacuously.
        #expect(ref.gradients["lstm.backward.hidden_weight"]!.contains { abs($0) > 1e-3 })
    }

    @Test func viterbiAndMarginalsMatchBruteForce() {
        let net = NetworkCheck(seed: 8)
        let sentences = net.randomSentences(count: 12, maxLength: 3, seed: 4)
        let (tags, scores) = net.fastDecode(sentences)
        for (i, s) in sentences.enumerated() {
            let best = net.referenceBestPath(s)
            #expect(tags[i].map(Int.init) == best)
            let marginals = net.referenceMarginals(s)
            for t in 0..<s.count {
                #expect(abs(Double(scores[i][t]) - marginals[t][best[t]]) < 1e-4)
                #expect(abs(marginals[t].reduce(0, +) - 1) < 1e-9)
            }
        }
    }
}
