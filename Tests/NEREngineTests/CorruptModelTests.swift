import Foundation
import NERCore
import NEREngine
import Testing
import TestSupport

/// Model folders damaged in the ways fuzzing found, each made from a copy of the tiny model in
/// fuzz/model: every one must be refused with a one-line data error (65), never crash or hang.
@Suite struct CorruptModelTests {
    /// A copy of fuzz/model with `file` replaced by `bytes`.
    func modelWith(_ file: String, _ bytes: [UInt8], in dir: TempDir) throws -> String {
        let model = dir.file("model")
        try FileManager.default.copyItem(atPath: TestTools.repoRoot + "/fuzz/model", toPath: model)
        try Data(bytes).write(to: URL(fileURLWithPath: model + "/" + file))
        return model
    }

    func loadError(_ dir: String) -> ToolError? {
        do { _ = try NERModel.load(dir); return nil } catch { return error as? ToolError }
    }

    /// Little-endian u32s.
    func words(_ values: [UInt32]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } } }

    @Test func vocabularyWithoutAnEmptySlotIsRefused() throws {
        let dir = TempDir("corrupt-vocab")
        defer { dir.remove() }
        let model = try JSON.parse(try Data(contentsOf: URL(fileURLWithPath: TestTools.repoRoot + "/fuzz/model/model.json")))
        let count = try #require(model["config"]?["word_vocab"]?.intValue)
        // Every slot points at word 0, so a lookup of any other word never meets an empty slot.
        let vocab = words([0x5652_454E, 1, UInt32(count), 16] + [UInt32](repeating: 1, count: 16)
                          + [0] + [UInt32](repeating: 4, count: count)) + Array("zzzz".utf8)
        let error = loadError(try modelWith("vocab.bin", vocab, in: dir))
        #expect(error?.status.rawValue == 65)
        #expect(error?.message.contains("vocab.bin: corrupt vocabulary") == true, "\(String(describing: error))")
    }

    /// fuzz/model's weights.bin with the u64 at `offset` replaced.
    func weightsWith(u64 value: UInt64, at offset: Int) throws -> [UInt8] {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: TestTools.repoRoot + "/fuzz/model/weights.bin")))
        withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset..<offset + 8, with: $0) }
        return bytes
    }

    @Test func weightsFileSizeOverInt64MaxIsRefused() throws {
        let dir = TempDir("corrupt-size")
        defer { dir.remove() }
        let error = loadError(try modelWith("weights.bin", try weightsWith(u64: .max, at: 24), in: dir))
        #expect(error?.status.rawValue == 65)
        #expect(error?.message.hasSuffix("weights.bin: corrupt or truncated weights file") == true, "\(String(describing: error))")
    }

    @Test func weightsDataOffsetPastTheFileIsRefused() throws {
        let dir = TempDir("corrupt-offset")
        defer { dir.remove() }
        let error = loadError(try modelWith("weights.bin", try weightsWith(u64: 0x7FFF_FFFF_FFFF_FFF0, at: 16), in: dir))
        #expect(error?.status.rawValue == 65)
        #expect(error?.message.contains("weights.bin: corrupt weights file (data offset 9223372036854775792") == true, "\(String(describing: error))")
    }

    @Test func configDimensionsThatWouldOverflowAreRefused() throws {
        let dir = TempDir("corrupt-config")
        defer { dir.remove() }
        var model = try JSON.parse(try Data(contentsOf: URL(fileURLWithPath: TestTools.repoRoot + "/fuzz/model/model.json")))
        for (key, value) in [("hidden", Int64(1) << 62), ("word_vocab", -1)] {
            var config = try #require(model["config"])
            config[key] = .int(value)
            model["config"] = config
            let error = loadError(try modelWith("model.json", Array(model.encoded()), in: dir))
            #expect(error?.status.rawValue == 65)
            #expect(error?.message.contains("model.json: config.\(key) is \(value), must be") == true, "\(key): \(String(describing: error))")
            try FileManager.default.removeItem(atPath: dir.file("model"))
            model = try JSON.parse(try Data(contentsOf: URL(fileURLWithPath: TestTools.repoRoot + "/fuzz/model/model.json")))
        }
    }

    /// NaN word vectors are not refused at load (loading does not read every vector; `ner-pack`
    /// does), but tagging must not trap: the engine's exp approximation converted NaN to an integer.
    /// Only the checked build (`make fuzz`, and fuzz/corpus/model/nan-weights.model) trapped; the
    /// release build's engine is -Ounchecked.
    @Test func nanWordVectorsStillTag() throws {
        let dir = TempDir("corrupt-nan")
        defer { dir.remove() }
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: TestTools.repoRoot + "/fuzz/model/weights.bin")))
        let config = try #require(try JSON.parse(try Data(contentsOf: URL(fileURLWithPath: TestTools.repoRoot + "/fuzz/model/model.json")))["config"])
        let vectors = 4 * (try #require(config["word_vocab"]?.intValue)) * (try #require(config["word_dim"]?.intValue))
        // The word vectors are the last tensor of weights.bin.
        for at in stride(from: bytes.count - vectors, to: bytes.count, by: 4) {
            withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { bytes.replaceSubrange(at..<at + 4, with: $0) }
        }
        let model = try NERModel.load(try modelWith("weights.bin", bytes, in: dir))
        let predictions = model.predict([["EU", "rejects", "German", "call"], ["Peter"]])
        #expect(predictions.map(\.tags.count) == [4, 1])
    }
}
