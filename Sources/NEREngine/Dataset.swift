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
    /// (index in `pretrained`, embedding row) of each pretrained vector that initialises a row.
    var pretrainedRows: [(source: Int, row: Int)]
    var singletons: [Bool]
    var train: [EncodedSentence]
    /// The replay file's sentences, its entity types outside `tagSet` read as O (empty without replay).
    var replay: [EncodedSentence]
    /// Entity types of the replay file that the training data lacks.
    var replayDroppedTypes: [String]
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

    /// With a `parent` (warm start), its characters and words keep their ids and come first, so
    /// their rows carry over; the vectors file then only fills the rows of words the parent lacks.
    static func build(spec: JobSpec, maxWordChars: Int, parent: WarmStart.Parent? = nil) throws -> Dataset {
        let train = try read(spec.train, role: "train")
        let dev = try spec.dev.map { try read($0, role: "dev") }
        let test = try spec.test.map { try read($0, role: "test") }
        let replay = try spec.replay.map { try read($0, role: "replay") } ?? []
        let pretrained = spec.embeddings == "none" ? nil : try PretrainedVectors.read(spec.embeddings)
        if let parent, let pretrained, pretrained.dim != parent.manifest.config.wordDim {
            throw ToolError.data("\(spec.embeddings): vectors of \(pretrained.dim) dimensions, but the model in init_from "
                + "(\(parent.manifest.id)) has word_dim \(parent.manifest.config.wordDim)")
        }

        let bioes = train.map { Tags.toBIOES($0.tags) }
        var tagSet = TagSet(types: TagSet.types(in: train.map(\.tags)))

        // Replayed sentences are training data too: their words and characters get rows.
        let trained = train + replay
        var charCounts: [Unicode.Scalar: Int] = [:]
        for s in trained { for t in s.tokens { for c in t.unicodeScalars { charCounts[c, default: 0] += 1 } } }
        var chars = parent?.manifest.chars ?? []
        let known = Set(chars)
        chars += charCounts.filter { !known.contains($0.key) }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.value < $1.key.value }.map(\.key)
        var charIds: [Unicode.Scalar: Int32] = [:]
        for (i, c) in chars.enumerated() { charIds[c] = Int32(i + 1) }

        var vocab = ["<unk>"]
        if let parent { vocab = (0..<parent.words.count).map { parent.words.word($0) } }
        var ids: [String: Int32] = [:]
        for (i, w) in vocab.enumerated() where ids[w] == nil { ids[w] = Int32(i) }
        let parentRows = vocab.count
        var pretrainedRows: [(source: Int, row: Int)] = []
        if let pretrained {
            for (i, w) in pretrained.words.enumerated() where w != "<unk>" {
                if let id = ids[w] {
                    if Int(id) >= parentRows { pretrainedRows.append((i, Int(id))) }
                    continue
                }
                ids[w] = Int32(vocab.count)
                pretrainedRows.append((i, vocab.count))
                vocab.append(w)
            }
        }
        var counts: [Int] = Array(repeating: 0, count: vocab.count)
        for s in trained {
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
        let knownTypes = Set(tagSet.types)
        var dropped = Set<String>()
        var replayed: [EncodedSentence] = []
        replayed.reserveCapacity(replay.count)
        for s in replay {
            let kept = s.tags.map { tag -> String in
                guard tag != "O" else { return tag }
                let type = String(tag.dropFirst(2))
                if knownTypes.contains(type) { return tag }
                dropped.insert(type)
                return "O"
            }
            let tagIds = Tags.toBIOES(kept).map { Int32(tagSet.index[$0] ?? 0) }
            tagSet.allow(tagIds.map { Int($0) })
            replayed.append(encoder.encode(s.tokens, tags: tagIds))
        }
        return Dataset(tagSet: tagSet, chars: chars, words: bytes, wordCount: vocab.count,
                       wordDim: parent?.manifest.config.wordDim ?? pretrained?.dim ?? spec.wordDim, pretrained: pretrained, pretrainedRows: pretrainedRows,
                       singletons: counts.map { $0 == 1 }, train: encoded, replay: replayed,
                       replayDroppedTypes: dropped.sorted(), dev: dev, test: test, encoder: encoder,
                       trainTokens: train.reduce(0) { $0 + $1.tokens.count })
    }

    /// Copies pretrained vectors into the embedding rows they name.
    func loadPretrained(into p: Parameters) {
        guard let pretrained else { return }
        let d = wordDim
        pretrained.vectors.withUnsafeBufferPointer { v in
            for (source, row) in pretrainedRows {
                (p.words + row * d).update(from: v.baseAddress! + source * d, count: d)
            }
        }
    }
}
