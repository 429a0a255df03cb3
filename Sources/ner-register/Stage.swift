import ArgumentParser
import Foundation
import NERArtifact
import NERCLI
import NERCore
import NERRegistry


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
