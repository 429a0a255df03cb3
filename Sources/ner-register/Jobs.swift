import ArgumentParser
import Foundation
import NERArtifact
import NERCLI
import NERCore
import NERRegistry


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
