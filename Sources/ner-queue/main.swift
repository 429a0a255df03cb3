import ArgumentParser
import Foundation
import NERCLI
import NERCore
import NERQueue
import NERDispatch
import NERRegistry
#if canImport(Glibc)
import Glibc
#endif

/// The spec fields and their defaults, from JobSpec itself so the help never drifts.
let specDefaults: String = {
    let d = JobSpec()
    let large = JobSpec.largeDataDefaults, small = JobSpec.smallDataDefaults
    return "train, dev, test (CoNLL files), epochs (\(d.epochs)), batch_size (\(large.batchSize); \(small.batchSize) under "
        + "\(JobSpec.smallData) training sentences), learning_rate (\(large.learningRate); \(small.learningRate) under "
        + "\(JobSpec.smallData) sentences), optimizer (\(d.optimizer): adam|sgd), dropout (\(d.dropout)), "
        + "hidden_size (\(d.hiddenSize)), word_dim (\(d.wordDim)), char_dim (\(d.charDim)), "
        + "embeddings (\(d.embeddings), or a word2vec/GloVe text file), seed (\(d.seed)), device (\(d.device): cpu|cuda), "
        + "threads (\(d.threads); 0 = all cores), patience (\(large.patience); \(small.patience) under \(JobSpec.smallData) sentences), "
        + "init_from (a model to start from), freeze_epochs (\(d.freezeEpochs)), "
        + "weight_average (\(large.weightAverage): off; \(small.weightAverage) under \(JobSpec.smallData) sentences), "
        + "replay (a CoNLL file, usually the parent's training data, drawn from each epoch), "
        + "replay_sentences (\(JobSpec.replayRatio) per training sentence), resources {gpus (\(d.resources.gpus)), "
        + "cpus (\(d.resources.cpus)), mem (\(d.resources.mem)), time (\(d.resources.time)), partition}."
}()

struct Queue: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner-queue",
        abstract: "Queue NER training requests (jobs) in the spool.",
        usage: """
        ner-queue --train FILE [--dev FILE] [--name NAME] [SPEC OPTIONS]
          GENERATOR | ner-queue [SPEC OPTIONS as defaults]
          ner-queue --sweep SWEEP.json [SPEC OPTIONS as defaults]
          ner-queue --from MODEL [SPEC OPTIONS as overrides]
          ner-queue --halve SWEEP_ID [--keep-fraction F] [--by METRIC] [--factor N]
          ner-queue --suggest SWEEP_ID [--n K]
          ner-queue --list | --show JOB_ID | --cancel JOB_ID | --purge
        """,
        discussion: """
        Writes one job per request into $NER_HOME/spool/new (written under spool/tmp, fsynced, \
        renamed), records it as `queued` in the registry, and prints the job record on stdout as \
        one JSON line. Job ids are NAME-UUID.

        READS
          With --train: one job from the flags. Otherwise JSON requests on stdin, one per line: \
        either {"name":..., "priority":..., "spec":{...}} or the spec fields at the top level \
        (e.g. {"name":"news","train":"train.txt","dev":"dev.txt","epochs":20}). Flags given \
        beside stdin act as defaults for every line. All lines are checked before any job is \
        written: one bad line writes nothing. Relative paths are made absolute (those in a sweep file \
        against its folder, the others against the working directory). The data files must be \
        regular files; resources.time must be a time Slurm accepts (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, \
        D-HH:MM:SS); with `sinfo` on PATH, resources.partition must be one it lists.

        SPEC FIELDS (defaults)
          \(specDefaults)

        SWEEPS (--sweep FILE, - for stdin)
          A hyper-parameter search as one JSON object: "name", "base" (spec fields every trial \
        shares; flags given act as defaults under it), and either "grid" (field → list of values; \
        every combination is one job) or "random" with "trials" and "seed" (field → \
        {"uniform":[lo,hi]}, {"log_uniform":[lo,hi]}, {"int":[lo,hi]} or {"choice":[...]}). Every \
        trial is one job carrying the same "sweep_id" and its own "sweep_params"; all are checked \
        before any is written. "method": "bayes" makes the trials as earlier ones finish (see \
        BAYESIAN SEARCH). ner-dispatch --backend slurm submits trials claimed together as \
        one job array; `ner-register best --sweep ID --by dev.f1` names the winner and \
        `ner-register promote --sweep ID` moves an alias to it. A sweep of more than --max-trials \
        trials (default \(Sweep.defaultMaxTrials)) is refused with exit 64 and its count before any \
        trial is built.

        SUCCESSIVE HALVING (--halve SWEEP_ID)
          Early stopping for a sweep: queue every trial with a small budget (few epochs), and \
        once that rung has finished, --halve keeps the best --keep-fraction (default 0.5) of its \
        registered trials by --by (default dev.f1) and queues them again with --factor times the \
        epochs (default 2), as the next rung of the same sweep (each new job has "sweep_rung" and \
        its model as "parent_id"). The rest stop there. Repeat until one trial is left. A rung \
        with jobs still queued or running is exit 75 (try again later).

        BAYESIAN SEARCH ("method": "bayes", --suggest SWEEP_ID)
          {"method": "bayes", "base": {...}, "space": {field → distribution, as for random}, \
        "trials": N, "parallel": K (default 1), "seed": S, "metric": "dev.f1" (a dotted path into \
        the metrics; the default), "goal": "maximize" (or "minimize")}. The sweep is kept in the \
        registry and its first K trials are queued at once (a Latin hypercube over the space until \
        there are more trials than parameters); after that each trial comes from a Gaussian process \
        fitted to the results so far, at the point of largest expected improvement, with the trials \
        still running taken into account so that parallel trials spread out. A running ner-dispatch \
        makes the next trial whenever one of the sweep's trials ends; --suggest does one such step by \
        hand, from cron or a Slurm dependency: it queues trials until --n (default: the sweep's \
        "parallel") are queued or running, or all N are made, and prints them. A step run twice \
        queues nothing twice. A failed trial counts as failed (no score) and nothing is suggested \
        near it again. A trial's score is its registered model's metric, or for a --command job the \
        "metrics" object of the last JSON line it printed. Details: docs/sweeps.md.

        RETRAINING (--from MODEL)
          Queues the job a registered model was trained from again (MODEL is NAME, NAME@ALIAS, \
        NAME:VERSION or a model id), with any spec flags given as overrides (new --train data, more \
        --epochs). The new job carries "parent_id": the model's id, and the model it produces is \
        registered with that parent.

        MANAGING THE QUEUE
          --list prints one line per job (queued, running, done, failed) with its attempt and \
        owner; --show prints a job's record; --cancel dead-letters a queued job or asks the \
        dispatcher running it to stop it (a job running under Slurm is also scancel'ed at once, \
        so it stops even while no dispatcher runs); --purge deletes done and failed jobs.

        EXAMPLES
          ner-queue --name news --train data/train.txt --dev data/dev.txt --epochs 20
          for lr in 0.001 0.002; do echo "{\\"name\\":\\"lr$lr\\",\\"train\\":\\"train.txt\\",\\"learning_rate\\":$lr}"; done | ner-queue
          ner-queue --list | jq -r 'select(.state=="failed") | .job_id'
          ner-queue --sweep examples/slurm/sweep.json --epochs 10
          ner-queue --from news@production --train data/more.txt --epochs 40
          ner-queue --sweep examples/bayes-sweep.json && ner-dispatch --drain --max-running 2

        \(exitCodeHelp)
        """,
        version: Toolchain.version)

    @OptionGroup var common: CommonOptions

    @Option(help: "Job name (letters, digits, '.', '_', '-'); the id is NAME-UUID. Default: ner.")
    var name: String?
    @Option(help: "Priority from -9 to 9; higher runs first, FIFO within a priority. Default: 0.")
    var priority: Int?

    @Option(help: ArgumentHelp("Training data (CoNLL).", valueName: "FILE")) var train: String?
    @Option(help: ArgumentHelp("Development data, for early stopping and model selection.", valueName: "FILE")) var dev: String?
    @Option(help: ArgumentHelp("Test data, scored once at the end.", valueName: "FILE")) var test: String?
    @Option(help: "Epochs to train (at most).") var epochs: Int?
    @Option(help: "Sentences per batch.") var batchSize: Int?
    @Option(help: "Learning rate.") var learningRate: Double?
    @Option(help: "Optimizer: adam or sgd.") var optimizer: String?
    @Option(help: "Dropout probability.") var dropout: Double?
    @Option(help: "Hidden size of the contextual encoder.") var hiddenSize: Int?
    @Option(help: "Word embedding size.") var wordDim: Int?
    @Option(help: "Character embedding size.") var charDim: Int?
    @Option(help: ArgumentHelp("Pretrained word vectors (word2vec/GloVe text, plain or .gz), or none.", valueName: "FILE")) var embeddings: String?
    @Option(help: "Random seed.") var seed: Int?
    @Option(help: ArgumentHelp("With --train: one job per seed (e.g. 1,2,3), queued as one sweep, so `ner-register best --sweep ID --summary` gives their mean and spread.",
                               valueName: "LIST")) var seeds: String?
    @Option(help: "Device: cpu or cuda.") var device: String?
    @Option(help: "Threads (0 = all cores).") var threads: Int?
    @Option(help: "Epochs without dev improvement before stopping.") var patience: Int?
    @Option(help: ArgumentHelp("Warm start: train from this model's weights (anything --model of ner-infer takes).",
                               valueName: "MODEL")) var initFrom: String?
    @Option(help: "With --init-from: epochs that train only the output layer and the CRF.") var freezeEpochs: Int?
    @Option(help: ArgumentHelp("Also train on sentences drawn each epoch from this CoNLL file, usually the --init-from model's training data.",
                               valueName: "FILE")) var replay: String?
    @Option(help: ArgumentHelp("With --replay: sentences drawn from it each epoch.", valueName: "N")) var replaySentences: Int?
    @Option(help: "Scheduler: GPUs per job.") var gpus: Int?
    @Option(help: "Scheduler: CPUs per job.") var cpus: Int?
    @Option(help: "Scheduler: memory per job (e.g. 8G).") var mem: String?
    @Option(help: "Scheduler: time limit (e.g. 02:00:00).") var time: String?
    @Option(help: "Scheduler: partition.") var partition: String?

    @Option(help: ArgumentHelp("Queue every trial of a sweep spec (JSON file, - for stdin).", valueName: "FILE"))
    var sweep: String?
    @Option(help: ArgumentHelp("With --sweep: refuse a sweep of more trials than N.", valueName: "N"))
    var maxTrials = Sweep.defaultMaxTrials
    @Option(help: ArgumentHelp("Queue a registered model's job again, flags as overrides.", valueName: "MODEL"))
    var from: String?

    @Option(help: ArgumentHelp("Queue the best trials of a sweep's last rung again with more epochs.", valueName: "SWEEP_ID"))
    var halve: String?
    @Option(help: ArgumentHelp("With --halve: the fraction of trials kept (default 0.5).", valueName: "FRACTION"))
    var keepFraction: Double = 0.5
    @Option(help: ArgumentHelp("With --halve: the metric ranking the trials (default dev.f1).", valueName: "METRIC"))
    var by = "dev.f1"
    @Option(help: ArgumentHelp("With --halve: how many times the epochs the next rung trains (default 2).", valueName: "N"))
    var factor = 2

    @Option(help: ArgumentHelp("Queue a bayes sweep's next trials (one step; safe to repeat).", valueName: "SWEEP_ID"))
    var suggest: String?
    @Option(name: .customLong("n"), help: ArgumentHelp("With --suggest: keep K trials queued or running (default: the sweep's \"parallel\").", valueName: "K"))
    var inFlight: Int?

    @Flag(help: "List every job in the spool.") var list = false
    @Option(help: ArgumentHelp("Print one job's record and state.", valueName: "JOB_ID")) var show: String?
    @Option(help: ArgumentHelp("Cancel a queued or running job.", valueName: "JOB_ID")) var cancel: String?
    @Flag(help: "Delete done and failed jobs from the spool.") var purge = false

    func run() throws {
        try runTool("ner-queue", common) { log in
            let queue = try JobQueue(home: common.resolvedHome)
            if maxTrials < 1 { throw ToolError.usage("--max-trials must be 1 or more, got \(maxTrials)") }
            let modes = [list, show != nil, cancel != nil, purge, sweep != nil, from != nil, halve != nil, suggest != nil]
                .filter { $0 }.count
            if modes > 1 { throw ToolError.usage("give only one of --list, --show, --cancel, --purge, --sweep, --from, --halve, --suggest") }
            if inFlight != nil && suggest == nil { throw ToolError.usage("--n goes with --suggest SWEEP_ID") }
            if let n = inFlight, n < 1 { throw ToolError.usage("--n must be 1 or more, got \(n)") }
            if list { return queue.spool.entries().forEach { Output.line(queue.summary(of: $0)) } }
            if let id = show { return try showJob(queue.spool, id) }
            if let id = cancel { return try cancelJob(queue, id, log: log) }
            if purge { return log.info("purged \(queue.spool.purge()) finished job(s)") }
            if let sweep { return try enqueueSweep(sweep, queue, log: log) }
            if let suggest {
                let progress = try BayesSweep(queue: queue).step(suggest, inFlight: inFlight, log: log)
                return report(progress, log: log)
            }
            if let from {
                let registry = try Registry(path: queue.home.registry, readOnly: true)
                let (record, model) = try Retraining.job(from: from, overrides: flagRequest, registry: registry)
                try submit([record], queue, log: log)
                return log.info("retraining \(model.name):\(model.version) (\(model.modelId))")
            }
            if let halve {
                let registry = try Registry(path: queue.home.registry, readOnly: true)
                let next = try Halving(keep: keepFraction, by: by, factor: factor).nextRung(of: halve, registry: registry, spool: queue.spool)
                try submit(next.records, queue, log: log)
                return log.info("sweep \(halve): rung \(next.rung) continues \(next.records.count) of \(next.ranked) trial(s)")
            }
            try enqueueRequests(queue, log: log)
        }
    }

    /// The spec fields given as flags, as a request object.
    var flagRequest: [String: JSON] {
        var o: [String: JSON] = [:]
        if let name { o["name"] = .string(name) }
        if let priority { o["priority"] = .int(Int64(priority)) }
        // Flag paths are the working directory's, also under a sweep file whose own are its folder's.
        for (k, v) in [("train", train), ("dev", dev), ("test", test), ("embeddings", embeddings), ("replay", replay)] {
            if let v { o[k] = .string(v == "none" ? v : absolute(v)) }
        }
        if let initFrom { o["init_from"] = .string(fileExists(initFrom) ? absolute(initFrom) : initFrom) }
        for (k, v) in [("optimizer", optimizer), ("device", device)] {
            if let v { o[k] = .string(v) }
        }
        for (k, v) in [("epochs", epochs), ("batch_size", batchSize), ("hidden_size", hiddenSize),
                       ("word_dim", wordDim), ("char_dim", charDim), ("seed", seed), ("threads", threads),
                       ("patience", patience), ("freeze_epochs", freezeEpochs), ("replay_sentences", replaySentences)] {
            if let v { o[k] = .int(Int64(v)) }
        }
        if let learningRate { o["learning_rate"] = .double(learningRate) }
        if let dropout { o["dropout"] = .double(dropout) }
        var r: [String: JSON] = [:]
        if let gpus { r["gpus"] = .int(Int64(gpus)) }
        if let cpus { r["cpus"] = .int(Int64(cpus)) }
        if let mem { r["mem"] = .string(mem) }
        if let time { r["time"] = .string(time) }
        if let partition { r["partition"] = .string(partition) }
        if !r.isEmpty { o["resources"] = .object(r) }
        return o
    }

    /// One job from the flags, or one per request on stdin with the flags as defaults.
    func enqueueRequests(_ queue: JobQueue, log: Logger) throws {
        if let seeds {
            guard train != nil else { throw ToolError.usage("--seeds goes with --train (one job, several seeds)") }
            let values = seeds.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ $0 != nil }), Set(values).count == values.count else {
                throw ToolError.usage("--seeds takes distinct integers separated by commas, got \(clipped(seeds))")
            }
            let sweep = try Sweep(["grid": ["seed": .array(values.map { .int(Int64($0!)) })]], defaults: flagRequest,
                                  file: "--seeds", maxTrials: maxTrials)
            let (records, contexts) = try JobQueue.trials(of: sweep, file: "--seeds", base: nil)
            try submit(records, contexts: contexts, queue, log: log)
            return log.info("sweep \(records.first?["sweep_id"]?.stringValue ?? ""): \(records.count) seed(s)")
        }
        if train != nil {
            return try submit([try JSON.from(try JobRequest.make(from: .object(flagRequest), context: nil))], queue, log: log)
        }
        if isatty(0) == 1 {
            throw ToolError.usage("give --train FILE, or pipe JSON requests on stdin (see --help)")
        }
        var records: [JSON] = []
        var contexts: [String?] = []
        var reader = NDJSONReader(LineReader())
        let defaults = flagRequest
        while let line = try reader.next() {
            let context = "stdin:\(reader.lines.lineNumber)"
            let request = line.objectValue.map { JSON.object(JobRequest.merged(defaults, with: $0)) } ?? line
            records.append(try JSON.from(try JobRequest.make(from: request, context: context)))
            contexts.append(context)
        }
        if records.isEmpty { throw ToolError.data("stdin: no job requests") }
        try submit(records, contexts: contexts, queue, log: log)
    }

    func enqueueSweep(_ file: String, _ queue: JobQueue, log: Logger) throws {
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let d = FileManager.default.contents(atPath: file) else { throw ToolError.noInput("\(file): no such sweep file") }
            data = d
        }
        let spec: JSON
        do { spec = try JSON.parse(data) } catch let e as ToolError { throw ToolError.data("\(file): \(e.message)") }
        let sweep = try Sweep(spec, defaults: flagRequest, file: file, maxTrials: maxTrials)
        if sweep.bayes != nil {
            let progress = try BayesSweep(queue: queue).start(sweep, file: file, folder: file == "-" ? nil : folder(of: file), log: log)
            return report(progress, log: log)
        }
        let (records, contexts) = try JobQueue.trials(of: sweep, file: file, base: file == "-" ? nil : folder(of: file))
        try submit(records, contexts: contexts, queue, log: log)
        log.info("sweep \(records.first?["sweep_id"]?.stringValue ?? ""): \(records.count) trial(s)")
    }

    /// Queues `records` once every one passes (`contexts` name where each came from, for errors)
    /// and prints them.
    func submit(_ records: [JSON], contexts: [String?] = [], _ queue: JobQueue, log: Logger) throws {
        try SlurmBackend.checkPartitions(records, contexts: contexts, warn: { log.warning("\($0)") })
        try queue.submit(records, contexts: contexts, log: log)
        for r in records { Output.line(r) }
        if records.count > 1 { log.info("queued \(records.count) jobs") }
    }

    /// Prints the trials a bayes sweep step queued, and where the sweep stands.
    func report(_ progress: BayesSweep.Progress, log: Logger) {
        for r in progress.queued { Output.line(r) }
        log.info("\(progress.summary)\(progress.finished ? " (finished)" : "")")
    }

    func showJob(_ spool: Spool, _ id: String) throws {
        guard let e = spool.find(id) else { throw ToolError.noInput("no job \(clipped(id)) in \(spool.root)") }
        var job = try spool.read(e.path)
        job["state"] = .string(e.state.rawValue)
        if let owner = e.owner { job["owner"] = .string(owner.description) }
        Output.line(job)
    }

    func cancelJob(_ queue: JobQueue, _ id: String, log: Logger) throws {
        let was = try queue.cancel(id)
        if was == .queued {
            log.info("cancelled queued job \(id)")
        } else if SlurmBackend.cancel(jobId: id, spool: queue.spool) {
            log.info("scancel'ed the Slurm job of \(id); its dispatcher records it cancelled")
        } else {
            log.info("asked the dispatcher running \(id) to stop it")
        }
        Output.line(["job_id": .string(id), "cancelled": true, "was": .string(was.rawValue)])
    }
}

Queue.main()
