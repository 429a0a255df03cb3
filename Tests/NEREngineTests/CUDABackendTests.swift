import Foundation
import NERCore
import NEREngine
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The CUDA backend against the CPU path. Where no GPU exists (CI), the backend runs on
/// `Tests/CUDAStandIn`: a CPU stand-in for the driver, cuBLAS and NVRTC that keeps device memory
/// on the host, checks every copy and product against live allocations, compiles the kernel
/// source as C++ and runs each kernel one thread at a time. That checks the backend's
/// orchestration and the kernels' arithmetic; speed, and NVRTC's own compiler, need a real GPU.
/// With `NER_TEST_REAL_CUDA=1` the same tests run on the machine's GPU instead.
@Suite(.serialized) struct CUDABackendTests {
    static let environment = CUDAStandIn.environment

    static func requireBackend() throws -> [String: String] {
        try #require(environment != nil, "could not build Tests/CUDAStandIn/cuda_standin.cpp: \(CUDAStandIn.problem)")
        return environment!
    }

    /// Calls made into the stand-in so far: host-to-device copies, device-to-host copies, launches, products.
    static func counters() -> [Int] {
        guard let lib = environment?["NER_CUDA_DRIVER"], let handle = dlopen(lib, RTLD_NOW),
              let f = dlsym(handle, "ner_standin_counters") else { return [] }
        typealias Counters = @convention(c) (UnsafeMutablePointer<Int64>, UnsafeMutablePointer<Int64>,
                                             UnsafeMutablePointer<Int64>, UnsafeMutablePointer<Int64>) -> Void
        var htod: Int64 = 0, dtoh: Int64 = 0, launches: Int64 = 0, gemms: Int64 = 0
        unsafeBitCast(f, to: Counters.self)(&htod, &dtoh, &launches, &gemms)
        return [htod, dtoh, launches, gemms].map(Int.init)
    }

    static func worstDifference(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }

    @Test(arguments: [true, false])
    func gradientsMatchTheCPUPath(withCharacters: Bool) throws {
        _ = try Self.requireBackend()
        let net = NetworkCheck(seed: 5, charDim: withCharacters ? 3 : 0)
        let sentences = net.randomSentences(count: 11, maxLength: 6, seed: 2)
        let cpu = net.fastGradients(sentences, batchSize: 4)
        let gpu = try net.cudaGradients(sentences, batchSize: 4)
        #expect(abs(cpu.loss - gpu.loss) <= 1e-4 * abs(cpu.loss), "loss: CPU \(cpu.loss), CUDA \(gpu.loss)")
        for name in net.tensorNames {
            let c = cpu.gradients[name]!, g = gpu.gradients[name]!
            #expect(c.count == g.count)
            let scale = max(1, c.map(abs).max() ?? 0)
            let worst = Self.worstDifference(c, g)
            #expect(worst <= 1e-4 * scale, "\(name): largest difference \(worst)")
        }
        // Zeros on both sides would pass vacuously.
        for name in ["lstm.forward.input_weight", "lstm.backward.hidden_weight", "crf.transitions", "word_embeddings"]
            + (withCharacters ? ["char_embeddings", "char_conv.weight"] : []) {
            #expect(gpu.gradients[name]!.contains { abs($0) > 1e-3 }, "\(name) is all zero")
        }
    }

    @Test func decodingMatchesTheCPUPath() throws {
        _ = try Self.requireBackend()
        let net = NetworkCheck(seed: 8)
        let sentences = net.randomSentences(count: 40, maxLength: 7, seed: 4)
        let cpu = net.fastDecode(sentences)
        let gpu = try net.cudaDecode(sentences)
        #expect(cpu.tags == gpu.tags)
        for i in sentences.indices {
            #expect(Self.worstDifference(cpu.scores[i].map(Double.init), gpu.scores[i].map(Double.init)) < 1e-5, "sentence \(i)")
        }
        #expect(gpu.scores.joined().contains { $0 < 0.99 }, "all scores 1: the marginals were not exercised")
    }

    /// Updates on the device (clipping, Adam or SGD over the dense block and the touched word
    /// vectors) leave the same weights as on the CPU, and a step costs one copy each way.
    @Test(arguments: [false, true])
    func trainingStepsMatchTheCPUPath(adam: Bool) throws {
        _ = try Self.requireBackend()
        let net = NetworkCheck(seed: 3)
        let sentences = net.randomSentences(count: 40, maxLength: 5, seed: 6)
        let batches = Dictionary(grouping: sentences, by: \.count).keys.sorted().map { n in sentences.filter { $0.count == n } }
        let cpu = try net.trained(batches, device: .cpu, adam: adam, lr: 0.01)
        let before = Self.counters()
        let gpu = try net.trained(batches, device: .cuda, adam: adam, lr: 0.01)
        let after = Self.counters()
        var moved = 0
        for name in cpu.keys.sorted() {
            let c = cpu[name]!, g = gpu[name]!, start = net.values[name]!
            moved += zip(c, start).filter { abs($0 - $1) > 1e-6 }.count
            if adam {
                // Adam divides by the gradient's own size, so an entry whose gradient is float noise
                // moves by up to the learning rate either way; nearly all must agree closely.
                let close = zip(c, g).filter { abs($0 - $1) <= 1e-4 }.count
                #expect(Double(close) >= 0.995 * Double(c.count), "\(name): \(c.count - close) of \(c.count) differ")
                #expect(Self.worstDifference(c, g) <= 2 * 0.01 * Double(batches.count), "\(name)")
            } else {
                #expect(Self.worstDifference(c, g) <= 1e-5, "\(name): largest difference \(Self.worstDifference(c, g))")
            }
        }
        #expect(moved > 100, "the steps changed almost nothing")
        if before.count == 4 && after.count == 4 {
            // Per step one upload (the batch's ids) and one download (loss, norm, clip factor); the
            // rest is the start-up upload of weights and moments and the final copy back (6 arrays).
            let uploads = after[0] - before[0], downloads = after[1] - before[1]
            #expect(downloads == batches.count + 6, "device-to-host copies: \(downloads) for \(batches.count) steps")
            #expect(uploads <= batches.count + 8, "host-to-device copies: \(uploads) for \(batches.count) steps")
        }
    }

    /// `ner-train --device cuda` learns as the CPU run does, and its model serves on either device.
    @Test func trainsOnTheDeviceAndTheModelRunsOnBoth() throws {
        let env = try Self.requireBackend()
        let dir = TempDir("cuda-train")
        defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(160, seed: 1))
        let dev = dir.write("dev.txt", Synthetic.corpus(40, seed: 2))
        var f1: [String: Double] = [:]
        for device in ["cpu", "cuda"] {
            let r = try run("ner-train", ["--output", dir.file("model-\(device)"), "--device", device],
                            stdin: Synthetic.job(train: train, dev: dev, epochs: 10), env: env)
            try #require(r.status == 0, "\(device): \(r.stderr)")
            if device == "cuda" {
                #expect(r.stderr.contains("entity types, on "), "\(r.stderr)")
            }
            f1[device] = try JSON.parse(try #require(r.lines.first))["metrics"]?["dev"]?["f1"]?.doubleValue
        }
        #expect(f1["cpu"] == 1.0 && f1["cuda"] == 1.0, "dev F1: \(f1)")
        let text = "Alice visited Paris .\nthe Acme office is in Rome .\nBob Jones works for Globex in Oslo .\n"
        var outputs: [String] = []
        for device in ["cpu", "cuda"] {
            let r = try run("ner-infer", ["--model", dir.file("model-cuda"), "--device", device], stdin: text, env: env)
            try #require(r.status == 0, "\(device): \(r.stderr)")
            outputs.append(r.stdout)
        }
        // Same entities on both devices; the scores agree to float precision, not bit for bit.
        func entities(_ out: String) throws -> [[String]] {
            try out.split(separator: "\n").map { line in
                try JSON.parse(String(line))["entities"]?.arrayValue?.map { e in
                    "\(e["text"]?.stringValue ?? "") \(e["tag"]?.stringValue ?? "") \(e["start"]?.intValue ?? -1)"
                } ?? []
            }
        }
        let cpuEntities = try entities(outputs[0])
        #expect(cpuEntities == (try entities(outputs[1])))
        #expect(cpuEntities.joined().contains("Globex ORG 20"), "\(cpuEntities)")
    }

    /// `ner-infer --embed` computes sentence vectors on the CPU, so a model loaded on the device gives
    /// the CPU's vectors.
    @Test func embeddingWithTheDeviceGivesTheCPUVectors() throws {
        let env = try Self.requireBackend()
        let dir = TempDir("cuda-embed")
        defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(80, seed: 3))
        let trained = try run("ner-train", ["--output", dir.file("model"), "--quiet"], stdin: Synthetic.job(train: train, dev: nil, epochs: 2))
        try #require(trained.status == 0, "\(trained.stderr)")
        let text = "Alice visited Paris .\nBob Jones works for Globex in Oslo . He met Carol today .\n"
        var outputs: [String] = []
        for device in ["cpu", "cuda"] {
            let r = try run("ner-infer", ["--model", dir.file("model"), "--device", device, "--embed", "--quiet"], stdin: text, env: env)
            try #require(r.status == 0, "\(device): \(r.stderr)")
            outputs.append(r.stdout)
        }
        // Without the token cache (a CPU-only part), the input products may round differently.
        func vectors(_ out: String) throws -> [[Double]] {
            try out.split(separator: "\n").map { try JSON.parse(String($0))["vector"]?.arrayValue?.compactMap { $0.doubleValue } ?? [] }
        }
        let cpu = try vectors(outputs[0]), gpu = try vectors(outputs[1])
        #expect(cpu.count == 2 && gpu.count == 2)
        for (a, b) in zip(cpu, gpu) {
            #expect(a.count == b.count && !a.isEmpty && zip(a, b).allSatisfy { abs($0 - $1) < 1e-5 })
        }
    }

    /// `ner-train --check-device`: every check reported, all within bounds; exit 69 without a device.
    @Test func checkDeviceReportsEveryComparison() throws {
        let env = try Self.requireBackend()
        let r = try run("ner-train", ["--check-device", "--device", "cuda"], env: env)
        #expect(r.status == 0, "\(r.stderr)")
        let checks = try r.lines.map { try JSON.parse($0) }
        #expect(checks.compactMap { $0["check"]?.stringValue }
                == ["gradients", "gradients_without_characters", "decoded_tags", "decoded_scores", "training_updates"])
        #expect(checks.allSatisfy { $0["ok"] == .bool(true) }, "\(r.stdout)")
        let missing = try run("ner-train", ["--check-device"], env: env.merging(["NER_CUDA_DRIVER": "/nonexistent/libcuda.so.1"]) { $1 })
        #expect(missing.status == 69 && missing.stderr.contains("the NVIDIA driver is not installed"), "\(missing.stderr)")
        #expect(try run("ner-train", ["--check-device", "--device", "cpu"]).status == 64)
    }
}
