import Foundation
import NEREngine

/// A model folder as `ner-infer` and `ner-serve` load it. The input is model.json, weights.bin and
/// vocab.bin joined by `separator`; a model that loads also tags a few sentences, which reads every
/// tensor and looks words up in the vocabulary.
enum ModelTarget {
    static let separator = Array("\n--ner-fuzz-file--\n".utf8)
    static let files = ["model.json", "weights.bin", "vocab.bin"]

    static func run(_ data: [UInt8]) {
        let dir = Scratch.dir + "/model"
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        for (name, part) in zip(files, split(data)) { _ = Scratch.write(part, to: "model/" + name) }
        guard let model = try? NERModel.load(dir) else { return }
        model.threads = 1
        let sentences = [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"], ["ünïcödé", "x"]]
        let predictions = model.predict(sentences)
        guard predictions.count == sentences.count,
              zip(predictions, sentences).allSatisfy({ $0.tags.count == $1.count && $0.scores.count == $1.count }) else {
            fatalError("predictions do not match the sentences")
        }
    }

    /// The parts of `data` between separators (at most three).
    static func split(_ data: [UInt8]) -> [ArraySlice<UInt8>] {
        var parts: [ArraySlice<UInt8>] = []
        var start = 0, i = 0
        while i + separator.count <= data.count && parts.count < files.count - 1 {
            if data[i..<i + separator.count].elementsEqual(separator) {
                parts.append(data[start..<i])
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        parts.append(data[start...])
        return parts
    }
}
