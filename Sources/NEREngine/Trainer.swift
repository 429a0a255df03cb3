import Foundation
import NERCore
import NERText
#if canImport(Glibc)
import Glibc
#endif

/// What one training run needs beyond the job spec.
public struct TrainingOptions: Sendable {
    public var spec: JobSpec
    public var name: String
    /// Used for a fresh run; a resumed run keeps the id stored in its checkpoint.
    public var modelId: String
    public var outputDir: String
    public var resume: Bool
    /// Progress on stderr (a bar on a TTY, one line per epoch otherwise).
    public var progress: Bool
    /// The folder of the model `spec.initFrom` names (a warm start), found by the caller.
    public var initFrom: String?

    public init(spec: JobSpec, name: String, modelId: String, outputDir: String, resume: Bool = false, progress: Bool = true) {
        self.spec = spec
        self.name = name
        self.modelId = modelId
        self.outputDir = outputDir
        self.resume = resume
        self.progress = progress
    }
}

public struct TrainingOutcome: Sendable {
    public var modelId: String
    public var modelDir: String
    /// `{"dev": Scores, "test": Scores?, "epochs_run", "best_epoch", "train_seconds", "tokens_per_second"}`.
    public var metrics: JSON
    /// What a warm start carried over from its parent (`WarmStart.Summary.json`).
    public var warmStart: JSON?
    /// The batch size, learning rate and weight average it trained with.
    public var settings: JobSpec.Settings
}

/// The training loop: Adam/SGD on length-bucketed batches split across threads, dropout, gradient
/// clipping, a decaying learning rate, early stopping on dev F1, a checkpoint every epoch.
public enum Trainer {
    static let charFilters = 50
    static let charWindow = 3
    static let maxWordChars = 25
    static let clipNorm: Float = 5
    static let lrDecay: Float = 0.05

    /// Checkpoint state besides the tensors.
    struct State: Codable {
        var formatVersion = 1
        var modelId: String
        var epoch: Int
        var step: Int
        var bestF1: Double
        var bestEpoch: Int
        var badEpochs: Int
        var trainSeconds: Double
        var config: ModelConfig
        var seed: Int
        var threads: Int
        /// Epoch-end weights in the weight average so far (absent: none).
        var averaged: Int?

        enum CodingKeys: String, CodingKey {
            case formatVersion = "format_version", modelId = "model_id", epoch, step, bestF1 = "best_f1"
            case bestEpoch = "best_epoch", badEpochs = "bad_epochs", trainSeconds = "train_seconds", config, seed, threads
            case averaged
        }
    }

    /// Trains into a hidden sibling of the model folder, `.NAME.partial`, and renames it into place
    /// at the end, so a run that fails half-way (a full disk) never leaves a folder that looks like a
    /// model. A failed run removes its partial folder, except one that diverged: its last good
    /// checkpoint stays there for --resume, which continues an interrupted run from its partial
    /// folder, else a finished one from a hard-linked copy (every file is replaced by rename, never
    /// rewritten, so the copy shares nothing that changes).
    public static func run(_ o: TrainingOptions) throws -> TrainingOutcome {
        let final = o.outputDir
        let partial = (final as NSString).deletingLastPathComponent + "/." + (final as NSString).lastPathComponent + ".partial"
        if !(o.resume && isDirectory(partial)) {
            try? FileManager.default.removeItem(atPath: partial)
            try makeDirectory(partial)
            if o.resume && isDirectory(final) { try linkTree(final, into: partial) }
        }
        var work = o
        work.outputDir = partial
        let outcome: TrainingOutcome
        do {
            outcome = try train(work)
        } catch let d as Diverged {
            throw ToolError.failure(d.message)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        try replaceFolder(final, with: partial)
        return TrainingOutcome(modelId: outcome.modelId, modelDir: final, metrics: outcome.metrics, warmStart: outcome.warmStart,
                               settings: outcome.settings)
    }

    /// Training stopped on a loss that is not finite; the partial folder keeps its checkpoint.
    struct Diverged: Error {
        var message: String
    }

    /// Hard-links every file under `source` into the same place under `dest`.
    static func linkTree(_ source: String, into dest: String) throws {
        let fm = FileManager.default
        guard let items = fm.enumerator(atPath: source) else { return }
        for case let item as String in items {
            let from = source + "/" + item, to = dest + "/" + item
            if isDirectory(from) {
                try makeDirectory(to)
            } else if link(from, to) != 0 {
                throw ToolError.failure("cannot link \(from) to \(to): \(errnoString())")
            }
        }
    }

    /// Puts `partial` where `final` is: a plain rename, or, over an existing folder, the old one
    /// moved aside first and removed after. Both renames are made durable.
    static func replaceFolder(_ final: String, with partial: String) throws {
        var old: String? = nil
        if fileExists(final) {
            let aside = partial + ".old"
            try? FileManager.default.removeItem(atPath: aside)
            try AtomicFile.move(final, to: aside)
            old = aside
        }
        try AtomicFile.move(partial, to: final)
        if let old { try? FileManager.default.removeItem(atPath: old) }
    }

    static func train(_ o: TrainingOptions) throws -> TrainingOutcome {
        let spec = o.spec
        let device = try ComputeDevice.select(spec.device)
        useSingleThreadedBLAS()
        let threads = spec.threads > 0 ? spec.threads : ProcessInfo.processInfo.activeProcessorCount
        if spec.freezeEpochs > 0 && device == .cuda {
            throw ToolError.usage("freeze_epochs runs on the CPU only; train with device cpu or without freeze_epochs")
        }
        let parent = try o.initFrom.map { try WarmStart.Parent(directory: $0) }
        let data = try Dataset.build(spec: spec, maxWordChars: maxWordChars, parent: parent)
        let settings = spec.settings(trainingSentences: data.train.count, replayAvailable: data.replay.count)
        // Tokens seen per epoch: the training set and, on average, the replayed sentences.
        let replayTokens = data.replay.reduce(0) { $0 + $1.count }
        let epochTokens = data.trainTokens + (data.replay.isEmpty ? 0 : replayTokens * settings.replaySentences / data.replay.count)
        let pool = data.replay.isEmpty ? data.train : data.train + data.replay
        let config = parent.map {
            WarmStart.config(of: $0, charVocab: data.chars.count + 1, wordVocab: data.wordCount, tagCount: data.tagSet.count)
        } ?? ModelConfig(wordDim: data.wordDim, charDim: spec.charDim, charFilters: charFilters,
                         charWindow: charWindow, maxWordChars: maxWordChars, hidden: max(1, spec.hiddenSize / 2),
                         charVocab: data.chars.count + 1, wordVocab: data.wordCount, tagCount: data.tagSet.count)
        let params = Parameters(config: config)
        params.initialise(seed: spec.seed)
        data.loadPretrained(into: params)
        let warmStart = parent.map { WarmStart.copy(from: $0, into: params, tagSet: data.tagSet) }
        let opt = Optimizer(adam: spec.optimizer == "adam", denseCount: params.layout.total,
                            wordCount: config.wordVocab, wordDim: config.wordDim)
        let out = o.outputDir
        try makeDirectory(out)
        let ckptDir = out + "/checkpoint"
        var state = State(modelId: o.modelId, epoch: 0, step: 0, bestF1: -1, bestEpoch: 0, badEpochs: 0,
                          trainSeconds: 0, config: config, seed: spec.seed, threads: threads)
        var history: [JSON] = []
        // Weight averaging: the moving average of the epoch-end weights, scored on dev beside them;
        // whichever scores best is the model kept. The checkpoint keeps it, so a resumed run goes on
        // exactly as an uninterrupted one.
        let average = settings.weightAverage > 0 && data.dev != nil ? Parameters(config: config) : nil
        var averaged = 0
        if o.resume && fileExists(ckptDir + "/state.json") {
            state = try Checkpoint.read(ckptDir, params: params, optimizer: opt, expected: state)
            history = Checkpoint.readHistory(out + "/history.ndjson", upTo: state.epoch)
            if let average, let n = state.averaged, n > 0 {
                try Checkpoint.readAverage(ckptDir, into: average)
                averaged = n
            }
        }
        let tagger = Tagger(params: params, tagSet: data.tagSet, encoder: data.encoder)
        let manifest = ModelFile.Manifest(id: state.modelId, name: o.name, tagSet: data.tagSet, config: config, chars: data.chars)
        let bar = Progress(enabled: o.progress, epochs: spec.epochs)
        if let w = warmStart {
            bar.note("starting from \(w.parentId): types \(w.carriedTypes.joined(separator: ", ")) carried"
                     + (w.newTypes.isEmpty ? "" : ", \(w.newTypes.joined(separator: ", ")) new")
                     + (w.droppedTypes.isEmpty ? "" : ", \(w.droppedTypes.joined(separator: ", ")) dropped")
                     + "; \(w.newWords) new words")
        }
        bar.note("training \(o.name) into \(out): \(data.train.count) sentences, \(data.trainTokens) tokens, "
                 + "\(config.wordVocab) words, \(data.tagSet.types.count) entity types, "
                 + (device == .cuda ? "on \(try CUDARuntime.shared().deviceName)" : "\(threads) threads"))
        if let replay = spec.replay {
            bar.note("replaying \(settings.replaySentences) of the \(data.replay.count) sentences of \(replay) each epoch"
                     + (data.replayDroppedTypes.isEmpty ? "" : "; its \(data.replayDroppedTypes.joined(separator: ", ")) read as O"))
        }

        let backend: TrainingBackend = device == .cuda
            ? try CUDATrainingBackend(params: params, optimizer: opt, tagSet: data.tagSet, dropout: Float(spec.dropout), seed: spec.seed)
            : CPUTrainingBackend(params: params, optimizer: opt, tagSet: data.tagSet, threads: threads,
                                 dropout: Float(spec.dropout), seed: spec.seed)
        tagger.gpu = backend.decoder
        let averageTagger = average.map { Tagger(params: $0, tagSet: data.tagSet, encoder: data.encoder) }


        while state.epoch < spec.epochs && (spec.dev == nil || settings.patience == 0 || state.badEpochs < settings.patience) {
            let epoch = state.epoch
            let started = Date()
            var order = Array(data.train.indices)
            if settings.replaySentences > 0 {
                // A fresh draw each epoch (a partial Fisher-Yates shuffle), the same on --resume.
                var draw = SeededRandom(seed: spec.seed, stream: 3, UInt64(epoch))
                var replayed = Array(data.replay.indices)
                for i in 0..<settings.replaySentences {
                    replayed.swapAt(i, i + Int(draw.next() % UInt64(replayed.count - i)))
                }
                order += replayed[..<settings.replaySentences].map { data.train.count + $0 }
            }
            var shuffle = SeededRandom(seed: spec.seed, stream: 1, UInt64(epoch))
            order.shuffle(using: &shuffle)
            var batches = Tagger.batches(lengths: order.map { pool[$0].count }, size: settings.batchSize)
                .map { $0.map { order[$0] } }
            batches.shuffle(using: &shuffle)
            let lr = Float(settings.learningRate) / (1 + lrDecay * Float(epoch))
            backend.outputLayerOnly = epoch < spec.freezeEpochs
            var lossSum = 0.0, tokens = 0
            for (bi, batch) in batches.enumerated() {
                var unk = SeededRandom(seed: spec.seed, stream: 2, UInt64(epoch), UInt64(bi))
                let sentences: [EncodedSentence] = batch.map { i in
                    var s = pool[i]
                    for t in 0..<s.count where data.singletons[Int(s.words[t])] && unk.unit() < 0.5 { s.words[t] = 0 }
                    return s
                }
                let (batchLoss, norm) = try backend.step(sentences, lr: lr, randomStream: [UInt64(epoch), UInt64(bi)])
                guard batchLoss.isFinite && norm.isFinite else {
                    throw Diverged(message: "training diverged at epoch \(epoch + 1), batch \(bi + 1) (loss \(batchLoss)); "
                        + "the last good checkpoint is in \(ckptDir)")
                }
                lossSum += batchLoss
                tokens += sentences.count * sentences[0].count
                bar.batch(epoch: epoch, done: bi + 1, of: batches.count, loss: lossSum / Double(max(1, tokens)),
                          tokensPerSecond: Double(tokens) / max(Date().timeIntervalSince(started), 1e-9))
            }
            try backend.synchronize()
            let seconds = Date().timeIntervalSince(started)
            state.trainSeconds += seconds
            state.step = opt.step
            state.epoch = epoch + 1
            var devF1: Double? = nil
            var averageF1: Double? = nil
            if let dev = data.dev {
                let scores = evaluate(tagger, dev, threads: threads)
                devF1 = scores.f1
                if let average, let averageTagger {
                    average.blend(params, keeping: averaged == 0 ? 0 : 1 - 1 / Float(min(averaged + 1, settings.weightAverage)))
                    averaged += 1
                    averageF1 = evaluate(averageTagger, dev, threads: threads).f1
                }
                let best = max(scores.f1, averageF1 ?? -1)
                if best > state.bestF1 {
                    state.bestF1 = best
                    state.bestEpoch = epoch + 1
                    state.badEpochs = 0
                    let kept = (averageF1 ?? -1) > scores.f1 ? average! : params
                    try ModelFile.write(manifest, params: kept, words: data.words, to: out)
                } else {
                    state.badEpochs += 1
                }
            } else {
                state.bestEpoch = epoch + 1
                try ModelFile.write(manifest, params: params, words: data.words, to: out)
            }
            var line: JSON = ["epoch": .int(Int64(epoch + 1)), "loss": .double(lossSum / Double(max(1, tokens))),
                              "seconds": .double(seconds), "tokens_per_second": .double(Double(epochTokens) / seconds),
                              "learning_rate": .double(Double(lr)), "time": .string(Timestamp.now())]
            if let devF1 { line["dev_f1"] = .double(devF1) }
            if let averageF1 { line["dev_f1_average"] = .double(averageF1) }
            history.append(line)
            try AtomicFile.write(history.map { $0.compactString + "\n" }.joined(), to: out + "/history.ndjson")
            state.averaged = average == nil ? nil : averaged
            try Checkpoint.write(ckptDir, state: state, params: params, optimizer: opt, average: average)
            bar.epochDone(epoch: epoch, loss: lossSum / Double(max(1, tokens)), devF1: devF1, bestF1: state.bestF1,
                          bestEpoch: state.bestEpoch, seconds: seconds, tokensPerSecond: Double(epochTokens) / seconds,
                          meanEpochSeconds: state.trainSeconds / Double(state.epoch))
        }

        // The reported metrics are those of the kept (best) model, read back as users will load it.
        let (_, best) = try ModelFile.read(out)
        var metrics: JSON = [
            "epochs_run": .int(Int64(state.epoch)), "best_epoch": .int(Int64(state.bestEpoch)),
            "train_seconds": .double((state.trainSeconds * 10).rounded() / 10),
            "tokens_per_second": .double((Double(epochTokens * state.epoch) / max(state.trainSeconds, 1e-9)).rounded()),
        ]
        if let dev = data.dev { metrics["dev"] = evaluate(best, dev, threads: threads).json }
        if let test = data.test { metrics["test"] = evaluate(best, test, threads: threads).json }
        try AtomicFile.write(metrics.prettyEncoded(), to: out + "/metrics.json")
        return TrainingOutcome(modelId: state.modelId, modelDir: out, metrics: metrics, warmStart: warmStart?.json,
                               settings: settings)
    }

    static func evaluate(_ tagger: Tagger, _ sentences: [Sentence], threads: Int) -> Scores {
        let encoded = sentences.map { tagger.encoder.encode($0.tokens) }
        let (ids, scores) = tagger.decode(encoded, threads: threads)
        let names = tagger.tagSet.tags
        var predicted = ids.map { Tags.fromBIOES($0.map { names[Int($0)] }) }
        DocumentConsistency.harmonize(sentences, predicted: &predicted, scores: scores)
        return Evaluation.score(gold: sentences.map(\.tags), predicted: predicted)
    }
}

/// Progress on stderr: a bar redrawn in place on a terminal, one plain line per epoch otherwise.
final class Progress {
    let enabled: Bool
    let tty: Bool
    let epochs: Int
    private var lastDraw = Date.distantPast
    private var meanEpoch: Double?
    private var lastF1: String = "-"

    init(enabled: Bool, epochs: Int) {
        self.enabled = enabled
        tty = isatty(2) != 0
        self.epochs = epochs
    }

    private func emit(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

    func note(_ s: String) { if enabled { emit("ner-train: " + s + "\n") } }

    private static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
    }

    func batch(epoch: Int, done: Int, of total: Int, loss: Double, tokensPerSecond: Double) {
        guard enabled && tty else { return }
        let now = Date()
        if now.timeIntervalSince(lastDraw) < 0.2 && done < total { return }
        lastDraw = now
        let frac = Double(done) / Double(total)
        let width = 20, filled = Int(frac * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        var left = ""
        if let m = meanEpoch { left = " eta \(Progress.duration(m * (Double(epochs - epoch) - frac)))" }
        emit("\r\u{1B}[Kepoch \(epoch + 1)/\(epochs) [\(bar)] \(Int(frac * 100))% loss \(String(format: "%.4f", loss)) "
             + "dev F1 \(lastF1) \(Int(tokensPerSecond)) tok/s\(left)")
    }

    func epochDone(epoch: Int, loss: Double, devF1: Double?, bestF1: Double, bestEpoch: Int, seconds: Double,
                   tokensPerSecond: Double, meanEpochSeconds: Double) {
        meanEpoch = meanEpochSeconds
        guard enabled else { return }
        if let devF1 { lastF1 = String(format: "%.2f", devF1 * 100) }
        let best = bestF1 >= 0 ? " (best \(String(format: "%.2f", bestF1 * 100)) at epoch \(bestEpoch))" : ""
        let line = "ner-train: epoch \(epoch + 1)/\(epochs) loss \(String(format: "%.4f", loss)) dev F1 \(lastF1)\(best) "
            + "\(Int(tokensPerSecond)) tok/s \(String(format: "%.1f", seconds))s, at most \(Progress.duration(meanEpochSeconds * Double(epochs - epoch - 1))) left"
        emit(tty ? "\r\u{1B}[K" + line + "\n" : line + "\n")
    }
}
