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

    /// Reads a model folder. Missing folder or files: 66; anything unreadable, out of range or
    /// inconsistent: 65. `allWeights` also checks every word vector for NaN and infinity (a pass over
    /// the whole file, which loading otherwise never reads).
    static func read(_ dir: String, allWeights: Bool = false) throws -> (Manifest, Tagger) {
        let jsonPath = dir + "/model.json"
        guard fileExists(jsonPath) else {
            if !fileExists(dir) { throw ToolError.noInput("\(dir): no such model folder") }
            throw ToolError.noInput("\(jsonPath): no such file")
        }
        guard let raw = FileManager.default.contents(atPath: jsonPath) else { throw ToolError.noInput("\(jsonPath): cannot read") }
        let j: JSON
        do { j = try JSON.parse(raw) } catch let e as ToolError { throw ToolError.data("\(jsonPath): \(e.message)") }
        func bad(_ m: String) -> ToolError { ToolError.data("model.json: \(m) (\(jsonPath))") }
        let (id, name, tagSet, config, scalars) = try fields(j, bad)
        let weights = try MappedFile(dir + "/weights.bin")
        let params = try mapWeights(weights, config: config, allWeights: allWeights)
        let vocab = try MappedFile(dir + "/vocab.bin")
        let table = try WordTable(bytes: vocab.base, size: vocab.size, owner: vocab, name: vocab.path)
        guard table.count == config.wordVocab else { throw ToolError.data("\(vocab.path): vocabulary has \(table.count) words, model.json says \(config.wordVocab)") }
        var charIds: [Unicode.Scalar: Int32] = [:]
        for (i, c) in scalars.enumerated() { charIds[c] = Int32(i + 1) }
        let encoder = Encoder(words: table, chars: charIds, maxWordChars: config.maxWordChars)
        let manifest = Manifest(id: id, name: name, tagSet: tagSet, config: config, chars: scalars)
        return (manifest, Tagger(params: params, tagSet: tagSet, encoder: encoder))
    }

    /// The allowed range of each `config` field (docs/model-format.md): what the trainer can write,
    /// and small enough that no size computed from them overflows.
    static let configLimits: [(key: String, range: ClosedRange<Int>, value: KeyPath<ModelConfig, Int>)] = [
        ("word_dim", 1...4096, \.wordDim),
        ("char_dim", 0...1024, \.charDim),
        ("char_filters", 1...1024, \.charFilters),
        ("char_window", 1...15, \.charWindow),
        ("max_word_chars", 16...64, \.maxWordChars),
        ("hidden", 1...2048, \.hidden),
        ("char_vocab", 1...0x110001, \.charVocab),
        ("word_vocab", 1...Int(UInt32.max), \.wordVocab),
        ("tag_count", 1...(1 + 4 * maxLabels), \.tagCount),
    ]
    static let maxLabels = 1024

    /// Reads and checks every field of model.json.
    private static func fields(_ j: JSON, _ bad: (String) -> ToolError) throws
        -> (id: String, name: String, tagSet: TagSet, config: ModelConfig, chars: [Unicode.Scalar]) {
        guard j.objectValue != nil else { throw bad("not a JSON object") }
        guard j["magic"]?.stringValue == magic else { throw bad("not a model file (magic is not \"\(magic)\")") }
        guard let v = j["format_version"]?.intValue else { throw bad("missing format_version") }
        guard v == formatVersion else { throw bad("unsupported format version \(v) (this build reads \(formatVersion))") }
        guard let id = j["id"]?.stringValue, isPlainId(id) else {
            throw bad("id must be 1-200 letters, digits, '.', '_' or '-', not starting with '.' or '-'")
        }
        guard let name = j["name"]?.stringValue, (try? Job.validateName(name)) != nil else {
            throw bad("name must be 1-64 letters, digits, '.', '_' or '-', not starting with '.' or '-'")
        }
        if let files = j["files"], files != ["weights": "weights.bin", "vocab": "vocab.bin"] {
            throw bad("files must be {\"weights\": \"weights.bin\", \"vocab\": \"vocab.bin\"}")
        }
        if let created = j["created_at"], created.stringValue.flatMap(Timestamp.parse) == nil {
            throw bad("created_at must be an RFC 3339 time")
        }
        if let toolchain = j["toolchain"] {
            guard let min = toolchain["min"]?.stringValue, let max = toolchain["max"]?.stringValue,
                  let lo = versionParts(min), let hi = versionParts(max), let now = versionParts(Toolchain.version) else {
                throw bad("toolchain must hold min and max versions (x.y.z)")
            }
            guard lo.lexicographicallyPrecedes(now) || lo == now, now.lexicographicallyPrecedes(hi) || now == hi else {
                throw bad("toolchain: this model needs toolchain \(min) to \(max), this is \(Toolchain.version)")
            }
        }
        guard let labelValues = j["labels"]?.arrayValue, labelValues.count <= maxLabels else {
            throw bad("labels must be a list of at most \(maxLabels) entity types")
        }
        let labels = labelValues.compactMap(\.stringValue)
        guard labels.count == labelValues.count, labels.allSatisfy({ !$0.isEmpty }), Set(labels).count == labels.count else {
            throw bad("labels must be distinct non-empty strings")
        }
        guard let cfgJSON = j["config"]?.objectValue else { throw bad("config must be an object") }
        var ints: [String: Int] = [:]
        for (key, range, _) in configLimits {
            guard let n = cfgJSON[key]?.intValue else { throw bad("config.\(key) must be an integer") }
            guard range.contains(n) else {
                throw bad("config.\(key) is \(n), must be \(range.lowerBound) to \(range.upperBound)")
            }
            ints[key] = n
        }
        let config = ModelConfig(wordDim: ints["word_dim"]!, charDim: ints["char_dim"]!, charFilters: ints["char_filters"]!,
                                 charWindow: ints["char_window"]!, maxWordChars: ints["max_word_chars"]!,
                                 hidden: ints["hidden"]!, charVocab: ints["char_vocab"]!, wordVocab: ints["word_vocab"]!,
                                 tagCount: ints["tag_count"]!)
        guard config.charWindow % 2 == 1 else { throw bad("config.char_window is \(config.charWindow), must be odd") }
        let tagSet = TagSet(types: labels)
        guard config.tagCount == tagSet.tags.count else {
            throw bad("config.tag_count is \(config.tagCount), \(labels.count) labels make \(tagSet.tags.count) tags")
        }
        guard let tags = j["tags"]?.arrayValue?.compactMap(\.stringValue), tags == tagSet.tags else {
            throw bad("tags do not match labels (expected O, then B-, I-, E-, S- of each label)")
        }
        guard let charValues = j["chars"]?.arrayValue else { throw bad("missing chars") }
        let scalars = charValues.compactMap { $0.stringValue?.unicodeScalars.count == 1 ? $0.stringValue!.unicodeScalars.first : nil }
        guard scalars.count == charValues.count, Set(scalars).count == scalars.count else {
            throw bad("chars must be distinct one-character strings")
        }
        guard config.charDim == 0 || scalars.count + 1 == config.charVocab else {
            throw bad("config.char_vocab is \(config.charVocab), chars hold \(scalars.count) (char_vocab is chars + 1)")
        }
        return (id, name, tagSet, config, scalars)
    }

    private static func isPlainId(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 200 && !id.hasPrefix(".") && !id.hasPrefix("-") && id.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
        }
    }

    /// "1.2.3" as [1, 2, 3]; nil unless three numbers.
    private static func versionParts(_ v: String) -> [Int]? {
        let parts = v.split(separator: ".", omittingEmptySubsequences: false).compactMap { Int($0) }
        return parts.count == 3 && parts.allSatisfy({ $0 >= 0 }) ? parts : nil
    }

    /// Maps weights.bin and checks its header and tensor table against `config` (already range-checked,
    /// so the sizes below cannot overflow). Header fields are compared as unsigned 64-bit values, so
    /// no value in the file can trap a conversion. The dense tensors are checked for NaN and infinity
    /// here (they are read at load anyway); the word vectors only when `allWeights` is set.
    private static func mapWeights(_ f: MappedFile, config: ModelConfig, allWeights: Bool) throws -> Parameters {
        func bad(_ m: String) -> ToolError { ToolError.data("\(f.path): \(m)") }
        let b = f.base
        func u32(_ at: Int) -> UInt64 { UInt64(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        guard f.size >= 64, u32(0) == UInt64(weightsMagic) else { throw bad("not a weights file (bad magic)") }
        guard u32(4) == UInt64(formatVersion) else { throw bad("unsupported weights format version \(u32(4)) (this build reads \(formatVersion))") }
        let layout = Layout(config)
        let count = layout.tensors.count + 1
        guard u32(8) == UInt64(count), u32(12) == 64, 64 + 64 * count <= f.size, u64(24) == UInt64(f.size) else {
            throw bad("corrupt or truncated weights file")
        }
        let dataOffset = (64 + 64 * count + 63) / 64 * 64
        guard u64(16) == UInt64(dataOffset) else { throw bad("corrupt weights file (data offset \(u64(16)), expected \(dataOffset))") }
        let expected = layout.tensors.map { ($0.name, dataOffset + 4 * $0.offset, $0.rows, $0.cols) }
            + [("word_embeddings", dataOffset + 4 * layout.total, config.wordVocab, config.wordDim)]
        for (i, e) in expected.enumerated() {
            let at = 64 + 64 * i
            let nameBytes = UnsafeRawBufferPointer(start: b + at, count: 40).prefix { $0 != 0 }
            let name = String(decoding: nameBytes, as: UTF8.self)
            guard name == e.0, u64(at + 40) == UInt64(e.1), u32(at + 48) == UInt64(e.2), u32(at + 52) == UInt64(e.3) else {
                throw bad("tensor \(i) is \(name), expected \(e.0) \(e.2)x\(e.3): weights do not match model.json")
            }
        }
        guard dataOffset + 4 * (layout.total + config.wordVocab * config.wordDim) == f.size else {
            throw bad("corrupt or truncated weights file")
        }
        let dense = (b + dataOffset).assumingMemoryBound(to: Float.self)
        let words = dense + layout.total
        for t in layout.tensors {
            if let at = firstNonFinite(dense + t.offset, t.count) {
                throw bad("tensor \(t.name) holds a non-finite value (NaN or infinity) at index \(at)")
            }
        }
        if allWeights, let at = firstNonFinite(words, config.wordVocab * config.wordDim) {
            throw bad("tensor word_embeddings holds a non-finite value (NaN or infinity) in row \(at / config.wordDim)")
        }
        return Parameters(config: config, dense: dense, words: words, owner: f)
    }

    /// The index of the first NaN or infinity among `count` floats, or nil. One pass that only ORs
    /// bits (it vectorises), and a second one to find the index only when there is something to find.
    static func firstNonFinite(_ p: UnsafePointer<Float>, _ count: Int) -> Int? {
        let bits = UnsafeRawPointer(p).assumingMemoryBound(to: UInt32.self)
        let exponent: UInt32 = 0x7F80_0000
        var any: UInt32 = 0
        for i in 0..<count { any |= (bits[i] & exponent) == exponent ? 1 : 0 }
        guard any != 0 else { return nil }
        return (0..<count).first { bits[$0] & exponent == exponent }
    }
}
