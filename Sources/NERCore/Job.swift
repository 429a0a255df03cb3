import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The records' schema version (docs/records.md); bump when a field changes meaning.
public let recordSchema = 1

/// What a job asks a scheduler for (docs/records.md).
public struct Resources: Codable, Equatable, Sendable {
    public var gpus: Int = 0
    public var cpus: Int = 2
    public var mem: String = "4G"
    public var time: String = "02:00:00"
    public var partition: String? = nil

    public init() {}

    public static let fieldNames = ["gpus", "cpus", "mem", "time", "partition"]

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Resources()
        gpus = try c.decodeIfPresent(Int.self, forKey: .gpus) ?? d.gpus
        cpus = try c.decodeIfPresent(Int.self, forKey: .cpus) ?? d.cpus
        mem = try c.decodeIfPresent(String.self, forKey: .mem) ?? d.mem
        time = try c.decodeIfPresent(String.self, forKey: .time) ?? d.time
        partition = try c.decodeIfPresent(String.self, forKey: .partition)
    }
}

/// A training request's settings (docs/records.md). Every field has a default, so a job needs
/// only `train` (and usually `dev`).
public struct JobSpec: Codable, Equatable, Sendable {
    public var train: String = ""
    public var dev: String? = nil
    public var test: String? = nil
    public var epochs: Int = 30
    /// Unset: chosen from the training set's size (`resolveDefaults`).
    public var batchSize: Int? = nil
    /// Unset: chosen from the training set's size.
    public var learningRate: Double? = nil
    public var optimizer: String = "adam"
    public var dropout: Double = 0.5
    public var hiddenSize: Int = 200
    public var wordDim: Int = 100
    public var charDim: Int = 30
    /// `none`, or a path to word vectors in word2vec/GloVe text format (plain or .gz).
    public var embeddings: String = "none"
    public var seed: Int = 1
    public var device: String = "cpu"
    /// 0 means every core.
    public var threads: Int = 0
    /// Unset: chosen from the training set's size.
    public var patience: Int? = nil
    /// Warm start: a model (anything `--model` takes) whose weights training starts from.
    public var initFrom: String? = nil
    /// With `initFrom`: epochs that train only the output layer and the CRF before the rest.
    public var freezeEpochs: Int = 0
    /// Weight averaging: a moving average of the weights at each epoch's end, over about this many
    /// epochs, scored on dev beside the weights themselves (0: off). Unset: from the training set's size.
    public var weightAverage: Int? = nil
    /// Replay: a CoNLL file (usually the parent's training data) of which `replaySentences` sentences,
    /// drawn afresh each epoch, are trained on beside `train`, so that fine-tuning on a little data
    /// does not forget what the parent knew (docs/engine.md, "Warm start").
    public var replay: String? = nil
    /// Unset: `replayRatio` times the training set's size, at most all of `replay`.
    public var replaySentences: Int? = nil
    public var resources: Resources = Resources()

    /// Replayed sentences per training sentence when `replay_sentences` is unset: on Wikigold from
    /// a CoNLL-2003 model, 1 scored best on dev against 0.5 and 2 (docs/engine.md).
    public static let replayRatio = 1

    /// The settings that depend on the training set's size. On small data, small batches give more
    /// updates per epoch, a weight average steadies dev F1 from epoch to epoch, and a longer
    /// patience keeps one noisy epoch from ending the run (docs/engine.md, "Small data").
    public struct Settings: Sendable, Equatable {
        public var batchSize: Int
        public var learningRate: Double
        public var weightAverage: Int
        public var patience: Int
        /// Replayed sentences per epoch (0 without `replay`).
        public var replaySentences = 0
    }
    /// Training sets of fewer sentences get `smallDataDefaults`.
    public static let smallData = 5_000
    public static let largeDataDefaults = Settings(batchSize: 32, learningRate: 0.001, weightAverage: 0, patience: 5)
    public static let smallDataDefaults = Settings(batchSize: 8, learningRate: 0.002, weightAverage: 5, patience: 15)

    /// What this spec trains with on `trainingSentences` sentences, with `replayAvailable` in its
    /// replay file: its own settings where given, else the defaults for that size. A warm start gets
    /// them too: a lower learning rate measured worse.
    public func settings(trainingSentences: Int, replayAvailable: Int = 0) -> Settings {
        let d = trainingSentences < JobSpec.smallData ? JobSpec.smallDataDefaults : JobSpec.largeDataDefaults
        var s = Settings(batchSize: batchSize ?? d.batchSize,
                         learningRate: learningRate ?? d.learningRate,
                         weightAverage: weightAverage ?? d.weightAverage, patience: patience ?? d.patience)
        if replayAvailable > 0 {
            s.replaySentences = min(replaySentences ?? JobSpec.replayRatio * trainingSentences, replayAvailable)
        }
        return s
    }

    public init(train: String = "") { self.train = train }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case train, dev, test, epochs, optimizer, dropout, embeddings, seed, device, threads, patience, resources
        case batchSize = "batch_size", learningRate = "learning_rate", hiddenSize = "hidden_size"
        case wordDim = "word_dim", charDim = "char_dim", initFrom = "init_from", freezeEpochs = "freeze_epochs"
        case weightAverage = "weight_average", replay, replaySentences = "replay_sentences"
    }

    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = JobSpec()
        train = try c.decodeIfPresent(String.self, forKey: .train) ?? d.train
        dev = try c.decodeIfPresent(String.self, forKey: .dev)
        test = try c.decodeIfPresent(String.self, forKey: .test)
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? d.epochs
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize)
        initFrom = try c.decodeIfPresent(String.self, forKey: .initFrom)
        freezeEpochs = try c.decodeIfPresent(Int.self, forKey: .freezeEpochs) ?? d.freezeEpochs
        weightAverage = try c.decodeIfPresent(Int.self, forKey: .weightAverage)
        replay = try c.decodeIfPresent(String.self, forKey: .replay)
        replaySentences = try c.decodeIfPresent(Int.self, forKey: .replaySentences)
        learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate)
        optimizer = try c.decodeIfPresent(String.self, forKey: .optimizer) ?? d.optimizer
        dropout = try c.decodeIfPresent(Double.self, forKey: .dropout) ?? d.dropout
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        wordDim = try c.decodeIfPresent(Int.self, forKey: .wordDim) ?? d.wordDim
        charDim = try c.decodeIfPresent(Int.self, forKey: .charDim) ?? d.charDim
        embeddings = try c.decodeIfPresent(String.self, forKey: .embeddings) ?? d.embeddings
        seed = try c.decodeIfPresent(Int.self, forKey: .seed) ?? d.seed
        device = try c.decodeIfPresent(String.self, forKey: .device) ?? d.device
        threads = try c.decodeIfPresent(Int.self, forKey: .threads) ?? d.threads
        patience = try c.decodeIfPresent(Int.self, forKey: .patience)
        resources = try c.decodeIfPresent(Resources.self, forKey: .resources) ?? d.resources
    }

    /// Makes the data paths absolute: relative ones against `base` (the folder of the job file
    /// they were written in), else against the working directory.
    public mutating func resolvePaths(relativeTo base: String? = nil) {
        if !train.isEmpty { train = absolute(train, relativeTo: base) }
        dev = dev.map { absolute($0, relativeTo: base) }
        test = test.map { absolute($0, relativeTo: base) }
        if embeddings != "none" { embeddings = absolute(embeddings, relativeTo: base) }
        replay = replay.map { absolute($0, relativeTo: base) }
        // A model folder or tarball given by a relative path; a registry name stays as it is.
        if let initFrom, fileExists(absolute(initFrom, relativeTo: base)) { self.initFrom = absolute(initFrom, relativeTo: base) }
    }

    /// Checks ranges and that the data files exist. Missing files are exit 66, bad values 64
    /// (or 65 when `context` names an input line, since then the value came from data).
    public func validate(context: String? = nil) throws {
        func bad(_ m: String) -> ToolError {
            if let context { return ToolError.data("\(context): \(m)") }
            return ToolError.usage(m)
        }
        if train.isEmpty { throw bad("spec.train is required (a CoNLL file)") }
        let files = [("train", train), ("dev", dev), ("test", test), ("embeddings", embeddings == "none" ? nil : embeddings),
                     ("replay", replay)]
        for (field, path) in files {
            guard let path else { continue }
            // A NUL ends the path for open(2), so the file read would not be the one recorded.
            if path.utf8.contains(0) { throw bad("\(field) path contains a NUL byte") }
            if let problem = JobSpec.inputFileProblem(path) {
                throw ToolError.noInput("\(context.map { $0 + ": " } ?? "")\(field) file \(clipped(path)): \(problem)")
            }
        }
        if epochs < 1 || epochs > 10_000 { throw bad("epochs must be between 1 and 10000, got \(epochs)") }
        if let batchSize, batchSize < 1 || batchSize > 65_536 { throw bad("batch_size must be between 1 and 65536, got \(batchSize)") }
        if let learningRate, !(learningRate > 0 && learningRate <= 10) { throw bad("learning_rate must be in (0, 10], got \(learningRate)") }
        if !["adam", "sgd"].contains(optimizer) { throw bad("optimizer must be adam or sgd, got \(clipped(optimizer))") }
        if !(dropout >= 0 && dropout < 1) { throw bad("dropout must be in [0, 1), got \(dropout)") }
        if hiddenSize < 1 || hiddenSize > 4096 { throw bad("hidden_size must be between 1 and 4096, got \(hiddenSize)") }
        if wordDim < 1 || wordDim > 4096 { throw bad("word_dim must be between 1 and 4096, got \(wordDim)") }
        if charDim < 0 || charDim > 1024 { throw bad("char_dim must be between 0 and 1024, got \(charDim)") }
        if !["cpu", "cuda"].contains(device) { throw bad("device must be cpu or cuda, got \(clipped(device))") }
        if threads < 0 || threads > 1024 { throw bad("threads must be between 0 and 1024, got \(threads)") }
        if let patience, patience < 0 || patience > 10_000 { throw bad("patience must be between 0 and 10000, got \(patience)") }
        if let initFrom, initFrom.isEmpty || initFrom.utf8.contains(0) { throw bad("init_from must name a model") }
        if freezeEpochs < 0 || freezeEpochs > epochs { throw bad("freeze_epochs must be between 0 and epochs (\(epochs)), got \(freezeEpochs)") }
        if let weightAverage, weightAverage < 0 || weightAverage > 1000 { throw bad("weight_average must be between 0 and 1000 epochs, got \(weightAverage)") }
        if freezeEpochs > 0 && initFrom == nil { throw bad("freeze_epochs needs init_from (a model to start from)") }
        if let replaySentences {
            if replay == nil { throw bad("replay_sentences needs replay (a CoNLL file to draw them from)") }
            if replaySentences < 1 || replaySentences > 10_000_000 { throw bad("replay_sentences must be between 1 and 10000000, got \(replaySentences)") }
        }
        if resources.gpus < 0 || resources.cpus < 1 { throw bad("resources: gpus must be >= 0 and cpus >= 1") }
        do { _ = try TimeLimit.seconds(resources.time) } catch let e as ToolError { throw bad("resources.\(e.message)") }
    }

    /// Why `path` cannot be training data, or nil: only a regular file (or a link to one) will do,
    /// since a device such as /dev/zero would be read forever and a folder fails only later.
    static func inputFileProblem(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return errno == ENOENT ? "no such file" : errnoString() }
        return st.st_mode & S_IFMT == S_IFREG ? nil : "not a regular file"
    }

    /// The first field of `fields` that a spec does not have (`resources` checked too), as an error
    /// message naming it under `prefix` and the known field it is likely a misspelling of.
    public static func unknownField(in fields: [String: JSON], prefix: String = "spec.") -> String? {
        for k in fields.keys.sorted() where !fieldNames.contains(k) {
            return unknownFieldMessage(k, among: fieldNames, prefix: prefix)
        }
        if let r = fields["resources"]?.objectValue {
            for k in r.keys.sorted() where !Resources.fieldNames.contains(k) {
                return unknownFieldMessage(k, among: Resources.fieldNames, prefix: prefix + "resources.")
            }
        }
        return nil
    }
}

/// A queued training request (docs/records.md). The record that flows through the pipeline is a JSON
/// object holding these fields plus whatever later stages add.
public struct Job: Codable, Equatable, Sendable {
    public var schema: Int = recordSchema
    public var jobId: String
    public var name: String
    public var createdAt: String
    public var attempt: Int = 1
    /// Higher runs first; FIFO by creation time within a priority.
    public var priority: Int = 0
    public var spec: JobSpec

    enum CodingKeys: String, CodingKey {
        case schema, name, attempt, priority, spec
        case jobId = "job_id", createdAt = "created_at"
    }

    public init(name: String, spec: JobSpec, priority: Int = 0, createdAt: Date = Date()) {
        self.name = name
        self.jobId = Job.makeId(name: name)
        self.createdAt = Timestamp.format(createdAt)
        self.priority = priority
        self.spec = spec
    }

    /// `NAME-UUID`, lower-case (docs/records.md).
    public static func makeId(name: String) -> String {
        "\(name)-\(UUID().uuidString.lowercased())"
    }

    /// Names become file names and id prefixes: letters, digits, `.`, `_`, `-`.
    public static func validateName(_ name: String) throws {
        let ok = !name.isEmpty && name.count <= 64 && name.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
        } && !name.hasPrefix(".") && !name.hasPrefix("-")
        if !ok {
            throw ToolError.usage("name '\(clipped(name))' must be 1-64 letters, digits, '.', '_' or '-', not starting with '.' or '-'")
        }
    }
}

/// "unknown field 'spec.epoch' (did you mean 'spec.epochs'?)": the suggestion is the known name at
/// the fewest edits, when that is at most a third of the name's length (at least one edit).
public func unknownFieldMessage(_ field: String, among known: [String], prefix: String = "") -> String {
    let message = "unknown field '\(prefix)\(clipped(field))'"
    guard field.count <= 100 else { return message }
    let best = known.map { ($0, editDistance(field, $0)) }.min { $0.1 < $1.1 }
    guard let (name, d) = best, d <= max(1, field.count / 3) else { return message }
    return message + " (did you mean '\(prefix)\(name)'?)"
}

/// Levenshtein distance over characters.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in a.indices {
        var diagonal = row[0]
        row[0] = i + 1
        for j in b.indices {
            let above = row[j + 1]
            row[j + 1] = min(above + 1, row[j] + 1, diagonal + (a[i] == b[j] ? 0 : 1))
            diagonal = above
        }
    }
    return row[b.count]
}
