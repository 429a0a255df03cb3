import Foundation
import NERCore

/// The network's shape; stored in model.json.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var wordDim: Int
    /// Character embedding size; 0 turns the character encoder off.
    public var charDim: Int
    public var charFilters: Int
    public var charWindow: Int
    public var maxWordChars: Int
    /// LSTM state size per direction.
    public var hidden: Int
    public var charVocab: Int
    public var wordVocab: Int
    public var tagCount: Int

    enum CodingKeys: String, CodingKey {
        case wordDim = "word_dim", charDim = "char_dim", charFilters = "char_filters", charWindow = "char_window"
        case maxWordChars = "max_word_chars", hidden, charVocab = "char_vocab", wordVocab = "word_vocab"
        case tagCount = "tag_count"
    }

    public init(wordDim: Int, charDim: Int, charFilters: Int, charWindow: Int = 3, maxWordChars: Int = 25, hidden: Int,
                charVocab: Int, wordVocab: Int, tagCount: Int) {
        self.wordDim = wordDim
        self.charDim = charDim
        self.charFilters = charFilters
        self.charWindow = charWindow
        self.maxWordChars = maxWordChars
        self.hidden = hidden
        self.charVocab = charVocab
        self.wordVocab = wordVocab
        self.tagCount = tagCount
    }

    var charFeatures: Int { charDim > 0 ? charFilters : 0 }
    /// Columns of the LSTM input: word vector, character features, casing one-hot.
    var inputDim: Int { wordDim + charFeatures + Casing.count }
}

/// One named block of the dense parameters.
public struct TensorSpec: Sendable, Equatable {
    public let name: String
    public let offset: Int
    public let rows: Int
    public let cols: Int
    public var count: Int { rows * cols }
}

/// Where each dense tensor lives in the one contiguous parameter block. Offsets are multiples of 16
/// floats (64 bytes), so the block is written to disk and mapped back as is.
struct Layout {
    let tensors: [TensorSpec]
    let total: Int
    let charEmb, convW, convB, outW, outB, trans, start, end: TensorSpec
    let wx: [TensorSpec], wh: [TensorSpec], b: [TensorSpec]

    init(_ c: ModelConfig) {
        var list: [TensorSpec] = []
        var off = 0
        func add(_ name: String, _ r: Int, _ cols: Int) -> TensorSpec {
            let t = TensorSpec(name: name, offset: off, rows: r, cols: cols)
            off += (r * cols + 15) / 16 * 16
            list.append(t)
            return t
        }
        let h = c.hidden, d = c.inputDim, k = c.tagCount
        charEmb = add("char_embeddings", c.charDim > 0 ? c.charVocab : 0, c.charDim)
        convW = add("char_conv.weight", c.charFeatures, c.charWindow * c.charDim)
        convB = add("char_conv.bias", 1, c.charFeatures)
        var wx: [TensorSpec] = [], wh: [TensorSpec] = [], b: [TensorSpec] = []
        for dir in ["forward", "backward"] {
            wx.append(add("lstm.\(dir).input_weight", 4 * h, d))
            wh.append(add("lstm.\(dir).hidden_weight", 4 * h, h))
            b.append(add("lstm.\(dir).bias", 1, 4 * h))
        }
        self.wx = wx
        self.wh = wh
        self.b = b
        outW = add("output.weight", k, 2 * h)
        outB = add("output.bias", 1, k)
        trans = add("crf.transitions", k, k)
        start = add("crf.start", 1, k)
        end = add("crf.end", 1, k)
        tensors = list
        total = off
    }
}

/// The weights: a dense block (everything but the word vectors) and the word-embedding matrix,
/// either owned (training) or pointing into a mapped file (inference).
final class Parameters: @unchecked Sendable {
    let config: ModelConfig
    let layout: Layout
    let dense: UnsafeMutablePointer<Float>
    let words: UnsafeMutablePointer<Float>
    private let owner: AnyObject?
    private let owned: Bool
    /// For weights mapped from a model file, which never change: their transposes, made once.
    let frozenTransposes: ForwardWeights?

    init(config: ModelConfig) {
        self.config = config
        layout = Layout(config)
        dense = .allocate(capacity: max(layout.total, 1))
        dense.initialize(repeating: 0, count: max(layout.total, 1))
        words = .allocate(capacity: max(config.wordVocab * config.wordDim, 1))
        words.initialize(repeating: 0, count: max(config.wordVocab * config.wordDim, 1))
        owner = nil
        owned = true
        frozenTransposes = nil
    }

    init(config: ModelConfig, dense: UnsafeRawPointer, words: UnsafeRawPointer, owner: AnyObject) {
        self.config = config
        layout = Layout(config)
        self.dense = UnsafeMutablePointer(mutating: dense.assumingMemoryBound(to: Float.self))
        self.words = UnsafeMutablePointer(mutating: words.assumingMemoryBound(to: Float.self))
        self.owner = owner
        owned = false
        let t = ForwardWeights()
        frozenTransposes = t
        t.fill(from: self)
    }

    deinit {
        if owned {
            dense.deallocate()
            words.deallocate()
        }
    }

    func pointer(_ t: TensorSpec) -> UnsafeMutablePointer<Float> { dense + t.offset }

    /// Glorot-style uniform initialisation; LSTM forget-gate biases start at 1 so early gradients
    /// flow through time.
    func initialise(seed: Int) {
        var rng = SeededRandom(seed: seed, stream: 0x1A17)
        for t in layout.tensors {
            let p = pointer(t)
            if t.name.hasSuffix("bias") || t.name == "crf.start" || t.name == "crf.end" || t.name == "crf.transitions" {
                p.update(repeating: 0, count: t.count)
                continue
            }
            let a = t.name == "char_embeddings" ? sqrtf(3 / Float(max(t.cols, 1))) : sqrtf(6 / Float(max(t.rows + t.cols, 1)))
            for i in 0..<t.count { p[i] = rng.uniform(a) }
        }
        let h = config.hidden
        for b in layout.b { pointer(b).advanced(by: h).update(repeating: 1, count: h) }
        let a = sqrtf(3 / Float(config.wordDim))
        for i in 0..<(config.wordVocab * config.wordDim) { words[i] = rng.uniform(a) }
    }

    /// self = keeping * self + (1 - keeping) * other, over every weight (a moving average).
    func blend(_ other: Parameters, keeping: Float) {
        let fresh = 1 - keeping
        for (mine, theirs, n) in [(dense, other.dense, layout.total), (words, other.words, config.wordVocab * config.wordDim)] {
            for i in 0..<n { mine[i] = keeping * mine[i] + fresh * theirs[i] }
        }
    }

    /// Every dense tensor and the word vectors by name, as Float arrays (for tests and tools).
    func values() -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for t in layout.tensors { out[t.name] = Array(UnsafeBufferPointer(start: pointer(t), count: t.count)) }
        out["word_embeddings"] = Array(UnsafeBufferPointer(start: words, count: config.wordVocab * config.wordDim))
        return out
    }
}
