import ArgumentParser
import Foundation
import NERArtifact
import NERCLI
import NERCore
import NERRegistry


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
                     f1(m), m.registeredAt, m.modelId]
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
            `promote --sweep ID` moves an alias to the same winner. --summary prints instead one \
            "type": "sweep_summary" object with the mean, sample standard deviation, minimum and \
            maximum of dev.f1, test.f1 and --by over the registered trials: for the seeds of one job \
            (ner-queue --seeds), where one seed's score misleads on small data.

            EXAMPLES
              ner-register best --sweep news-5f0c... --by dev.f1
              ner-register best --sweep news-5f0c... --all --table
              ner-register best --sweep news-5f0c... --summary --table
              ner-register promote --sweep news-5f0c... --alias production

            \(exitCodeHelp)
            """)

    @Option(name: .long, help: ArgumentHelp("The sweep id (the sweep_id ner-queue --sweep printed).", valueName: "ID"))
    var sweep: String

    @Option(name: .long, help: ArgumentHelp("The metric to maximize, a dotted path into the metrics.", valueName: "METRIC"))
    var by = "dev.f1"

    @Flag(name: .long, help: "Print every trial, best first, instead of the winner only.")
    var all = false

    @Flag(name: .long, help: "Print the mean and standard deviation of the trials' scores instead.")
    var summary = false

    @Flag(name: .long, help: "Print a table for people instead of NDJSON.")
    var table = false

    @OptionGroup var options: RegistryOptions

    func run() throws {
        try runTool("ner-register", options.common) { _ in
            let registry = try options.open(readOnly: true)
            let trials = try registry.sweepModels(sweep, by: by)
            let winner = try Registry.best(of: trials, sweep: sweep, by: by)
            if summary { return printSummary(trials.map(\.model), winner: winner.model) }
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

    func printSummary(_ models: [ModelRow], winner: ModelRow) {
        var stats: [String: JSON] = [:]
        var rows: [[String]] = []
        for metric in Array(Set(["dev.f1", "test.f1", by])).sorted() {
            let values = models.compactMap { $0.metric(metric) }
            guard !values.isEmpty else { continue }
            let n = Double(values.count), mean = values.reduce(0, +) / n
            let std = values.count > 1 ? (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)).squareRoot() : 0
            stats[metric] = ["n": .int(Int64(values.count)), "mean": .double(mean), "std": .double(std),
                             "min": .double(values.min()!), "max": .double(values.max()!)]
            rows.append([metric, String(values.count), String(format: "%.4f ± %.4f", mean, std),
                         String(format: "%.4f", values.min()!), String(format: "%.4f", values.max()!)])
        }
        if table { return printTable(["METRIC", "N", "MEAN ± STD", "MIN", "MAX"], rows) }
        Output.line(["schema": .int(Int64(recordSchema)), "type": "sweep_summary", "sweep_id": .string(sweep),
                     "trials": .int(Int64(models.count)), "metrics": .object(stats), "best": .string(winner.modelId), "by": .string(by)])
    }
}
