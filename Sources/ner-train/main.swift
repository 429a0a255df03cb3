import ArgumentParser
import Foundation
import NERCLI
import NERCore
import NEREngine
import NERModelStore
#if canImport(Glibc)
import Glibc
#endif

struct Tool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner-train",
        abstract: "Train a named-entity tagger (BiLSTM-CNN-CRF on OpenBLAS) from CoNLL data.",
        discussion: """
        Reads job records (NDJSON, one per line) from standard input or from --job FILE, trains one model per record that has a "spec", and prints the record again with "model_id", "model_dir", "metrics" and "status": "trained" added. Records without a "spec" pass through unchanged, as do fields ner-train does not know outside the spec; an unknown spec field (a misspelling such as "epoch") is exit 65 naming it. The data files must be regular files; relative paths in a --job FILE are read against that file's folder, those on stdin and in flags against the working directory. With no record on the input, the flags alone describe the job (--train is then required). Flags override the record's spec fields.

        DATA
        CoNLL column files: token in the first column, tag in the last (IOB1, IOB2/BIO or BIOES); blank lines end sentences; -DOCSTART- lines are skipped. --embeddings takes word vectors in word2vec/GloVe text format, plain or .gz; their dimension sets the word-vector size (spec.word_dim applies without them). spec.hidden_size is the BiLSTM's total width (half per direction).

        WRITES (in the model folder, default $NER_HOME/models/MODEL_ID)
          model.json, weights.bin, vocab.bin: the best epoch's model (by dev F1), for ner-infer and ner-serve
          metrics.json: dev (and test) precision, recall and F1, overall and per type
          history.ndjson: one line per epoch with loss, dev F1, seconds, tokens/s
          checkpoint/: the last epoch's full state, for --resume
        The folder is built as a hidden sibling, .NAME.partial, and renamed into place when training ends; a run that fails removes it, except one that diverged, whose checkpoint stays there for --resume.
        Progress goes to stderr: a bar on a terminal, one line per epoch otherwise.

        TRAINING
        Adam (or SGD) with gradient clipping at norm 5, dropout, a learning rate decaying as lr / (1 + 0.05 * epoch), early stopping after --patience epochs without a better dev F1 (0 turns it off), and a checkpoint after every epoch. On the CPU, results are identical for the same data, seed and thread count. A loss that becomes NaN or infinite stops training with exit 1 and keeps the last good checkpoint. --resume continues from the checkpoint in --output; --epochs is the total, not additional, and the model id stays the same.

        WARM START
        --init-from MODEL (spec.init_from) starts from a trained model's weights: the character model and BiLSTM carry over, words and tags the parent knows keep their rows, new entity types start fresh and types the data lacks are dropped; the network keeps the parent's shape. --replay FILE (spec.replay) also trains on sentences drawn each epoch from FILE, usually the parent's training data, so that little data does not wash out what the parent knew. --freeze-epochs N trains only the output layer and CRF first. The record gets "warm_start" (carried, new and dropped types) and "parent_id". docs/records.md has the details.

        GPU
        --device cuda (or spec.device "cuda") trains on the first NVIDIA GPU it can see (CUDA_VISIBLE_DEVICES, which Slurm sets for --gres=gpu): the whole batch, its gradients and the optimizer stay on the device, with one copy each way per batch. The driver, cuBLAS and NVRTC are found at run time, and the kernels are compiled for the GPU at start. Dropout masks come from a different generator than on the CPU, so GPU and CPU runs differ bit for bit. Gradients are summed in a fixed order, never with atomic adds, so the sums come out the same way in every run. The model file is the same either way: a model trained on a GPU serves on CPUs and back. --check-device tests a node before a long run.

        EXAMPLES
          ner-train --train data/train.txt --dev data/dev.txt --embeddings glove.6B.50d.txt.gz
          ner-train --job job.json | ner-pack | ner-register
          ner-train --job job.json --output models/run1 --resume --epochs 40
          ner-train --check-device --device cuda

        \(exitCodeHelp)
        """,
        version: Toolchain.version)

    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: ArgumentHelp("Read job records from FILE instead of standard input.", valueName: "FILE"))
    var job: String?

    @Option(name: .long, help: ArgumentHelp("Training data (CoNLL). Overrides spec.train.", valueName: "FILE"))
    var train: String?

    @Option(name: .long, help: ArgumentHelp("Development data for model selection and early stopping. Overrides spec.dev.", valueName: "FILE"))
    var dev: String?

    @Option(name: .long, help: ArgumentHelp("Test data, scored once with the best model. Overrides spec.test.", valueName: "FILE"))
    var test: String?

    @Option(name: .long, help: ArgumentHelp("Total number of epochs (spec default: \(JobSpec().epochs)).", valueName: "N"))
    var epochs: Int?

    @Option(name: .long, help: ArgumentHelp("Pretrained word vectors (word2vec/GloVe text, plain or .gz), or none (default: \(JobSpec().embeddings)).", valueName: "FILE"))
    var embeddings: String?

    @Option(name: .long, help: ArgumentHelp("Random seed (default: \(JobSpec().seed)).", valueName: "N"))
    var seed: Int?

    @Option(name: .long, help: ArgumentHelp("Worker threads; 0 means every core (default: \(JobSpec().threads)).", valueName: "N"))
    var threads: Int?

    @Option(name: .long, help: ArgumentHelp("Sentences per batch (default: \(JobSpec.largeDataDefaults.batchSize); \(JobSpec.smallDataDefaults.batchSize) under \(JobSpec.smallData) training sentences).", valueName: "N"))
    var batchSize: Int?

    @Option(name: .long, help: ArgumentHelp("Initial learning rate (default: \(JobSpec.largeDataDefaults.learningRate); \(JobSpec.smallDataDefaults.learningRate) under \(JobSpec.smallData) training sentences).", valueName: "RATE"))
    var learningRate: Double?

    @Option(name: .long, help: ArgumentHelp("Epochs without a better dev F1 before stopping; 0 never stops early (default: \(JobSpec.largeDataDefaults.patience); \(JobSpec.smallDataDefaults.patience) under \(JobSpec.smallData) training sentences).", valueName: "N"))
    var patience: Int?

    @Option(name: .long, help: ArgumentHelp("""
        Start from this model's weights (a warm start): NAME, NAME@ALIAS, NAME:VERSION, a model id, \
        a model folder or tarball. Overrides spec.init_from.
        """, valueName: "MODEL"))
    var initFrom: String?

    @Option(name: .long, help: ArgumentHelp("With --init-from: epochs that train only the output layer and the CRF (default: 0).", valueName: "N"))
    var freezeEpochs: Int?

    @Option(name: .long, help: ArgumentHelp("""
        Train on sentences of this CoNLL file too, usually the --init-from model's own training \
        data, drawn afresh each epoch, so a fine-tune on little data keeps what the parent knew. \
        Entity types the training data lacks are read as O. Overrides spec.replay.
        """, valueName: "FILE"))
    var replay: String?

    @Option(name: .long, help: ArgumentHelp("With --replay: sentences drawn from it each epoch (default: \(JobSpec.replayRatio) per training sentence, at most all of it).", valueName: "N"))
    var replaySentences: Int?

    @Option(name: .long, help: ArgumentHelp("\(deviceHelp) Default: the job's, else \(JobSpec().device).", valueName: "DEVICE"))
    var device: String?

    @Option(name: .long, help: ArgumentHelp("Model folder (default: $NER_HOME/models/MODEL_ID).", valueName: "DIR"))
    var output: String?

    @Flag(name: .long, help: "Continue from the checkpoint in --output (or the record's model_dir).")
    var resume = false

    @Option(name: .long, help: ArgumentHelp("Model name, the prefix of its id (default: the record's name, else \"model\").", valueName: "NAME"))
    var name: String?

    @Flag(name: .long, help: ArgumentHelp("Check the engine on --device (default cuda) against the CPU path instead of training: "
        + "gradients, decoding and updates on a small random network. Prints one JSON line per check and exits 0 when all "
        + "agree, 1 when one does not, 69 when the device cannot be used."))
    var checkDevice = false

    func run() throws {
        try runTool("ner-train", common) { log in
            if checkDevice {
                if device == "cpu" { throw ToolError.usage("--check-device compares a GPU with the CPU; use --device cuda") }
                _ = try ComputeDevice.select(device ?? "cuda")
                let results = try DeviceCheck.run()
                for r in results { Output.record(r.json) }
                if let bad = results.first(where: { !$0.ok }) {
                    throw ToolError.failure("device check \(bad.check): difference \(bad.worst) exceeds \(bad.limit)")
                }
                return
            }
            var records: [(JSON, String?)] = []
            // Relative paths in a job file are the file's own, as in make and compose files;
            // those on stdin and in flags are the working directory's.
            var base: String?
            if let job {
                guard fileExists(job) else { throw ToolError.noInput("\(job): no such file") }
                base = folder(of: job)
                var reader = NDJSONReader(try LineReader(path: job))
                while let r = try reader.next() { records.append((r, "\(job):\(reader.lines.lineNumber)")) }
            } else if isatty(0) == 0 {
                var reader = NDJSONReader(LineReader())
                while let r = try reader.next() { records.append((r, "stdin:\(reader.lines.lineNumber)")) }
            }
            if records.isEmpty {
                guard train != nil else { throw ToolError.usage("no job record on the input and no --train given") }
                records.append((["schema": .int(Int64(recordSchema)), "spec": [:]], nil))
            }
            for (record, context) in records {
                guard record["spec"] != nil else {
                    Output.record(record)
                    continue
                }
                Output.record(try trainOne(record, context: context, base: base, log: log))
            }
        }
    }

    func trainOne(_ input: JSON, context: String?, base: String?, log: Logger) throws -> JSON {
        var specJSON = input["spec"]?.objectValue ?? [:]
        // A misspelt field would otherwise train with the default, as if it had been set.
        if let problem = JobSpec.unknownField(in: specJSON) { throw ToolError.data("\(context ?? "job"): \(problem)") }
        var spec: JobSpec
        do { spec = try JSON.object(specJSON).decode(JobSpec.self) } catch {
            throw ToolError.data("\(context ?? "job"): spec: malformed (\(error.localizedDescription))")
        }
        if let base { spec.resolvePaths(relativeTo: base) }
        if let train { spec.train = train }
        if let dev { spec.dev = dev }
        if let test { spec.test = test }
        if let epochs { spec.epochs = epochs }
        if let embeddings { spec.embeddings = embeddings }
        if let seed { spec.seed = seed }
        if let threads { spec.threads = threads }
        if let batchSize { spec.batchSize = batchSize }
        if let learningRate { spec.learningRate = learningRate }
        if let patience { spec.patience = patience }
        if let initFrom { spec.initFrom = initFrom }
        if let freezeEpochs { spec.freezeEpochs = freezeEpochs }
        if let replay { spec.replay = replay }
        if let replaySentences { spec.replaySentences = replaySentences }
        if let device { spec.device = device }
        try spec.validate(context: context)
        let modelName = name ?? input["name"]?.stringValue ?? "model"
        try Job.validateName(modelName)

        let outputDir: String
        let modelId = Job.makeId(name: modelName)
        if resume {
            guard let dir = output ?? input["model_dir"]?.stringValue else {
                throw ToolError.usage("--resume needs --output DIR (the folder of the run to continue)")
            }
            outputDir = absolute(dir)
        } else if let output {
            outputDir = absolute(output)
        } else {
            let home = common.resolvedHome
            try home.ensureLayout()
            outputDir = home.models + "/" + modelId
        }
        var options = TrainingOptions(spec: spec, name: modelName, modelId: modelId, outputDir: outputDir,
                                      resume: resume, progress: !common.quiet)
        var parentId: String?
        if let initFrom = spec.initFrom {
            let located = try ModelLocator(home: common.resolvedHome).locate(initFrom)
            options.initFrom = located.directory
            parentId = located.modelId
        }
        let outcome = try Trainer.run(options)
        // The record says what the run used, the settings chosen from the data's size included.
        spec.batchSize = outcome.settings.batchSize
        spec.learningRate = outcome.settings.learningRate
        spec.weightAverage = outcome.settings.weightAverage
        spec.patience = outcome.settings.patience
        if spec.replay != nil { spec.replaySentences = outcome.settings.replaySentences }
        for (k, v) in (try JSON.from(spec)).objectValue ?? [:] { specJSON[k] = v }
        var out = input
        out["spec"] = .object(specJSON)
        out["model_id"] = .string(outcome.modelId)
        out["model_dir"] = .string(outcome.modelDir)
        out["metrics"] = outcome.metrics
        out["status"] = "trained"
        if var warm = outcome.warmStart {
            // The registry's id when the parent came from it, else the id in its model.json.
            if let parentId { warm["parent_id"] = .string(parentId) }
            out["warm_start"] = warm
            out["parent_id"] = warm["parent_id"]
        }
        return out
    }
}

Tool.main()
