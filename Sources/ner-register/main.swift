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

    // Declared here as well, so they may come before the subcommand (`ner-register --home DIR
    // list`), as git and kubectl users type them; the subcommand receives them either way.
    @OptionGroup var options: RegistryOptions
}

NERRegister.main()
