import Foundation
import NERCore

/// Training that starts from another model's weights (`init_from`, docs/records.md "Warm start").
/// The character model and the BiLSTM carry over whole; characters and words the parent knows
/// keep their rows; tags both tag sets share keep their output rows and CRF transitions; the rest
/// start fresh.
public enum WarmStart {
    /// The model training starts from, as loaded from its folder.
    struct Parent {
        let manifest: ModelFile.Manifest
        let params: Parameters
        let words: WordTable

        init(directory: String) throws {
            let (manifest, tagger) = try ModelFile.read(directory, allWeights: true)
            self.manifest = manifest
            params = tagger.params
            words = tagger.encoder.words
        }
    }

    /// What carried over, for the record `ner-train` prints.
    public struct Summary: Sendable {
        public var parentId: String
        public var carriedTypes: [String]
        public var newTypes: [String]
        public var droppedTypes: [String]
        public var carriedWords: Int
        public var newWords: Int

        public var json: JSON {
            ["parent_id": .string(parentId), "carried_types": .array(carriedTypes.map { .string($0) }),
             "new_types": .array(newTypes.map { .string($0) }), "dropped_types": .array(droppedTypes.map { .string($0) }),
             "carried_words": .int(Int64(carriedWords)), "new_words": .int(Int64(newWords))]
        }
    }

    /// The network of a warm start: the parent's shape, with this data's vocabularies and tags.
    static func config(of parent: Parent, charVocab: Int, wordVocab: Int, tagCount: Int) -> ModelConfig {
        var c = parent.manifest.config
        c.charVocab = charVocab
        c.wordVocab = wordVocab
        c.tagCount = tagCount
        return c
    }

    /// Copies the parent's weights into `p` (already initialised) where they carry over.
    static func copy(from parent: Parent, into p: Parameters, tagSet: TagSet) -> Summary {
        let from = parent.params, old = from.layout, new = p.layout
        func copyAll(_ a: TensorSpec, _ b: TensorSpec) {
            p.pointer(b).update(from: from.pointer(a), count: min(a.count, b.count))
        }
        // Same shapes: the character convolution and both LSTMs. Character rows: the parent's
        // characters come first in this model's alphabet.
        copyAll(old.charEmb, new.charEmb)
        copyAll(old.convW, new.convW)
        copyAll(old.convB, new.convB)
        for (a, b) in zip(old.wx + old.wh + old.b, new.wx + new.wh + new.b) { copyAll(a, b) }
        p.words.update(from: from.words, count: min(from.config.wordVocab, p.config.wordVocab) * p.config.wordDim)

        // Tags by name: an output row, its bias, its start and end scores, and each transition
        // between two carried tags.
        let parentTags = parent.manifest.tagSet
        let mapped: [(new: Int, old: Int)] = tagSet.tags.enumerated().compactMap { j, tag in
            parentTags.index[tag].map { (j, $0) }
        }
        let cols = new.outW.cols
        for (j, i) in mapped {
            (p.pointer(new.outW) + j * cols).update(from: from.pointer(old.outW) + i * cols, count: cols)
            p.pointer(new.outB)[j] = from.pointer(old.outB)[i]
            p.pointer(new.start)[j] = from.pointer(old.start)[i]
            p.pointer(new.end)[j] = from.pointer(old.end)[i]
            for (k, l) in mapped {
                p.pointer(new.trans)[j * tagSet.count + k] = from.pointer(old.trans)[i * parentTags.count + l]
            }
        }
        let types = Set(tagSet.types), parentTypes = Set(parentTags.types)
        return Summary(parentId: parent.manifest.id, carriedTypes: types.intersection(parentTypes).sorted(),
                       newTypes: types.subtracting(parentTypes).sorted(), droppedTypes: parentTypes.subtracting(types).sorted(),
                       carriedWords: from.config.wordVocab, newWords: p.config.wordVocab - from.config.wordVocab)
    }
}
