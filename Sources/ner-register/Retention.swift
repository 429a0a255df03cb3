import ArgumentParser
import Foundation
import NERArtifact
import NERCLI
import NERCore
import NERRegistry


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
