import Foundation
import NERCore

/// The model folder (**contract**): `model.json` (small: identity, labels, shape, characters) and two
/// mmappable binaries, `weights.bin` and `vocab.bin`, both little-endian with a magic and a version.
///
/// weights.bin: a 64-byte header (magic "NERW", format version, tensor count, entry size, data offset,
/// file size), a table of 64-byte entries (name, 40 bytes NUL-padded; byte offset u64; rows u32; cols u32),
/// then float32 data, every tensor 64-byte aligned.
enum ModelFile {
    static let formatVersion = 1
    static let magic = "ner-model"
    static let weightsMagic: UInt32 = 0x5752_454E  // "NERW"
    /// Toolchain versions that can read this format.
    static let toolchainRange = ["min": "0.1.0", "max": "0.99.99"]

    struct Manifest {
        var id: String
        var name: String
        var tagSet: TagSet
        var config: ModelConfig
        var chars: [Unicode.Scalar]
    }

    static func write(_ m: Manifest, params: Parameters, words: [UInt8], to dir: String) throws {
        try makeDirectory(dir)
        let vocabData = Data(words)
        try AtomicFile.write(vocabData, to: dir + "/vocab.bin")
        try AtomicFile.write(weightsBlob(params), to: dir + "/weights.bin")
        let json: JSON = [
            "magic": .string(magic),
            "format_version": .int(Int64(formatVersion)),
            "id": .string(m.id),
            "name": .string(m.name),
            "labels": .array(m.tagSet.types.map { .string($0) }),
            "tags": .array(m.tagSet.tags.map { .string($0) }),
            "config": try JSON.from(m.config),
            "chars": .array(m.chars.map { .string(String($0)) }),
            "files": ["weights": "weights.bin", "vocab": "vocab.bin"],
            "toolchain": ["min": .string(toolchainRange["min"]!), "max": .string(toolchainRange["max"]!),
                          "written_by": .string(Toolchain.version)],
            "created_at": .string(Timestamp.now()),
        ]
        try AtomicFile.write(json.prettyEncoded(), to: dir + "/model.json")
    }

    static func weightsBlob(_ p: Parameters) -> Data {
        let l = p.layout
        var entries: [(String, Int, Int, Int)] = []  // name, byte offset, rows, cols
        let tableBytes = 64 * (l.tensors.count + 1)
        let dataOffset = (64 + tableBytes + 63) / 64 * 64
        for t in l.tensors { entries.append((t.name, dataOffset + 4 * t.offset, t.rows, t.cols)) }
        let wordsOffset = dataOffset + 4 * l.total
        entries.append(("word_embeddings", wordsOffset, p.config.wordVocab, p.config.wordDim))
        let fileSize = wordsOffset + 4 * p.config.wordVocab * p.config.wordDim
        var d = Data(count: fileSize)
        d.withUnsafeMutableBytes { raw in
            let b = raw.baseAddress!
            func put32(_ v: Int, _ at: Int) { b.storeBytes(of: UInt32(v).littleEndian, toByteOffset: at, as: UInt32.self) }
            func put64(_ v: Int, _ at: Int) { b.storeBytes(of: UInt64(v).littleEndian, toByteOffset: at, as: UInt64.self) }
            put32(Int(weightsMagic), 0); put32(formatVersion, 4); put32(entries.count, 8); put32(64, 12)
            put64(dataOffset, 16); put64(fileSize, 24)
            for (i, e) in entries.enumerated() {
                let at = 64 + 64 * i
                let name = Array(e.0.utf8.prefix(39))
                for (j, c) in name.enumerated() { b.storeBytes(of: c, toByteOffset: at + j, as: UInt8.self) }
                put64(e.1, at + 40); put32(e.2, at + 48); put32(e.3, at + 52)
            }
            (b + dataOffset).copyMemory(from: p.dense, byteCount: 4 * l.total)
            (b + wordsOffset).copyMemory(from: p.words, byteCount: 4 * p.config.wordVocab * p.config.wordDim)
        }
        return d
    }

    /// Reads a model folder. Missing folder or files: 66; anything unreadable or inconsistent: 65.
    static func read(_ dir: String) throws -> (Manifest, Tagger) {
        let jsonPath = dir + "/model.json"
        guard fileExists(jsonPath) else {
            if !fileExists(dir) { throw ToolError.noInput("\(dir): no such model folder") }
            throw ToolError.noInput("\(jsonPath): no such file")
        }
        guard let raw = FileManager.default.contents(atPath: jsonPath) else { throw ToolError.noInput("\(jsonPath): cannot read") }
        let j: JSON
        do { j = try JSON.parse(raw) } catch let e as ToolError { throw ToolError.data("\(jsonPath): \(e.message)") }
        func bad(_ m: String) -> ToolError { ToolError.data("model.json: \(m) (\(jsonPath))") }
        guard j["magic"]?.stringValue == magic else { throw bad("not a model file (magic is not \"\(magic)\")") }
        guard let v = j["format_version"]?.intValue else { throw bad("missing format_version") }
        guard v == formatVersion else { throw bad("unsupported format version \(v) (this build reads \(formatVersion))") }
        guard let id = j["id"]?.stringValue, let name = j["name"]?.stringValue,
              let labels = j["labels"]?.arrayValue?.compactMap(\.stringValue),
              let tags = j["tags"]?.arrayValue?.compactMap(\.stringValue),
              let cfgJSON = j["config"], let chars = j["chars"]?.arrayValue?.compactMap(\.stringValue) else {
            throw bad("missing id, name, labels, tags, config or chars")
        }
        let config: ModelConfig
        do { config = try cfgJSON.decode(ModelConfig.self) } catch { throw bad("malformed config") }
        // Far above any real model, and low enough that the tensor arithmetic below cannot overflow.
        let dimensions = [config.wordDim, config.charDim, config.charFilters, config.charWindow, config.maxWordChars,
                          config.hidden, config.charVocab, config.wordVocab, config.tagCount]
        guard dimensions.allSatisfy({ (0...(1 << 24)).contains($0) }) else { throw bad("config values must be between 0 and 16777216") }
        let tagSet = TagSet(types: labels)
        guard tagSet.tags == tags, tags.count == config.tagCount else { throw bad("tags do not match labels") }
        let scalars = chars.compactMap { $0.unicodeScalars.count == 1 ? $0.unicodeScalars.first : nil }
        guard scalars.count == chars.count, chars.count + 1 == max(config.charVocab, 1) || config.charDim == 0 else {
            throw bad("malformed chars")
        }
        let weights = try MappedFile(dir + "/weights.bin")
        let params = try mapWeights(weights, config: config)
        let vocab = try MappedFile(dir + "/vocab.bin")
        let table = try WordTable(bytes: vocab.base, size: vocab.size, owner: vocab, name: vocab.path)
        guard table.count == config.wordVocab else { throw ToolError.data("\(vocab.path): vocabulary has \(table.count) words, model.json says \(config.wordVocab)") }
        var charIds: [Unicode.Scalar: Int32] = [:]
        for (i, c) in scalars.enumerated() { charIds[c] = Int32(i + 1) }
        let encoder = Encoder(words: table, chars: charIds, maxWordChars: config.maxWordChars)
        let manifest = Manifest(id: id, name: name, tagSet: tagSet, config: config, chars: scalars)
        return (manifest, Tagger(params: params, tagSet: tagSet, encoder: encoder))
    }

    private static func mapWeights(_ f: MappedFile, config: ModelConfig) throws -> Parameters {
        func bad(_ m: String) -> ToolError { ToolError.data("\(f.path): \(m)") }
        let b = f.base
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        func u64(_ at: Int) -> Int { Int(clamping: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self))) }
        guard f.size >= 64, u32(0) == Int(weightsMagic) else { throw bad("not a weights file (bad magic)") }
        guard u32(4) == formatVersion else { throw bad("unsupported weights format version \(u32(4)) (this build reads \(formatVersion))") }
        let layout = Layout(config)
        let count = u32(8)
        guard u32(12) == 64, count == layout.tensors.count + 1, 64 + 64 * count <= f.size, u64(24) == f.size else {
            throw bad("corrupt or truncated weights file")
        }
        let dataOffset = u64(16)
        guard dataOffset <= f.size else { throw bad("corrupt or truncated weights file") }
        let expected = layout.tensors.map { ($0.name, dataOffset + 4 * $0.offset, $0.rows, $0.cols) }
            + [("word_embeddings", dataOffset + 4 * layout.total, config.wordVocab, config.wordDim)]
        for (i, e) in expected.enumerated() {
            let at = 64 + 64 * i
            let nameBytes = UnsafeRawBufferPointer(start: b + at, count: 40).prefix { $0 != 0 }
            let name = String(decoding: nameBytes, as: UTF8.self)
            guard name == e.0, u64(at + 40) == e.1, u32(at + 48) == e.2, u32(at + 52) == e.3 else {
                throw bad("tensor \(i) is \(name), expected \(e.0) \(e.2)x\(e.3): weights do not match model.json")
            }
        }
        guard dataOffset % 64 == 0, dataOffset + 4 * (layout.total + config.wordVocab * config.wordDim) == f.size else {
            throw bad("corrupt or truncated weights file")
        }
        return Parameters(config: config, dense: b + dataOffset, words: b + dataOffset + 4 * layout.total, owner: f)
    }
}
