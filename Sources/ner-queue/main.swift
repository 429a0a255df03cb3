import ArgumentParser
import Foundation
import NERCLI
import NERCore
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
        written: one bad line writes nothing. Relative paths are made absolute.

        SPEC FIELDS (defaults)
          \(specDefaults)

        MANAGING THE QUEUE
          --list prints one line per job (queued, running, done, failed) with its attempt and \
        owner; --show prints a job's record; --cancel dead-letters a queued job or asks the \
        dispatcher running it to stop it; --purge deletes done and failed jobs.

        EXAMPLES
          ner-queue --name news --train data/train.txt --dev data/dev.txt --epochs 20
          for lr in 0.001 0.002; do echo "{\\"name\\":\\"lr$lr\\",\\"train\\":\\"train.txt\\",\\"learning_rate\\":$lr}"; done | ner-queue
          ner-queue --list | jq -r 'select(.state=="failed") | .job_id'

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
            let modes = [list, show != nil, cancel != nil, purge].filter { $0 }.count
            if modes > 1 { throw ToolError.usage("give only one of --list, --show, --cancel, --purge") }
            if list { return listJobs(spool) }
            if let id = show { return try showJob(spool, id) }
            if let id = cancel { return try cancelJob(spool, id, home: home, log: log) }
            if purge {
                let n = spool.purge()
                log.info("purged \(n) finished job(s)")
                return
            }
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
        if train != nil {
            jobs.append(try JobRequest.make(from: .object(flagRequest), context: nil))
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
                jobs.append(try JobRequest.make(from: .object(merged), context: "stdin:\(reader.lines.lineNumber)"))
            }
            if jobs.isEmpty { throw ToolError.data("stdin: no job requests") }
        }
        let records = try jobs.map { try JSON.from($0) }
        try spool.enqueue(records)
        recordQueued(records, home: home, log: log)
        for r in records { Output.line(r) }
        if jobs.count > 1 { log.info("queued \(jobs.count) jobs") }
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
        guard let e = spool.find(id) else { throw ToolError.noInput("no job \(id) in \(spool.root)") }
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
        } else {
            log.info("asked the dispatcher running \(id) to stop it")
        }
        Output.line(["job_id": .string(id), "cancelled": true, "was": .string(was.rawValue)])
    }
}

Queue.main()
