import Foundation
import NERCore

/// `ner-train --check-device`: the engine's math on a device against the CPU path, on a small random
/// network, so a new GPU node (driver, CUDA libraries, kernels) can be trusted before a long run.
public enum DeviceCheck {
    /// One comparison: the largest difference found, relative to the largest CPU value, and the bound.
    public struct Result: Sendable {
        public var check: String
        public var worst: Double
        public var limit: Double
        public var ok: Bool { worst <= limit }

        public var json: JSON {
            ["check": .string(check), "worst_relative_difference": .double(worst), "limit": .double(limit), "ok": .bool(ok)]
        }
    }

    /// Runs every check on the GPU (selected with `ComputeDevice.select`). Throws only when it
    /// cannot be used.
    public static func run() throws -> [Result] {
        var results: [Result] = []
        func relative(_ a: [Double], _ b: [Double]) -> Double {
            let scale = max(1e-12, a.map(abs).max() ?? 0)
            return (zip(a, b).map { abs($0 - $1) }.max() ?? 0) / scale
        }
        for chars in [true, false] {
            let net = NetworkCheck(seed: 5, wordVocab: 50, wordDim: 16, charVocab: 30, charDim: chars ? 8 : 0, charFilters: 12, hidden: 24)
            let sentences = net.randomSentences(count: 96, maxLength: 24, seed: 2)
            let cpu = net.fastGradients(sentences, batchSize: 32)
            let gpu = try net.cudaGradients(sentences, batchSize: 32)
            let worst = net.tensorNames.map { relative(cpu.gradients[$0]!, gpu.gradients[$0]!) }.max() ?? 0
            results.append(Result(check: chars ? "gradients" : "gradients_without_characters",
                                  worst: max(worst, abs(cpu.loss - gpu.loss) / abs(cpu.loss)), limit: 1e-4))
        }
        let net = NetworkCheck(seed: 8, wordVocab: 50, wordDim: 16, charVocab: 30, charDim: 8, charFilters: 12, hidden: 24)
        let sentences = net.randomSentences(count: 300, maxLength: 30, seed: 4)
        let cpu = net.fastDecode(sentences), gpu = try net.cudaDecode(sentences)
        let tokens = sentences.reduce(0) { $0 + $1.count }
        let differentTags = zip(cpu.tags, gpu.tags).reduce(0) { $0 + zip($1.0, $1.1).filter { $0 != $1 }.count }
        results.append(Result(check: "decoded_tags", worst: Double(differentTags) / Double(tokens), limit: 0.001))
        results.append(Result(check: "decoded_scores", worst: relative(cpu.scores.joined().map(Double.init),
                                                                      gpu.scores.joined().map(Double.init)), limit: 1e-4))
        let batches = Dictionary(grouping: net.randomSentences(count: 200, maxLength: 12, seed: 6), by: \.count)
            .sorted { $0.key < $1.key }.map(\.value)
        let cpuWeights = try net.trained(batches, device: .cpu, adam: false, lr: 0.05)
        let gpuWeights = try net.trained(batches, device: .cuda, adam: false, lr: 0.05)
        let worst = cpuWeights.keys.map { relative(cpuWeights[$0]!, gpuWeights[$0]!) }.max() ?? 0
        results.append(Result(check: "training_updates", worst: worst, limit: 1e-4))
        return results
    }
}
