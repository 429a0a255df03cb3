import Foundation
import NERCore

/// The per-epoch checkpoint: `state.json` (counters, best score, the model id), `state.bin`
/// (parameters and optimizer moments, raw little-endian float32 behind a small header) and, with
/// weight averaging, `average.bin` (the averaged weights, same layout). All go through AtomicFile,
/// and state.json is written last, so a crash leaves a consistent set.
enum Checkpoint {
    static let magic: UInt32 = 0x4352_454E  // "NERC"

    static func write(_ dir: String, state: Trainer.State, params p: Parameters, optimizer o: Optimizer,
                      average: Parameters? = nil) throws {
        try makeDirectory(dir)
        let dense = p.layout.total, words = p.config.wordVocab * p.config.wordDim
        let header = 32
        var d = Data(count: header + 4 * 3 * (dense + words))
        d.withUnsafeMutableBytes { raw in
            let b = raw.baseAddress!
            b.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: UInt32(1).littleEndian, toByteOffset: 4, as: UInt32.self)
            b.storeBytes(of: UInt64(dense).littleEndian, toByteOffset: 8, as: UInt64.self)
            b.storeBytes(of: UInt64(words).littleEndian, toByteOffset: 16, as: UInt64.self)
            var at = header
            for (src, n) in [(p.dense, dense), (o.m, dense), (o.v, dense), (p.words, words), (o.wm, words), (o.wv, words)] {
                (b + at).copyMemory(from: src, byteCount: 4 * n)
                at += 4 * n
            }
        }
        try AtomicFile.write(d, to: dir + "/state.bin")
        if let average { try AtomicFile.write(weights(average), to: dir + "/average.bin") }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(try e.encode(state), to: dir + "/state.json")
    }

    /// Restores parameters and moments; refuses a checkpoint made with a different model shape,
    /// seed or thread count (the run would silently differ from an uninterrupted one).
    static func read(_ dir: String, params p: Parameters, optimizer o: Optimizer, expected: Trainer.State) throws -> Trainer.State {
        let jsonPath = dir + "/state.json", binPath = dir + "/state.bin"
        guard let raw = FileManager.default.contents(atPath: jsonPath) else { throw ToolError.noInput("\(jsonPath): cannot read") }
        let state: Trainer.State
        do { state = try JSONDecoder().decode(Trainer.State.self, from: raw) } catch {
            throw ToolError.data("\(jsonPath): not a checkpoint state file")
        }
        guard state.formatVersion == 1 else { throw ToolError.data("\(jsonPath): unsupported checkpoint version \(state.formatVersion)") }
        guard state.config == expected.config else {
            throw ToolError.data("\(jsonPath): checkpoint was made for a different model (data, embeddings or sizes changed)")
        }
        guard state.seed == expected.seed, state.threads == expected.threads else {
            throw ToolError.usage("\(jsonPath): checkpoint used seed \(state.seed) and \(state.threads) threads; resume with the same")
        }
        let f = try MappedFile(binPath)
        let dense = p.layout.total, words = p.config.wordVocab * p.config.wordDim
        guard f.size == 32 + 4 * 3 * (dense + words),
              UInt32(littleEndian: f.base.loadUnaligned(as: UInt32.self)) == magic else {
            throw ToolError.data("\(binPath): corrupt or truncated checkpoint")
        }
        var at = 32
        for (dst, n) in [(p.dense, dense), (o.m, dense), (o.v, dense), (p.words, words), (o.wm, words), (o.wv, words)] {
            UnsafeMutableRawPointer(dst).copyMemory(from: f.base + at, byteCount: 4 * n)
            at += 4 * n
        }
        o.restore(step: state.step)
        return state
    }

    /// The dense weights and word vectors of `p` behind the checkpoint header.
    static func weights(_ p: Parameters) -> Data {
        let dense = p.layout.total, words = p.config.wordVocab * p.config.wordDim
        var d = Data(count: 32 + 4 * (dense + words))
        d.withUnsafeMutableBytes { raw in
            let b = raw.baseAddress!
            b.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: UInt32(1).littleEndian, toByteOffset: 4, as: UInt32.self)
            b.storeBytes(of: UInt64(dense).littleEndian, toByteOffset: 8, as: UInt64.self)
            b.storeBytes(of: UInt64(words).littleEndian, toByteOffset: 16, as: UInt64.self)
            (b + 32).copyMemory(from: p.dense, byteCount: 4 * dense)
            (b + 32 + 4 * dense).copyMemory(from: p.words, byteCount: 4 * words)
        }
        return d
    }

    /// Restores the weight average a checkpoint kept.
    static func readAverage(_ dir: String, into p: Parameters) throws {
        let path = dir + "/average.bin"
        let f = try MappedFile(path)
        let dense = p.layout.total, words = p.config.wordVocab * p.config.wordDim
        guard f.size == 32 + 4 * (dense + words), UInt32(littleEndian: f.base.loadUnaligned(as: UInt32.self)) == magic else {
            throw ToolError.data("\(path): corrupt or truncated checkpoint")
        }
        UnsafeMutableRawPointer(p.dense).copyMemory(from: f.base + 32, byteCount: 4 * dense)
        UnsafeMutableRawPointer(p.words).copyMemory(from: f.base + 32 + 4 * dense, byteCount: 4 * words)
    }

    static func readHistory(_ path: String, upTo epoch: Int) -> [JSON] {
        guard let d = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: d, as: UTF8.self).split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
            .filter { ($0["epoch"]?.intValue ?? .max) <= epoch }
    }
}
