import ArgumentParser
import Foundation
import NERArtifact
import NERCLI
import NERCore
import NERRegistry

/// Options every subcommand takes: the home and how long to wait for a busy registry.
struct RegistryOptions: ParsableArguments {
    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: ArgumentHelp(
        "Seconds to wait while another process writes the registry before giving up with exit 69.",
        valueName: "SECONDS"))
    var busyTimeout: Double = 30

    /// `readOnly` for the commands that only look: they work on a registry nobody may write.
    func open(readOnly: Bool = false) throws -> Registry {
        try Registry(path: common.resolvedHome.registry, busyTimeout: busyTimeout, readOnly: readOnly)
    }
}

struct NERRegister: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner-register",
        abstract: "Record models, their status, metrics and artifacts in the SQLite registry.",
        discussion: """
            The registry is one SQLite file, $NER_HOME/registry.sqlite (default ~/.ner/registry.sqlite), \
            the source of truth for models, their versions and aliases, and the status of every training \
            job. Without a subcommand ner-register is the pipeline stage: it reads packed records on stdin, \
            verifies each artifact and registers it (see `ner-register register --help`).

            A model is named in four ways (the same as --model of ner-infer and ner-serve):
              NAME            alias production if set, else the highest registered version
              NAME@ALIAS      an alias; NAME@latest is the highest registered version
              NAME:VERSION    a version (1, 2, ...)
              MODEL_ID        the model id (NAME-UUID)

            Every subcommand writes NDJSON on stdout (one object per line, with "type" and "schema"); \
            the listing commands take --table for people. Logs and errors go to stderr.

            JOURNAL MODE
              On a local disk the registry uses WAL and many processes may read and write it at once. \
            WAL needs shared memory, so on a network file system (NFS, Lustre, GPFS) set \
            NER_REGISTRY_JOURNAL=delete in every process that opens it: SQLite then uses its rollback \
            journal and file locks. A writer that cannot get the lock within --busy-timeout exits 69.

            EXAMPLES
              ner-train --job job.json | ner-pack | ner-register
              ner-register list conll --table
              ner-register promote conll:3
              ner-register best --sweep conll-3f2a... --by dev.f1
              ner-register history conll --at 2026-05-03T12:00:00Z

            \(exitCodeHelp)
            """,
        version: Toolchain.version,
        subcommands: [Register.self, List.self, Show.self, History.self, Best.self, Alias.self, Promote.self,
                      Remove.self, GC.self, Jobs.self, JobTransitions.self],
        defaultSubcommand: Register.self)
}

// MARK: - The pipeline stage

struct Register: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register the models that packed records on stdin describe (the pipeline stage).",
        discussion: """
            READS
              NDJSON records on stdin (the output of ner-pack). A record with "status": "packed" names \
            an artifact: ner-register verifies the tarball against its manifest, checks the record's \
            sha256 against the file and its model_id and name against the manifest, then registers the \
            model under its name with the next version of that name (1, 2, ...).

            WRITES
              For each packed record: the same record with "model_id", "version" and "status": \
            "registered" added; every other field passes through untouched. Records of any other status \
            (failed jobs, records without an artifact) are printed unchanged.
              An artifact outside $NER_HOME/artifacts is copied into it (as MODEL_ID.tar.zst or .tar.gz, \
            its sha256 checked again), and the registry names the copy; the original is left as it is.
              Registering the same artifact again (same model id or same sha256) registers nothing new \
            and prints the model's existing id and version, so a pipeline can be re-run safely. Records \
            are handled in order; the first bad one stops the run with its error (exit 65 for a tampered \
            tarball or a digest that does not match, 66 for a missing one), nothing is registered for it, \
            and the records before it stay registered.

            EXAMPLES
              ner-train --job job.json | ner-pack | ner-register
              ner-pack runs/conll-best --name conll | ner-register --home /shared/ner

            \(exitCodeHelp)
            """)

    @OptionGroup var options: RegistryOptions

    func run() throws {
        try runTool("ner-register", options.common) { log in
            let registry = try options.open()
            let lines = LineReader()
            var reader = NDJSONReader(lines)
            while let record = try reader.next() {
                guard record["status"]?.stringValue == "packed" else {
                    Output.line(record)
                    continue
                }
                let out = try registerPacked(record, at: "\(lines.name):\(lines.lineNumber)", registry: registry, log: log)
                Output.record(out)
            }
        }
    }

    /// Verifies the artifact a packed record names and registers it; errors name the input line.
    func registerPacked(_ record: JSON, at place: String, registry: Registry, log: Logger) throws -> JSON {
        func located(_ e: ToolError) -> ToolError { ToolError(e.status, "\(place): \(e.message)") }
        guard let artifact = record["artifact"]?.stringValue, !artifact.isEmpty else {
            throw ToolError.data("\(place): packed record has no artifact")
        }
        guard let sha = record["sha256"]?.stringValue?.lowercased(), !sha.isEmpty else {
            throw ToolError.data("\(place): packed record has no sha256")
        }
        guard fileExists(artifact) else { throw ToolError.noInput("\(place): artifact \(artifact): no such file") }
        let checked: PackResult
        do { checked = try Artifact.inspect(path: artifact) } catch let e as ToolError { throw located(e) }
        guard checked.sha256 == sha else {
            throw ToolError.data("\(place): \(artifact): sha256 is \(checked.sha256), the record says \(sha)")
        }
        let manifest = checked.manifest
        var out = record
        if let id = record["model_id"]?.stringValue, id != manifest.modelId {
            throw ToolError.data("\(place): model_id \(id) does not match the artifact's manifest (\(manifest.modelId))")
        }
        if let given = record["name"]?.stringValue, let packed = manifest.name, given != packed {
            throw ToolError.data("\(place): name \(given) does not match the artifact's manifest (\(packed))")
        }
        out["model_id"] = .string(manifest.modelId)
        if out["name"]?.stringValue == nil, let packed = manifest.name { out["name"] = .string(packed) }

        let result: (model: ModelRow, created: Bool)
        do { result = try registry.register(record: out) } catch let e as ToolError where e.status != .unavailable {
            throw located(e)
        }
        let m = result.model
        if result.created {
            log.info("registered \(m.name):\(m.version) (\(m.modelId))")
        } else {
            log.info("\(m.modelId) was already registered as \(m.name):\(m.version)")
        }
        out["model_id"] = .string(m.modelId)
        out["version"] = .int(Int64(m.version))
        // An earlier attempt of the same job may have registered another artifact: the record
        // names the model the registry holds.
        out["artifact"] = .string(m.artifact)
        if let sha = m.sha256 { out["sha256"] = .string(sha) }
        out["status"] = "registered"
        return out
    }
}

// MARK: - Reading the registry

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List models, by name then version.",
        discussion: """
            Prints one "type": "model" object per registered model (with --all, also the ones gc collected \
            and the ones rm removed), each with the aliases that point at it.

            EXAMPLES
              ner-register list
              ner-register list conll --table

            \(exitCodeHelp)
            """)

    @Argument(help: "Only models of this name. Default: every name.")
    var name: String?

    @Flag(name: .long, help: "Include collected and removed models. Default: registered ones only.")
    var all = false

    @Flag(name: .long, help: "Print a table for people instead of NDJSON.")
    var table = false

    @OptionGroup var options: RegistryOptions

    func run() throws {
        try runTool("ner-register", options.common) { _ in
            let registry = try options.open(readOnly: true)
            let rows = try registry.models(name: name).filter { all || $0.status == "registered" }
            var aliasesOf: [String: [String]] = [:]
            for n in Set(rows.map(\.name)) {
                for (alias, id) in try registry.aliases(name: n) { aliasesOf[id, default: []].append(alias) }
            }
            let objects = rows.map { withAliases($0, aliasesOf[$0.modelId] ?? []) }
            if table {
                printTable(["NAME", "VERSION", "STATUS", "ALIASES", "DEV_F1", "REGISTERED", "MODEL_ID"], rows.map { m in
                    [m.name, String(m.version), m.status, (aliasesOf[m.modelId] ?? []).sorted().joined(separator: ","),
                     f1(m.metrics), m.registeredAt, m.modelId]
                })
            } else {
                objects.forEach(Output.line)
            }
        }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one model, with its aliases and the pipeline record it was registered from.",
        discussion: """
            SPEC is NAME, NAME@ALIAS, NAME:VERSION or a model id (see `ner-register --help`). Prints one \
            "type": "model" object with "aliases" and "record" (the whole pipeline record). An unknown \
            model is exit 66.

            With --table, the fields as "key: value" lines for people, the training figures of the \
            metrics as "metrics.KEY: value" lines, then the scores it was registered with as a table: one \
            row for every entity type and one for all of them ("all") per data set scored (dev, test), \
            with entity-level precision, recall and F1 as fractions and the number of gold entities \
            (docs/records.md).

            EXAMPLES
              ner-register show conll
              ner-register show conll@production --table
              ner-register show conll@production | jq .metrics

            \(exitCodeHelp)
            """)

    @Argument(help: "The model: NAME, NAME@ALIAS, NAME:VERSION or a model id.")
    var spec: String

    @Flag(name: .long, help: "Print key: value lines and a table of the scores for people instead of NDJSON.")
    var table = false

    @OptionGroup var options: RegistryOptions

    func run() throws {
        try runTool("ner-register", options.common) { _ in
            let registry = try options.open(readOnly: true)
            guard let m = try registry.resolve(spec) else { throw ToolError.noInput("unknown model \(clipped(spec))") }
            let aliases = try registry.aliases(name: m.name).filter { $0.value == m.modelId }.map(\.key)
            var o = withAliases(m, aliases)
            o["record"] = m.record
            if table {
                for (k, v) in (o.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) where k != "record" && k != "metrics" {
                    Output.line("\(k): \(v.stringValue ?? v.compactString)")
                }
                if let metrics = m.metrics { printMetrics(metrics) }
            } else {
                Output.line(o)
            }
        }
    }
}

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the alias moves of a name, or what an alias pointed at at a given time.",
        discussion: """
            Prints one "type": "alias_move" object per move, oldest first: the alias, from_model, \
            to_model, when (at), who (user@host) and the action (set, promote, rollback). With --at TIME \
            it prints instead the model that NAME@ALIAS (default production) pointed at at that time, \
            or exits 66 when the alias was not set yet then.

            EXAMPLES
              ner-register history conll --table
              ner-register history conll --at 2026-05-03T00:00:00Z

            \(exitCodeHelp)
            """)

    @Argument(help: "The model name.")
    var name: String

    @Option(name: .long, help: "Only moves of this alias (with --at: the alias to look up, default production).")
    var alias: String?

    @Option(name: .long, help: ArgumentHelp("An RFC 3339 time: print the model the alias pointed at then.",
                                            valueName: "TIME"))
    var at: String?

    @Flag(name: .long, help: "Print a table for people instead of NDJSON.")
    var table = false

    @OptionGroup var options: RegistryOptions

    func run() throws {
        try runTool("ner-register", options.common) { _ in
            let registry = try options.open(readOnly: true)
            if let at {
                guard let date = Timestamp.parse(at) else {
                    throw ToolError.usage("--at \(at): not an RFC 3339 time (e.g. 2026-05-03T12:00:00Z)")
                }
                let alias = self.alias ?? "production"
                guard let m = try registry.aliasTarget(name: name, alias: alias, at: date) else {
                    throw ToolError.noInput("\(name)@\(alias) was not set at \(at)")
                }
                Output.line(m.json)
                return
            }
            let moves = try registry.aliasHistory(name: name).filter { alias == nil || $0.alias == alias }
            if table {
                printTable(["AT", "ALIAS", "ACTION", "FROM", "TO", "WHO"], moves.map {
                    [$0.at, $0.alias, $0.action, $0.fromModel ?? "-", $0.toModel, $0.who]
                })
            } else {
                moves.forEach { Output.line($0.json) }
            }
        }
    }
}

struct Best: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report the best model of a sweep by a metric.",
        discussion: """
            A sweep (ner-queue --sweep) queues many trials under one sweep_id; each registered trial \
            keeps it. `best` prints the registered model of the sweep with the highest --by metric as \
            one "type": "model" object with "metric" and "score" added (with --all, every trial, best \
            first, those lacking the metric last). --by is a dotted path into the model's metrics: \
            dev.f1 (default), test.f1, dev.precision, ...; dev.f1 also finds the trainer's \
            dev.overall.f1. A sweep without registered models is exit 66; a metric no trial has is 65. \
            `promote --sweep ID` moves an alias to the same winner.

            EXAMPLES
              ner-register best --sweep news-5f0c... --by dev.f1
              ner-register best --sweep news-5f0c... --all --table
              ner-register promote --sweep news-5f0c... --alias production

            \(exitCodeHelp)
            """)

    @Option(name: .long, help: ArgumentHelp("The sweep id (the sweep_id ner-queue --sweep printed).", valueName: "ID"))
    var sweep: String

    @Option(name: .long, help: ArgumentHelp("The metric to maximize, a dotted path into the metrics.", valueName: "METRIC"))
    var by = "dev.f1"

    @Flag(name: .long, help: "Print every trial, best first, instead of the winner only.")
    var all = false

    @Flag(name: .long, help: "Print a table for people instead of NDJSON.")
    var table = false

    @OptionGroup var options: RegistryOptions

    func run() throws {
        try runTool("ner-register", options.common) { _ in
            let registry = try options.open(readOnly: true)
            let trials = try registry.sweepModels(sweep, by: by)
            let winner = try Registry.best(of: trials, sweep: sweep, by: by)
            let ranked = all ? trials : [(winner.model, Optional(winner.score))]
            if table {
                printTable(["NAME", "VERSION", by.uppercased(), "MODEL_ID"], ranked.map {
                    [$0.0.name, String($0.0.version), $0.1.map { String(format: "%.4f", $0) } ?? "-", $0.0.modelId]
                })
                return
            }
            for (m, score) in ranked {
                var o = m.json
                o["metric"] = .string(by)
                o["score"] = score.map(JSON.double) ?? .null
                Output.line(o)
            }
        }
    }
}

// MARK: - Moving aliases

struct Alias: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Point NAME@ALIAS at a model.",
        discussion: """
            MODEL is a model id or NAME:VERSION of a registered model of NAME. The move is kept in the \
            audit (who, when, from, to); prints it as one "type": "alias_move" object, or an object with \
            "changed": false when the alias already pointed there. `latest` is implicit and cannot be set.

            EXAMPLES
              ner-register alias conll best conll:4

            \(exitCodeHelp)
            """)

    @Argument(help: "The model name.")
    var name: String

    @Argument(help: "The alias, e.g. production, staging, best.")
    var alias: String

    @Argument(help: "The model: a model id or NAME:VERSION.")
    var model: String

    @OptionGroup var options: RegistryOptions

    func run() throws {
        try runTool("ner-register", options.common) { _ in
            let registry = try options.open()
            guard let m = try registry.resolve(model) else { throw ToolError.noInput("unknown model \(clipped(model))") }
            let move = try registry.setAlias(name: name, alias: alias, modelId: m.modelId)
            Output.line(moveOutput(move, name: name, alias: alias, modelId: m.modelId))
        }
    }
}

struct Promote: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Point an alias (default production) at a model, or roll it back.",
        discussion: """
            `promote MODEL` points MODEL's name at it under --alias (default production); MODEL is NAME, \
            NAME@ALIAS, NAME:VERSION or a model id. `promote --sweep ID [--by METRIC]` promotes the \
            sweep's best model (see `best`). `promote NAME --rollback` puts back what the alias \
            pointed at before its last move; repeated rollbacks walk further back through the audit. \
            Prints the move as one "type": "alias_move" object.

            EXAMPLES
              ner-register promote conll:3
              ner-register promote conll --rollback
              ner-register promote conll:5 --alias staging
              ner-register promote --sweep conll-5f0c... --by dev.f1

            \(exitCodeHelp)
            """)

    @Argument(help: "The model to promote (with --rollback: the model name).")
    var model: String?

    @Option(name: .long, help: "The alias to move.")
    var alias = "production"

    @Flag(name: .long, help: "Put back the alias's previous target instead.")
    var rollback = false

    @Option(name: .long, help: ArgumentHelp("Promote the best model of this sweep instead of MODEL.", valueName: "ID"))
    var sweep: String?

    @Option(name: .long, help: ArgumentHelp("With --sweep: the metric to maximize.", valueName: "METRIC"))
    var by = "dev.f1"

    @OptionGroup var options: RegistryOptions

    func validate() throws {
        if (model == nil) == (sweep == nil) { throw ValidationError("give either MODEL or --sweep ID") }
        if rollback && sweep != nil { throw ValidationError("--rollback takes a model name, not --sweep") }
    }

    func run() throws {
        try runTool("ner-register", options.common) { _ in
            let registry = try options.open()
            if let sweep {
                let m = try registry.best(sweep: sweep, by: by).model
                let move = try registry.promote(modelId: m.modelId, alias: alias)
                Output.line(moveOutput(move, name: m.name, alias: alias, modelId: m.modelId))
                return
            }
            let model = self.model!
            if rollback {
                let m = try registry.rollback(name: model, alias: alias)
                let move = try registry.aliasHistory(name: model).last { $0.alias == alias }
                Output.line(moveOutput(move, name: model, alias: alias, modelId: m.modelId))
                return
            }
            guard let m = try registry.resolve(model) else { throw ToolError.noInput("unknown model \(clipped(model))") }
            let move = try registry.promote(modelId: m.modelId, alias: alias)
            Output.line(moveOutput(move, name: m.name, alias: alias, modelId: m.modelId))
        }
    }
}

// MARK: - Retention

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove a model: mark it removed and delete its artifact.",
        discussion: """
            MODEL is a model id or NAME:VERSION (never a bare name, which would follow an alias). A model \
            that an alias points at is refused (exit 1): move the alias first. The row stays, with \
            "status": "removed", so jobs and the alias audit keep their references. Prints the row.
              Only a file in $NER_HOME/artifacts whose sha256 is still the registered one is deleted; \
            any other file the row names (outside the store, or replaced since) is left, with a warning.

            EXAMPLES
              ner-register rm conll:2

            \(exitCodeHelp)
            """)

    @Argument(help: "The model: a model id or NAME:VERSION.")
    var model: String

    @OptionGroup var options: RegistryOptions

    func run() throws {
        try runTool("ner-register", options.common) { log in
            let registry = try options.open()
            let found = model.contains(":") ? try registry.resolve(model) : try registry.model(model)
            guard let m = found else {
                throw ToolError.noInput("unknown model \(model) (rm takes a model id or NAME:VERSION)")
            }
            try registry.remove(modelId: m.modelId, warn: { log.warning("\($0)") })
            if let after = try registry.model(m.modelId) { Output.line(after.json) }
        }
    }
}

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Delete the artifacts of all but the newest N models of every name.",
        discussion: """
            Keeps the N highest registered versions of every name and every model an alias points at; \
            marks the others "collected" and deletes their artifact files (as rm does: only files in \
            $NER_HOME/artifacts that still match their sha256). Prints one "type": "model" object per \
            collected model (with --dry-run, per model it would collect).

            EXAMPLES
              ner-register gc --keep 5
              ner-register gc --keep 2 --dry-run --table

            \(exitCodeHelp)
            """)

    @Option(name: .long, help: "How many of the newest models of every name to keep (required).")
    var keep: Int

    @Flag(name: .long, help: "Only print what would be collected.")
    var dryRun = false

    @Flag(name: .long, help: "Print a table for people instead of NDJSON.")
    var table = false

    @OptionGroup var options: RegistryOptions

    func validate() throws {
        if keep < 0 { throw ValidationError("--keep must be 0 or more") }
    }

    func run() throws {
        try runTool("ner-register", options.common) { log in
            let registry = try options.open()
            let collected = try registry.gc(keep: keep, dryRun: dryRun, warn: { log.warning("\($0)") })
            if table {
                printTable(["NAME", "VERSION", "STATUS", "BYTES", "ARTIFACT"], collected.map {
                    [$0.name, String($0.version), $0.status, $0.bytes.map(String.init) ?? "-", $0.artifact]
                })
            } else {
                collected.forEach { Output.line($0.json) }
            }
            let bytes = collected.reduce(0) { $0 + ($1.bytes ?? 0) }
            log.info("\(dryRun ? "would collect" : "collected") \(collected.count) models, \(bytes) bytes")
        }
    }
}

// MARK: - Jobs

struct Jobs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List training jobs and their current status.",
        discussion: """
            Prints one "type": "job" object per job the dispatcher has recorded, least recently updated \
            first: status (queued, running, trained, packed, registered, done, failed, cancelled), attempt, \
            error, backend_id (e.g. the Slurm job id) and model_id.

            EXAMPLES
              ner-register jobs --status failed --table

            \(exitCodeHelp)
            """)

    @Option(name: .long, help: "Only jobs in this status. Default: every job.")
    var status: String?

    @Flag(name: .long, help: "Print a table for people instead of NDJSON.")
    var table = false

    @OptionGroup var options: RegistryOptions

    func validate() throws {
        if let status, !Registry.jobStatuses.contains(status) {
            throw ValidationError("--status must be one of \(Registry.jobStatuses.joined(separator: ", "))")
        }
    }

    func run() throws {
        try runTool("ner-register", options.common) { _ in
            let rows = try options.open(readOnly: true).jobs(status: status)
            if table {
                printTable(["JOB_ID", "STATUS", "ATTEMPT", "UPDATED", "BACKEND_ID", "ERROR"], rows.map {
                    [$0.jobId, $0.status, String($0.attempt), $0.updatedAt, $0.backendId ?? "-", $0.error ?? ""]
                })
            } else {
                rows.forEach { Output.line($0.json) }
            }
        }
    }
}

struct JobTransitions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "Show every status change of one job.",
        discussion: """
            Prints one "type": "transition" object per status change, in order: status, attempt, at, \
            the host and pid that recorded it, and detail (the error of a failed attempt). An unknown \
            job is exit 66.

            EXAMPLES
              ner-register job conll-5f0c... --table

            \(exitCodeHelp)
            """)

    @Argument(help: "The job id.")
    var jobId: String

    @Flag(name: .long, help: "Print a table for people instead of NDJSON.")
    var table = false

    @OptionGroup var options: RegistryOptions

    func run() throws {
        try runTool("ner-register", options.common) { _ in
            let registry = try options.open(readOnly: true)
            guard try registry.job(jobId) != nil else { throw ToolError.noInput("unknown job \(clipped(jobId))") }
            let rows = try registry.transitions(jobId: jobId)
            if table {
                printTable(["AT", "STATUS", "ATTEMPT", "HOST", "PID", "DETAIL"], rows.map {
                    [$0.at, $0.status, String($0.attempt), $0.host, String($0.pid), $0.detail ?? ""]
                })
            } else {
                rows.forEach { Output.line($0.json) }
            }
        }
    }
}

// MARK: - Output helpers

func withAliases(_ m: ModelRow, _ aliases: [String]) -> JSON {
    var o = m.json
    o["aliases"] = .array(aliases.sorted().map(JSON.string))
    return o
}

func moveOutput(_ move: AliasMove?, name: String, alias: String, modelId: String) -> JSON {
    if var o = move?.json {
        o["changed"] = true
        return o
    }
    return ["schema": .int(Int64(recordSchema)), "type": "alias_move", "name": .string(name), "alias": .string(alias),
            "from_model": .string(modelId), "to_model": .string(modelId), "changed": false]
}

/// The dev F1 for tables, wherever the trainer put it (`dev.f1` or `dev.overall.f1`).
func f1(_ metrics: JSON?) -> String {
    let dev = metrics?["dev"]
    guard let v = (dev?["f1"] ?? dev?["overall"]?["f1"])?.doubleValue else { return "-" }
    return String(format: "%.4f", v)
}

/// A model's metrics for people (docs/records.md): every figure that is not a set of scores as a
/// `metrics.KEY: value` line, then one table of every scored data set (an object with "f1"; its
/// "per_type" holds the entity types), a row per type after the row of all entities.
func printMetrics(_ metrics: JSON) {
    guard let fields = metrics.objectValue else {
        Output.line("metrics: \(metrics.compactString)")
        return
    }
    func isScores(_ v: JSON) -> Bool { v["f1"]?.doubleValue != nil }
    for (k, v) in fields.sorted(by: { $0.key < $1.key }) where !isScores(v) {
        Output.line("metrics.\(k): \(v.stringValue ?? v.compactString)")
    }
    func cells(_ set: String, _ type: String, _ s: JSON, support: JSON?) -> [String] {
        let rate = { (k: String) in s[k]?.doubleValue.map { String(format: "%.4f", $0) } ?? "-" }
        return [set, type, rate("precision"), rate("recall"), rate("f1"), support?.intValue.map(String.init) ?? "-"]
    }
    var rows: [[String]] = []
    for (set, scores) in fields.sorted(by: { $0.key < $1.key }) where isScores(scores) {
        rows.append(cells(set, "all", scores, support: scores["gold_count"]))
        for (type, s) in (scores["per_type"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            rows.append(cells(set, type, s, support: s["support"]))
        }
    }
    guard !rows.isEmpty else { return }
    Output.line("")
    printTable(["SET", "TYPE", "PRECISION", "RECALL", "F1", "SUPPORT"], rows)
}

func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for r in rows {
        for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) }
    }
    for r in [header] + rows {
        let cells = r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
        Output.line(cells.joined(separator: "  "))
    }
}

NERRegister.main()
