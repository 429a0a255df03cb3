import ArgumentParser
import Foundation
import NERCLI
import NERCore
import NERDispatch
import NERRegistry
#if canImport(Glibc)
import Glibc
#endif

/// The spec fields and their defaults, from JobSpec itself so the help never drifts.
let specDefaults: String = {
    let d = JobSpec()
    return "train, dev, test (CoNLL files), epochs (\(d.epochs)), batch_size (\(d.batchSize)), "
        + "learning_rate (\(d.learningRate)), optimizer (\(d.optimizer): adam|sgd), dropout (\(d.dropout)), "
        + "hidden_size (\(d.hiddenSize)), word_dim (\(d.wordDim)), char_dim (\(d.charDim)), "
        + "embeddings (\(d.embeddings), or a word2vec/GloVe text file), seed (\(d.seed)), device (\(d.device): cpu|cuda), "
        + "threads (\(d.threads); 0 = all cores), patience (\(d.patience)), resources {gpus (\(d.resources.gpus)), "
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
          ner-queue --halve SWEEP_ID [--keep FRACTION] [--by METRIC] [--factor N]
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
        before any is written. ner-dispatch --backend slurm submits trials claimed together as \
        one job array; `ner-register best --sweep ID --by dev.f1` names the winner and \
        `ner-register promote --sweep ID` moves an alias to it. A sweep of more than --max-trials \
        trials (default \(Sweep.defaultMaxTrials)) is refused with exit 64 and its count before any \
        trial is built.

        SUCCESSIVE HALVING (--halve SWEEP_ID)
          Early stopping for a sweep: queue every trial with a small budget (few epochs), and \
        once that rung has finished, --halve keeps the best --keep fraction (default 0.5) of its \
        registered trials by --by (default dev.f1) and queues them again with --factor times the \
        epochs (default 2), as the next rung of the same sweep (each new job has "sweep_rung" and \
        its model as "parent_id"). The rest stop there. Repeat until one trial is left. A rung \
        with jobs still queued or running is exit 75 (try again later).

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
    @Option(help: "Device: cpu or cuda.") var device: String?
    @Option(help: "Threads (0 = all cores).") var threads: Int?
    @Option(help: "Epochs without dev improvement before stopping.") var patience: Int?
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
    var keep: Double = 0.5
    @Option(help: ArgumentHelp("With --halve: the metric ranking the trials (default dev.f1).", valueName: "METRIC"))
    var by = "dev.f1"
    @Option(help: ArgumentHelp("With --halve: how many times the epochs the next rung trains (default 2).", valueName: "N"))
    var factor = 2

    @Flag(help: "List every job in the spool.") var list = false
    @Option(help: ArgumentHelp("Print one job's record and state.", valueName: "JOB_ID")) var show: String?
    @Option(help: ArgumentHelp("Cancel a queued or running job.", valueName: "JOB_ID")) var cancel: String?
    @Flag(help: "Delete done and failed jobs from the spool.") var purge = false

    func run() throws {
        try runTool("ner-queue", common) { log in
            let home = common.resolvedHome
            let spool = Spool(home: home)
            try home.ensureLayout()
            try spool.ensureLayout()
            if maxTrials < 1 { throw ToolError.usage("--max-trials must be 1 or more, got \(maxTrials)") }
            let modes = [list, show != nil, cancel != nil, purge, sweep != nil, from != nil, halve != nil].filter { $0 }.count
            if modes > 1 { throw ToolError.usage("give only one of --list, --show, --cancel, --purge, --sweep, --from, --halve") }
            if list { return listJobs(spool) }
            if let id = show { return try showJob(spool, id) }
            if let id = cancel { return try cancelJob(spool, id, home: home, log: log) }
            if purge {
                let n = spool.purge()
                log.info("purged \(n) finished job(s)")
                return
            }
            if let sweep { return try enqueueSweep(sweep, spool: spool, home: home, log: log) }
            if let from { return try enqueueRetraining(from, spool: spool, home: home, log: log) }
            if let halve { return try enqueueNextRung(halve, spool: spool, home: home, log: log) }
            try enqueue(spool, home: home, log: log)
        }
    }

    /// The spec fields given as flags, as a request object.
    var flagRequest: [String: JSON] {
        var o: [String: JSON] = [:]
        if let name { o["name"] = .string(name) }
        if let priority { o["priority"] = .int(Int64(priority)) }
        for (k, v) in [("train", train), ("dev", dev), ("test", test), ("optimizer", optimizer),
                       ("embeddings", embeddings), ("device", device)] {
            if let v { o[k] = .string(v) }
        }
        // Flag paths are the working directory's, also under a sweep file whose own are its folder's.
        for k in ["train", "dev", "test", "embeddings"] {
            if let v = o[k]?.stringValue, v != "none" { o[k] = .string(absolute(v)) }
        }
        for (k, v) in [("epochs", epochs), ("batch_size", batchSize), ("hidden_size", hiddenSize),
                       ("word_dim", wordDim), ("char_dim", charDim), ("seed", seed), ("threads", threads),
                       ("patience", patience)] {
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

    func enqueue(_ spool: Spool, home: Home, log: Logger) throws {
        var jobs: [Job] = []
        var contexts: [String?] = []
        if train != nil {
            jobs.append(try JobRequest.make(from: .object(flagRequest), context: nil))
            contexts.append(nil)
        } else {
            if isatty(0) == 1 {
                throw ToolError.usage("give --train FILE, or pipe JSON requests on stdin (see --help)")
            }
            var reader = NDJSONReader(LineReader())
            let defaults = flagRequest
            while let line = try reader.next() {
                var merged = defaults
                for (k, v) in line.objectValue ?? [:] {
                    if k == "resources", let d = merged[k]?.objectValue, let o = v.objectValue {
                        merged[k] = .object(d.merging(o) { _, b in b })
                    } else {
                        merged[k] = v
                    }
                }
                let context = "stdin:\(reader.lines.lineNumber)"
                jobs.append(try JobRequest.make(from: .object(merged), context: context))
                contexts.append(context)
            }
            if jobs.isEmpty { throw ToolError.data("stdin: no job requests") }
        }
        try write(try jobs.map { try JSON.from($0) }, contexts: contexts, spool: spool, home: home, log: log)
    }

    /// Queues `records` (`contexts` name where each came from, for errors) once every one passes.
    func write(_ records: [JSON], contexts: [String?] = [], spool: Spool, home: Home, log: Logger) throws {
        try checkPartitions(records, contexts: contexts, log: log)
        try spool.enqueue(records)
        recordQueued(records, home: home, log: log)
        for r in records { Output.line(r) }
        if records.count > 1 { log.info("queued \(records.count) jobs") }
    }

    func enqueueSweep(_ file: String, spool: Spool, home: Home, log: Logger) throws {
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
        let sweepId = Job.makeId(name: sweep.name)
        var records: [JSON] = []
        var contexts: [String?] = []
        for (i, trial) in sweep.trials.enumerated() {
            let context = "\(file): trial \(i + 1)"
            var r = try JSON.from(try JobRequest.make(from: .object(trial.request), context: context,
                                                      relativeTo: file == "-" ? nil : folder(of: file)))
            r["sweep_id"] = .string(sweepId)
            r["sweep_params"] = .object(trial.params)
            records.append(r)
            contexts.append(context)
        }
        try write(records, contexts: contexts, spool: spool, home: home, log: log)
        log.info("sweep \(sweepId): \(records.count) trial(s)")
    }

    func enqueueNextRung(_ sweepId: String, spool: Spool, home: Home, log: Logger) throws {
        guard keep > 0 && keep < 1 else { throw ToolError.usage("--keep must be between 0 and 1, got \(keep)") }
        guard factor >= 1 else { throw ToolError.usage("--factor must be 1 or more, got \(factor)") }
        func rung(_ record: JSON?) -> Int { record?["sweep_rung"]?.intValue ?? 0 }
        let trials = try Registry(path: home.registry, readOnly: true).sweepModels(sweepId, by: by)
        guard let last = trials.map({ rung($0.model.record) }).max() else {
            throw ToolError.noInput("sweep \(sweepId) has no registered model")
        }
        let unfinished = spool.entries().filter { e in
            guard e.state == .queued || e.state == .running, let job = try? spool.read(e.path) else { return false }
            return job["sweep_id"]?.stringValue == sweepId
        }
        if !unfinished.isEmpty {
            throw ToolError(.tempFail, "sweep \(sweepId) still has \(unfinished.count) job(s) queued or running; halve it when they end")
        }
        let ranked = trials.filter { rung($0.model.record) == last && $0.score != nil }
        guard ranked.count > 1 else { throw ToolError.failure("sweep \(sweepId) is down to \(ranked.count) scored trial(s) at rung \(last)") }
        var records: [JSON] = []
        for (model, _) in ranked.prefix(max(1, Int(Double(ranked.count) * keep))) {
            guard var spec = model.record["spec"]?.objectValue else {
                throw ToolError.data("model \(model.modelId) was registered without the job spec it was trained from")
            }
            spec["epochs"] = .int(Int64((spec["epochs"]?.intValue ?? JobSpec().epochs) * factor))
            var record = try JSON.from(try JobRequest.make(from: ["name": .string(model.name), "spec": .object(spec)], context: nil))
            record["sweep_id"] = .string(sweepId)
            record["sweep_params"] = model.record["sweep_params"] ?? [:]
            record["sweep_rung"] = .int(Int64(last + 1))
            record["parent_id"] = .string(model.modelId)
            records.append(record)
        }
        try write(records, spool: spool, home: home, log: log)
        log.info("sweep \(sweepId): rung \(last + 1) continues \(records.count) of \(ranked.count) trial(s)")
    }

    func enqueueRetraining(_ spec: String, spool: Spool, home: Home, log: Logger) throws {
        let registry = try Registry(path: home.registry, readOnly: true)
        guard let model = try registry.resolve(spec) else { throw ToolError.noInput("unknown model \(clipped(spec))") }
        guard let original = model.record["spec"]?.objectValue else {
            throw ToolError.data("model \(model.modelId) was registered without the job spec it was trained from")
        }
        var request = flagRequest
        var fields = original
        for (k, v) in request where k != "name" && k != "priority" {
            if k == "resources", let o = fields[k]?.objectValue, let n = v.objectValue {
                fields[k] = .object(o.merging(n) { _, b in b })
            } else {
                fields[k] = v
            }
            request.removeValue(forKey: k)
        }
        request["spec"] = .object(fields)
        if request["name"] == nil { request["name"] = .string(model.name) }
        var record = try JSON.from(try JobRequest.make(from: .object(request), context: nil))
        record["parent_id"] = .string(model.modelId)
        try write([record], spool: spool, home: home, log: log)
        log.info("retraining \(model.name):\(model.version) (\(model.modelId))")
    }

    /// A partition Slurm does not have would fail every submission later; with `sinfo` on PATH it is
    /// refused now (64, or 65 when it came from an input line). A `sinfo` that cannot answer only warns.
    func checkPartitions(_ records: [JSON], contexts: [String?], log: Logger) throws {
        let wanted = records.enumerated().compactMap { i, r in
            r["spec"]?["resources"]?["partition"]?.stringValue.map { (i, $0) }
        }
        guard !wanted.isEmpty else { return }
        let known: Set<String>
        do {
            guard let k = try SlurmBackend.partitions() else { return }
            known = k
        } catch let e as ToolError {
            log.warning("cannot check resources.partition: \(e.message)")
            return
        }
        for (i, partition) in wanted where !known.contains(partition) {
            let message = "resources.partition '\(clipped(partition))' is not a Slurm partition here "
                + "(sinfo lists \(known.sorted().joined(separator: ", ")))"
            let context = i < contexts.count ? contexts[i] : nil
            throw context.map { ToolError.data("\($0): \(message)") } ?? ToolError.usage(message)
        }
    }

    /// The spool is the source of truth for the queue; a registry that can't be written now is
    /// told about the job when a dispatcher picks it up.
    func recordQueued(_ records: [JSON], home: Home, log: Logger) {
        do {
            let registry = try Registry(path: home.registry)
            try registry.recordTransitions(records.map {
                Registry.Transition(jobId: $0["job_id"]?.stringValue ?? "", name: $0["name"]?.stringValue ?? "",
                                    status: "queued", attempt: 1, record: $0)
            })
        } catch {
            log.warning("job(s) queued, but the registry could not record it: \(error)")
        }
    }

    func listJobs(_ spool: Spool) {
        for e in spool.entries() {
            let job = (try? spool.read(e.path)) ?? [:]
            var o: [String: JSON] = [
                "job_id": .string(e.jobId), "state": .string(e.state.rawValue),
                "name": job["name"] ?? .null, "attempt": job["attempt"] ?? .null,
                "priority": job["priority"] ?? .null, "created_at": job["created_at"] ?? .null,
            ]
            if let owner = e.owner { o["owner"] = .string(owner.description) }
            if let t = e.leaseRenewed { o["lease_renewed"] = .string(Timestamp.format(t)) }
            if let err = job["error"] { o["error"] = err }
            if let model = job["model_id"] { o["model_id"] = model }
            Output.line(.object(o))
        }
    }

    func showJob(_ spool: Spool, _ id: String) throws {
        guard let e = spool.find(id) else { throw ToolError.noInput("no job \(clipped(id)) in \(spool.root)") }
        var job = try spool.read(e.path)
        job["state"] = .string(e.state.rawValue)
        if let owner = e.owner { job["owner"] = .string(owner.description) }
        Output.line(job)
    }

    func cancelJob(_ spool: Spool, _ id: String, home: Home, log: Logger) throws {
        let was = try spool.cancel(id)
        if was == .queued {
            if let registry = try? Registry(path: home.registry), let e = spool.find(id),
               let job = try? spool.read(e.path) {
                try? registry.recordTransition(jobId: id, name: job["name"]?.stringValue ?? "", status: "cancelled",
                                               attempt: job["attempt"]?.intValue ?? 1, error: job["error"]?.stringValue)
            }
            log.info("cancelled queued job \(id)")
        } else if SlurmBackend.cancel(jobId: id, spool: spool) {
            log.info("scancel'ed the Slurm job of \(id); its dispatcher records it cancelled")
        } else {
            log.info("asked the dispatcher running \(id) to stop it")
        }
        Output.line(["job_id": .string(id), "cancelled": true, "was": .string(was.rawValue)])
    }
}

Queue.main()
