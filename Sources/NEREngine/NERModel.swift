import Foundation
import NERCore
import NERText

/// One sentence's tags (BIO) and, per token, the model's confidence in its tag: the CRF marginal
/// probability of that tag at that position.
public struct Prediction: Sendable, Equatable {
    public var tags: [String]
    public var scores: [Float]

    public init(tags: [String], scores: [Float]) {
        self.tags = tags
        self.scores = scores
    }
}

/// A trained model loaded from its folder for inference. Weights and vocabulary are memory-mapped
/// read-only and shared, so loading is near-instant and several processes share one copy.
public final class NERModel: @unchecked Sendable {
    let tagger: Tagger
    private let manifest: ModelFile.Manifest
    /// How many threads one `predict` call may use; several concurrent callers each get their own.
    public var threads: Int

    init(tagger: Tagger, manifest: ModelFile.Manifest) {
        self.tagger = tagger
        self.manifest = manifest
        threads = ProcessInfo.processInfo.activeProcessorCount
        useSingleThreadedBLAS()
    }

    /// Loads a model folder. A missing folder or file is exit 66; a corrupt, foreign or newer-format
    /// model is exit 65 with a one-line reason.
    /// On `.cuda` the weights are also copied to the GPU, where every `predict` then runs (the
    /// device must have been checked with `ComputeDevice.select`).
    /// On the CPU, the input projections of the last `tokenCache` distinct tokens are kept (32 bytes
    /// × hidden size each: 26 MB for 8,192 tokens at hidden 100) so repeated tokens skip most of the
    /// input layer; 0 turns the cache off. Tags are the same either way, scores agree to 1e-5.
    public static func load(_ dir: String, device: ComputeDevice = .cpu,
                            tokenCache: Int = ProjectionCache.defaultCapacity) throws -> NERModel {
        let (m, t) = try ModelFile.read(dir)
        if device == .cuda {
            t.gpu = try CUDANetwork(runtime: try CUDARuntime.shared(), params: t.params, tagSet: t.tagSet)
        } else if tokenCache > 0 {
            t.projectionCache = ProjectionCache(capacity: tokenCache, hidden: t.params.config.hidden, maxChars: t.params.config.maxWordChars)
        }
        t.fixedTables = t.tables
        return NERModel(tagger: t, manifest: m)
    }

    /// Checks a model folder as `load` does, and also every word vector for NaN and infinity (a read
    /// of the whole weights file, which loading skips): what ner-pack runs before a model enters the
    /// artifact store. Throws like `load`.
    public static func check(_ dir: String) throws {
        _ = try ModelFile.read(dir, allWeights: true)
    }

    /// Where `predict` runs. On a GPU, one call should carry many sentences: each group of equal
    /// length is one GPU batch (up to 2,048 sentences).
    public var device: ComputeDevice { tagger.gpu == nil ? .cpu : .cuda }

    public var id: String { manifest.id }
    public var name: String { manifest.name }
    /// The entity types the model tags, sorted (e.g. LOC, MISC, ORG, PER).
    public var labels: [String] { manifest.tagSet.types }

    /// Tags tokenised sentences. Thread-safe.
    public func predict(_ sentences: [[String]]) -> [Prediction] {
        // Encoding (vocabulary lookups) is spread over the threads too; on a GPU it is most of the host's work.
        let encoder = tagger.encoder
        let encoded = threads > 1 && sentences.count >= 256
            ? parallelMap(sentences, workers: threads) { encoder.encode($0) }
            : sentences.map { encoder.encode($0) }
        let (ids, scores) = tagger.decode(encoded, threads: threads)
        let names = manifest.tagSet.tags
        return zip(ids, scores).map { path, s in
            Prediction(tags: Tags.fromBIOES(path.map { names[Int($0)] }), scores: s)
        }
    }

    /// One vector per text for similarity, the text split into sentences and tokens as for tagging
    /// (docs/engine.md, "Sentence vectors"). Unit length, so the cosine of two texts is the dot
    /// product of their vectors; a text without tokens gets zeros. A text's vector is the same
    /// whatever else the call holds (to 1e-5). Runs on the CPU on any device. Thread-safe.
    public func sentenceVectors(_ texts: [String]) -> [[Float]] {
        let encoder = tagger.encoder
        let encode = { (text: String) in Tokenizer.sentences(text).map { encoder.encode($0.map(\.text)) } }
        let encoded = threads > 1 && texts.count >= 256 ? parallelMap(texts, workers: threads, encode) : texts.map(encode)
        return tagger.sentenceVectors(encoded, threads: threads)
    }

    /// The length of `sentenceVectors`' vectors: the BiLSTM's two directions, then the word vector.
    public var sentenceVectorSize: Int { SentencePooling(config: tagger.params.config).size }

    /// The cosine of two vectors of one length; 0 when either is all zeros.
    public static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "vectors of different lengths")
        var dot = 0.0, aa = 0.0, bb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            aa += Double(x) * Double(x)
            bb += Double(y) * Double(y)
        }
        return aa > 0 && bb > 0 ? Float(dot / (aa * bb).squareRoot()) : 0
    }
}
