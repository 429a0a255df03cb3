import ArgumentParser
import Foundation
import NERArtifact
import NERCLI
import NERCore
import NERRegistry


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
