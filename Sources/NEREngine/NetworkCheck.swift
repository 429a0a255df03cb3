import Foundation
import NERCore

/// A small network with random weights and both implementations of its math side by side, for
/// gradient checks and for checking the batched BLAS path against the reference.
public struct NetworkCheck {
    public let config: ModelConfig
    public let tagSet: TagSet
    /// Every parameter tensor by name (`word_embeddings`, `lstm.forward.input_weight`, ...).
    public var values: [String: [Double]]

    public init(seed: Int, types: [String] = ["A", "B"], wordVocab: Int = 12, wordDim: Int = 4, charVocab: Int = 9,
                charDim: Int = 3, charFilters: Int = 4, hidden: Int = 3) {
        tagSet = TagSet(types: types)
        config = ModelConfig(wordDim: wordDim, charDim: charDim, charFilters: charFilters, hidden: hidden,
                             charVocab: charVocab, wordVocab: wordVocab, tagCount: tagSet.count)
        let p = Parameters(config: config)
        var rng = SeededRandom(seed: seed, stream: 7)
        values = p.values().mapValues { $0.map { _ in Double(rng.uniform(0.5)) } }
    }

    public var tensorNames: [String] { values.keys.sorted() }

    /// Random sentences with well-formed BIOES gold tags.
    public func randomSentences(count: Int, maxLength: Int, seed: Int) -> [EncodedSentence] {
        var rng = SeededRandom(seed: seed, stream: 9)
        func int(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        return (0..<count).map { _ in
            let t = 1 + int(maxLength)
            var s = EncodedSentence(words: [], chars: [], charStarts: [0], casing: [], tags: [])
            while s.tags.count < t {
                let left = t - s.tags.count
                if int(3) == 0 {
                    let type = int(tagSet.types.count), len = 1 + int(min(left, 3))
                    let base = 1 + 4 * type
                    if len == 1 { s.tags.append(Int32(base + 3)) } else {
                        s.tags.append(Int32(base))
                        for _ in 0..<(len - 2) { s.tags.append(Int32(base + 1)) }
                        s.tags.append(Int32(base + 2))
                    }
                } else {
                    s.tags.append(0)
                }
            }
            for _ in 0..<t {
                s.words.append(Int32(int(config.wordVocab)))
                s.casing.append(UInt8(int(Casing.count)))
                for _ in 0..<(1 + int(4)) { s.chars.append(Int32(int(config.charVocab))) }
                s.charStarts.append(Int32(s.chars.count))
            }
            return s
        }
    }

    /// Summed loss over `sentences`, by the reference path, for parameters `values`.
    public func referenceLoss(_ values: [String: [Double]], _ sentences: [EncodedSentence]) -> Double {
        sentences.reduce(0) { $0 + Reference.loss(values, config, tagSet, $1) }
    }

    /// Summed loss and gradients, by the reference path.
    public func referenceGradients(_ sentences: [EncodedSentence]) -> (loss: Double, gradients: [String: [Double]]) {
        var total = 0.0
        var sum = values.mapValues { [Double](repeating: 0, count: $0.count) }
        for s in sentences {
            let (l, g) = Reference.gradients(values, config, tagSet, s)
            total += l
            for (k, v) in g { for i in v.indices { sum[k]![i] += v[i] } }
        }
        return (total, sum)
    }

    private func parameters() -> Parameters {
        let p = Parameters(config: config)
        for t in p.layout.tensors { let v = values[t.name]!; for i in 0..<t.count { p.pointer(t)[i] = Float(v[i]) } }
        let w = values["word_embeddings"]!
        for i in w.indices { p.words[i] = Float(w[i]) }
        return p
    }

    /// Summed loss and gradients, by the batched Float32 path (length buckets, BLAS).
    public func fastGradients(_ sentences: [EncodedSentence], batchSize: Int = 4) -> (loss: Double, gradients: [String: [Double]]) {
        useSingleThreadedBLAS()
        let p = parameters()
        let gradBuffer = Scratch<Float>()
        let grads = gradBuffer.zeroed(p.layout.total)
        var words = [Double](repeating: 0, count: config.wordVocab * config.wordDim)
        let tables = CRFTables(p, tags: tagSet)
        let ws = Workspace()
        var rng = SeededRandom(seed: 0)
        var loss = 0.0
        for batch in Tagger.batches(lengths: sentences.map(\.count), size: batchSize) {
            ws.load(batch.map { sentences[$0] })
            ws.forward(p, dropout: 0, rng: &rng)
            loss += ws.backward(p, tagSet: tagSet, tables: tables, grads: grads, scale: 1)
            for row in 0..<ws.rows {
                let g = ws.wordGradient(row, config: config)
                for q in 0..<config.wordDim { words[Int(ws.ids.words[row]) * config.wordDim + q] += Double(g[q]) }
            }
        }
        var out: [String: [Double]] = ["word_embeddings": words]
        defer { withExtendedLifetime(gradBuffer) {} }
        for t in p.layout.tensors { out[t.name] = (0..<t.count).map { Double(grads[t.offset + $0]) } }
        return (loss, out)
    }

    /// Viterbi paths and per-token marginals by the batched path.
    public func fastDecode(_ sentences: [EncodedSentence], threads: Int = 2) -> (tags: [[Int32]], scores: [[Float]]) {
        tagger(parameters()).decode(sentences, threads: threads)
    }

    /// A tagger over `p` for encoded sentences (its vocabulary is never consulted).
    private func tagger(_ p: Parameters) -> Tagger {
        Tagger(params: p, tagSet: tagSet, encoder: Encoder(words: WordTable(bytes: WordTable.build(["<unk>"])), chars: [:], maxWordChars: 25))
    }

    /// Summed loss and gradients by the CUDA backend, on the GPU (or on whatever the `NER_CUDA_DRIVER`,
    /// `NER_CUBLAS` and `NER_NVRTC` libraries are), batched as `fastGradients`.
    public func cudaGradients(_ sentences: [EncodedSentence], batchSize: Int = 4) throws -> (loss: Double, gradients: [String: [Double]]) {
        let p = parameters()
        let net = try CUDANetwork(runtime: try CUDARuntime.shared(), params: p, tagSet: tagSet)
        var dense = [Double](repeating: 0, count: p.layout.total)
        var words = [Double](repeating: 0, count: config.wordVocab * config.wordDim)
        var loss = 0.0
        let d = config.inputDim, dw = config.wordDim
        for ids in Tagger.batches(lengths: sentences.map(\.count), size: batchSize) {
            let batch = ids.map { sentences[$0] }
            let (l, g, dx) = try net.gradients(batch)
            loss += l
            for i in g.indices { dense[i] += Double(g[i]) }
            for t in 0..<batch[0].count {
                for (i, s) in batch.enumerated() {
                    let row = t * batch.count + i
                    for q in 0..<dw { words[Int(s.words[t]) * dw + q] += Double(dx[row * d + q]) }
                }
            }
        }
        var out: [String: [Double]] = ["word_embeddings": words]
        for t in p.layout.tensors { out[t.name] = Array(dense[t.offset..<(t.offset + t.count)]) }
        return (loss, out)
    }

    /// Viterbi paths and marginals by the CUDA backend.
    public func cudaDecode(_ sentences: [EncodedSentence]) throws -> (tags: [[Int32]], scores: [[Float]]) {
        let p = parameters(), t = tagger(p)
        t.gpu = try CUDANetwork(runtime: try CUDARuntime.shared(), params: p, tagSet: tagSet)
        return t.decode(sentences, threads: 1)
    }

    /// Every parameter after `steps` training updates (no dropout, learning rate `lr`) on `device`,
    /// one batch of equal-length sentences per step, with gradient clipping as in training.
    public func trained(_ batches: [[EncodedSentence]], device: ComputeDevice, adam: Bool = true, lr: Float = 0.01) throws -> [String: [Double]] {
        let p = parameters()
        let opt = Optimizer(adam: adam, denseCount: p.layout.total, wordCount: config.wordVocab, wordDim: config.wordDim)
        let backend: TrainingBackend = device == .cuda
            ? try CUDATrainingBackend(params: p, optimizer: opt, tagSet: tagSet, dropout: 0, seed: 1)
            : CPUTrainingBackend(params: p, optimizer: opt, tagSet: tagSet, threads: 2, dropout: 0, seed: 1)
        for (i, batch) in batches.enumerated() {
            let (loss, norm) = try backend.step(batch, lr: lr, randomStream: [UInt64(i)])
            guard loss.isFinite && norm.isFinite else { throw ToolError.failure("step \(i) diverged") }
        }
        try backend.synchronize()
        return p.values().mapValues { $0.map(Double.init) }
    }

    /// The best path by brute-force enumeration (tiny sentences only).
    public func referenceBestPath(_ s: EncodedSentence) -> [Int] { Reference.bestPathByEnumeration(values, config, tagSet, s) }

    /// Node marginals by the log-space reference forward-backward.
    public func referenceMarginals(_ s: EncodedSentence) -> [[Double]] {
        Reference.crf(values, tagSet, Reference.forward(values, config, s).e).1
    }
}
