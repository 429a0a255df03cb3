import Foundation
import NERCore
import NERText

/// Everything training derives from the data files before the first step: the tag set, the
/// character and word vocabularies, the initial word vectors and the encoded sentences. Rebuilt
/// identically from the same files on `--resume`.
struct Dataset {
    var tagSet: TagSet
    var chars: [Unicode.Scalar]
    var words: [UInt8]  // WordTable bytes
    var wordCount: Int
    var wordDim: Int
    var pretrained: PretrainedVectors?
    var pretrainedRows: Int
    var singletons: [Bool]
    var train: [EncodedSentence]
    var dev: [Sentence]?
    var test: [Sentence]?
    var encoder: Encoder
    var trainTokens: Int

    static func read(_ path: String, role: String) throws -> [Sentence] {
        guard fileExists(path) else { throw ToolError.noInput("\(role) file \(path): no such file") }
        let s = try CoNLL.read(path: path).filter { !$0.tokens.isEmpty }
        if s.isEmpty { throw ToolError.data("\(path): no sentences (empty \(role) file)") }
        return s
    }

    static func build(spec: JobSpec, maxWordChars: Int) throws -> Dataset {
        let train = try read(spec.train, role: "train")
        let dev = try spec.dev.map { try read($0, role: "dev") }
        let test = try spec.test.map { try read($0, role: "test") }
        let pretrained = spec.embeddings == "none" ? nil : try PretrainedVectors.read(spec.embeddings)

        let bioes = train.map { Tags.toBIOES($0.tags) }
        var tagSet = TagSet(types: TagSet.types(in: train.map(\.tags)))

        var charCounts: [Unicode.Scalar: Int] = [:]
        for s in train { for t in s.tokens { for c in t.unicodeScalars { charCounts[c, default: 0] += 1 } } }
        let chars = charCounts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.value < $1.key.value }.map(\.key)
        var charIds: [Unicode.Scalar: Int32] = [:]
        for (i, c) in chars.enumerated() { charIds[c] = Int32(i + 1) }

        var vocab = ["<unk>"]
        var ids: [String: Int32] = ["<unk>": 0]
        if let pretrained {
            for w in pretrained.words where ids[w] == nil {
                ids[w] = Int32(vocab.count)
                vocab.append(w)
            }
        }
        let pretrainedRows = vocab.count
        var counts: [Int] = Array(repeating: 0, count: vocab.count)
        for s in train {
            for t in s.tokens {
                let key = Encoder.wordKey(t)
                let id: Int32
                if let i = ids[key] { id = i }
                else {
                    let folded = Encoder.digitFolded(key)
                    if let i = ids[folded] { id = i }
                    else {
                        id = Int32(vocab.count)
                        ids[folded] = id
                        vocab.append(folded)
                        counts.append(0)
                    }
                }
                counts[Int(id)] += 1
            }
        }
        let bytes = WordTable.build(vocab)
        let encoder = Encoder(words: WordTable(bytes: bytes), chars: charIds, maxWordChars: maxWordChars)
        var encoded: [EncodedSentence] = []
        encoded.reserveCapacity(train.count)
        for (s, tags) in zip(train, bioes) {
            let tagIds = tags.map { Int32(tagSet.index[$0] ?? 0) }
            tagSet.allow(tagIds.map { Int($0) })
            encoded.append(encoder.encode(s.tokens, tags: tagIds))
        }
        return Dataset(tagSet: tagSet, chars: chars, words: bytes, wordCount: vocab.count,
                       wordDim: pretrained?.dim ?? spec.wordDim, pretrained: pretrained, pretrainedRows: pretrainedRows,
                       singletons: counts.map { $0 == 1 }, train: encoded, dev: dev, test: test, encoder: encoder,
                       trainTokens: train.reduce(0) { $0 + $1.tokens.count })
    }

    /// Copies pretrained vectors into the embedding rows they name.
    func loadPretrained(into p: Parameters) {
        guard let pretrained else { return }
        let d = wordDim
        pretrained.vectors.withUnsafeBufferPointer { v in
            var row = 1
            for (i, w) in pretrained.words.enumerated() where w != "<unk>" {
                (p.words + row * d).update(from: v.baseAddress! + i * d, count: d)
                row += 1
            }
        }
    }
}
