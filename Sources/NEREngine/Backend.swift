import Foundation
import NERCore

/// How the trainer runs a batch: forward, backward, gradient clipping and the optimizer update.
/// The CPU backend splits the batch across threads; the CUDA backend runs it on a GPU. Both keep
/// `Parameters` and `Optimizer` as the model's state on the host, so checkpoints, model files and
/// evaluation do not depend on where training ran.
protocol TrainingBackend: AnyObject {
    /// One update on `batch` (sentences of one length). Returns the summed loss and the gradient
    /// norm before clipping; when either is not finite the weights are left as they were.
    func step(_ batch: [EncodedSentence], lr: Float, randomStream: [UInt64]) throws -> (loss: Double, norm: Double)
    /// Brings `Parameters` and the optimizer's moments on the host up to date.
    func synchronize() throws
    /// What `Tagger.decode` uses for dev evaluation (nil: the CPU path on the host weights).
    var decoder: CUDANetwork? { get }
    /// Train only the output layer and the CRF (a warm start's `freeze_epochs`; CPU only).
    var outputLayerOnly: Bool { get set }
}

/// The batch split into one shard per thread, each with its own workspace and gradient block,
/// summed before the update; the word-vector gradients are gathered per distinct word.
final class CPUTrainingBackend: TrainingBackend {
    private let params: Parameters
    private let opt: Optimizer
    private let tagSet: TagSet
    private let threads: Int
    private let dropout: Float
    private let seed: Int
    private let workspaces: [Workspace]
    private let shardGrads: [Scratch<Float>]
    private let wordGrads = Scratch<Float>()
    private var rows: [Int32] = []
    private var slot: [Int32]
    var outputLayerOnly = false

    init(params: Parameters, optimizer: Optimizer, tagSet: TagSet, threads: Int, dropout: Float, seed: Int) {
        self.params = params
        opt = optimizer
        self.tagSet = tagSet
        self.threads = threads
        self.dropout = dropout
        self.seed = seed
        workspaces = (0..<threads).map { _ in Workspace() }
        shardGrads = (0..<threads).map { _ in Scratch<Float>(params.layout.total) }
        slot = [Int32](repeating: -1, count: params.config.wordVocab)
    }

    var decoder: CUDANetwork? { nil }

    func synchronize() throws {}

    func step(_ sentences: [EncodedSentence], lr: Float, randomStream: [UInt64]) throws -> (loss: Double, norm: Double) {
        let params = self.params, dense = params.layout.total, dw = params.config.wordDim
        let shards = min(threads, sentences.count)
        let per = (sentences.count + shards - 1) / shards
        let scale = 1 / Float(sentences.count)
        let losses = UnsafeMutableBufferPointer<Double>.allocate(capacity: shards)
        defer { losses.deallocate() }
        // The CRF's tables follow the transition weights, which every update moves.
        let tables = CRFTables(params, tags: tagSet)
        let (workspaces, shardGrads, tagSet, dropout, seed) = (self.workspaces, self.shardGrads, self.tagSet, self.dropout, self.seed)
        DispatchQueue.concurrentPerform(iterations: shards) { s in
            let lo = s * per, hi = min(lo + per, sentences.count)
            let ws = workspaces[s], g = shardGrads[s].zeroed(dense)
            guard lo < hi else { losses[s] = 0; ws.load(sentences[0..<0]); return }
            var rng = SeededRandom(seed: seed, stream: [3] + randomStream + [UInt64(s)])
            ws.load(sentences[lo..<hi])
            ws.forward(params, dropout: dropout, rng: &rng)
            losses[s] = ws.backward(params, tagSet: tagSet, tables: tables, grads: g, scale: scale)
        }
        let g = shardGrads[0].pointer
        for s in 1..<shards { let o = shardGrads[s].pointer; for i in 0..<dense { g[i] += o[i] } }
        rows.removeAll(keepingCapacity: true)
        wordGrads.reserve(sentences.count * sentences[0].count * dw)
        for s in 0..<shards {
            let ws = workspaces[s]
            for row in 0..<ws.rows {
                let w = ws.ids.words[row]
                var at = Int(slot[Int(w)])
                if at < 0 {
                    at = rows.count
                    slot[Int(w)] = Int32(at)
                    rows.append(w)
                    (wordGrads.pointer + at * dw).update(repeating: 0, count: dw)
                }
                let src = ws.wordGradient(row, config: params.config), dst = wordGrads.pointer + at * dw
                for j in 0..<dw { dst[j] += src[j] }
            }
        }
        for w in rows { slot[Int(w)] = -1 }
        if outputLayerOnly {
            // The output layer and the CRF are the last tensors of the block; nothing before them
            // moves, and Adam's moments for the rest stay zero.
            g.update(repeating: 0, count: params.layout.outW.offset)
            rows.removeAll(keepingCapacity: true)
        }
        var norm = 0.0
        for i in 0..<dense { norm += Double(g[i] * g[i]) }
        for i in 0..<(rows.count * dw) { norm += Double(wordGrads.pointer[i] * wordGrads.pointer[i]) }
        norm = norm.squareRoot()
        let loss = losses.reduce(0, +)
        guard loss.isFinite && norm.isFinite else { return (loss, norm) }
        if norm > Double(Trainer.clipNorm) {
            let f = Float(Double(Trainer.clipNorm) / norm)
            for i in 0..<dense { g[i] *= f }
            for i in 0..<(rows.count * dw) { wordGrads.pointer[i] *= f }
        }
        opt.update(params, grads: g, rows: rows[...], wordGrads: wordGrads.pointer, lr: lr)
        return (loss, norm)
    }
}

/// The whole batch on the GPU; the host copy of the weights is refreshed by `synchronize`.
final class CUDATrainingBackend: TrainingBackend {
    private let params: Parameters
    private let opt: Optimizer
    private let network: CUDANetwork
    private let dropout: Float
    private let seed: Int
    var outputLayerOnly = false

    init(params: Parameters, optimizer: Optimizer, tagSet: TagSet, dropout: Float, seed: Int) throws {
        self.params = params
        opt = optimizer
        self.dropout = dropout
        self.seed = seed
        network = try CUDANetwork(runtime: try CUDARuntime.shared(), params: params, tagSet: tagSet)
        try network.enableTraining(optimizer)
    }

    var decoder: CUDANetwork? { network }

    func synchronize() throws { try network.copyToHost(params, optimizer: opt) }

    func step(_ batch: [EncodedSentence], lr: Float, randomStream: [UInt64]) throws -> (loss: Double, norm: Double) {
        var rng = SeededRandom(seed: seed, stream: [3] + randomStream)
        let step = opt.step + 1
        let result = try network.trainStep(batch, dropout: dropout, seed: rng.next(), lr: lr, clip: Trainer.clipNorm,
                                           optimizer: opt, step: step)
        if result.loss.isFinite && result.norm.isFinite { opt.restore(step: step) }
        return result
    }
}
