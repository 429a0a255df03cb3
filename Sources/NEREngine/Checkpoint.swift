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
        try AtomicFile.write(blob(training(p, o), of: p), to: dir + "/state.bin")
        if let average { try AtomicFile.write(blob(weights(average), of: average), to: dir + "/average.bin") }
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
        try restore(binPath, into: training(p, o), of: p)
        o.restore(step: state.step)
        return state
    }

    /// What `state.bin` holds: parameters and Adam moments, dense then word rows.
    static func training(_ p: Parameters, _ o: Optimizer) -> [UnsafeMutablePointer<Float>] {
        [p.dense, o.m, o.v, p.words, o.wm, o.wv]
    }

    /// What `average.bin` holds: the averaged weights.
    static func weights(_ p: Parameters) -> [UnsafeMutablePointer<Float>] { [p.dense, p.words] }

    /// The element count of each of `arrays`: the first half dense, the second half word rows.
    static func counts(_ arrays: [UnsafeMutablePointer<Float>], of p: Parameters) -> [Int] {
        let dense = p.layout.total, words = p.config.wordVocab * p.config.wordDim
        return arrays.indices.map { $0 < arrays.count / 2 ? dense : words }
    }

    /// `arrays` as raw float32 behind the 32-byte header (magic, version, dense and word sizes).
    static func blob(_ arrays: [UnsafeMutablePointer<Float>], of p: Parameters) -> Data {
        let sizes = counts(arrays, of: p)
        var d = Data(count: 32 + 4 * sizes.reduce(0, +))
        d.withUnsafeMutableBytes { raw in
            let b = raw.baseAddress!
            b.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: UInt32(1).littleEndian, toByteOffset: 4, as: UInt32.self)
            b.storeBytes(of: UInt64(p.layout.total).littleEndian, toByteOffset: 8, as: UInt64.self)
            b.storeBytes(of: UInt64(p.config.wordVocab * p.config.wordDim).littleEndian, toByteOffset: 16, as: UInt64.self)
            var at = 32
            for (src, n) in zip(arrays, sizes) {
                (b + at).copyMemory(from: src, byteCount: 4 * n)
                at += 4 * n
            }
        }
        return d
    }

    /// Reads what `blob` wrote into `arrays`; a file of another size or without the magic is exit 65.
    static func restore(_ path: String, into arrays: [UnsafeMutablePointer<Float>], of p: Parameters) throws {
        let sizes = counts(arrays, of: p)
        let f = try MappedFile(path)
        guard f.size == 32 + 4 * sizes.reduce(0, +), UInt32(littleEndian: f.base.loadUnaligned(as: UInt32.self)) == magic else {
            throw ToolError.data("\(path): corrupt or truncated checkpoint")
        }
        var at = 32
        for (dst, n) in zip(arrays, sizes) {
            UnsafeMutableRawPointer(dst).copyMemory(from: f.base + at, byteCount: 4 * n)
            at += 4 * n
        }
    }

    /// Restores the weight average a checkpoint kept.
    static func readAverage(_ dir: String, into p: Parameters) throws {
        try restore(dir + "/average.bin", into: weights(p), of: p)
    }

    static func readHistory(_ path: String, upTo epoch: Int) -> [JSON] {
        guard let d = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: d, as: UTF8.self).split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
            .filter { ($0["epoch"]?.intValue ?? .max) <= epoch }
    }
}
