import ArgumentParser
import Foundation
import NERArtifact
import NERCLI
import NERCore
import NEREngine

struct Tool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner-pack",
        abstract: "Pack trained models into verified tarballs in the artifact store.",
        usage: """
            ner-pack [--compression zstd|gzip] < records.ndjson
            ner-pack DIR [--name NAME] [--model-id ID]
            ner-pack --verify FILE
            ner-pack --unpack FILE --into DIR
            """,
        discussion: """
            Turns a model folder into one tarball, $NER_HOME/artifacts/MODEL_ID.tar.zst (libarchive; \
            .tar.gz with --compression gzip or when libarchive lacks zstd). The tarball holds the model \
            files and a MANIFEST.json (format version, model id, name, toolchain version, creation time, \
            and every file's path, size and sha256). It is written under a temp name, fsynced, read back \
            and verified, then moved into place. Artifacts are named by model id, never by name alone; \
            packing an id that already exists reuses the tarball when the files are the same and fails \
            (exit 1) when they differ: an artifact is never overwritten. Temp files left in artifacts/ \
            by a packer that was killed are removed once they are a day old.

            READS
              Without DIR, --verify or --unpack: NDJSON records on stdin, one JSON object per line (the \
            output of ner-train). All of stdin is read and checked before anything is packed, so a \
            malformed line (exit 65) or a missing model_dir (exit 66) writes nothing.
              The model id is the record's model_id, else the "id" in MODEL_DIR/model.json, else \
            NAME-UUID with the record's name (or model.json's, or the folder's name).

            WRITES
              For each record with a model_dir: the same record with artifact (absolute path), sha256 \
            (of the tarball), bytes, model_id and status "packed" added. Other fields pass through \
            untouched; records without a model_dir, or with status "failed", pass through unchanged.
              With DIR: one such record for that folder.
              --verify: {"artifact", "ok": true, "model_id", "files", "sha256", "bytes"}; a tampered \
            tarball exits 65 with one line naming the file inside it.
              --unpack: the files and MANIFEST.json in a new folder DIR (made under a temp name, \
            verified, then moved into place), and {"artifact", "unpacked", "model_id", "files", "ok"}. \
            Absolute paths, '..', links, devices and files not in the manifest are refused.
              A model folder (its model.json has a "magic") is checked before it is packed: every \
            model.json field in range, the weights' tensor table, no NaN or infinity in any weight \
            (docs/model-format.md); a model that fails is exit 65 and nothing is packed.

            EXAMPLES
              ner-train --job job.json | ner-pack | ner-register
              ner-pack runs/conll-best --name conll
              ner-pack --verify ~/.ner/artifacts/conll-0f6c....tar.zst
              ner-pack --unpack conll.tar.zst --into /scratch/conll-model

            \(exitCodeHelp)
            """,
        version: Toolchain.version)

    @Argument(help: ArgumentHelp("A model folder to pack directly instead of reading records on stdin.",
                                 valueName: "DIR"))
    var modelDir: String?

    @Option(help: ArgumentHelp("With DIR: the model's name. Default: model.json's name, else the folder's name.",
                               valueName: "NAME"))
    var name: String?

    @Option(name: .customLong("model-id"),
            help: ArgumentHelp("With DIR: the model id. Default: model.json's id, else NAME-UUID.", valueName: "ID"))
    var modelId: String?

    @Option(help: ArgumentHelp("Compression: zstd or gzip (gzip also when libarchive lacks zstd).",
                               valueName: "KIND"))
    var compression: String = Compression.zstd.rawValue

    @Option(name: .customLong("verify"),
            help: ArgumentHelp("Check a tarball against its manifest and print one record. Default: off.",
                               valueName: "FILE"))
    var verifyPath: String?

    @Option(name: .customLong("unpack"),
            help: ArgumentHelp("Safely unpack a tarball into the new folder given by --into. Default: off.",
                               valueName: "FILE"))
    var unpackPath: String?

    @Option(help: ArgumentHelp("With --unpack: the folder to create (must not exist). No default.",
                               valueName: "DIR"))
    var into: String?

    @OptionGroup var common: CommonOptions

    func run() throws {
        try runTool("ner-pack", common) { log in
            guard let kind = Compression(rawValue: compression) else {
                throw ToolError.usage("--compression must be zstd or gzip, got \(compression)")
            }
            let modes = [modelDir != nil, verifyPath != nil, unpackPath != nil].filter { $0 }.count
            guard modes <= 1 else { throw ToolError.usage("give at most one of DIR, --verify and --unpack") }
            if into != nil && unpackPath == nil { throw ToolError.usage("--into goes with --unpack") }
            if (name != nil || modelId != nil) && modelDir == nil {
                throw ToolError.usage("--name and --model-id go with DIR; records on stdin carry their own")
            }

            if let file = verifyPath {
                let r = try Artifact.inspect(path: file)
                Output.line(["artifact": .string(r.path), "ok": true, "model_id": .string(r.manifest.modelId),
                             "files": .int(Int64(r.manifest.files.count)), "sha256": .string(r.sha256),
                             "bytes": .int(r.bytes)])
                return
            }
            if let file = unpackPath {
                guard let into else { throw ToolError.usage("--unpack needs --into DIR") }
                let manifest = try Artifact.unpack(path: file, into: into)
                Output.line(["artifact": .string(absolute(file)), "unpacked": .string(absolute(into)),
                             "model_id": .string(manifest.modelId), "files": .int(Int64(manifest.files.count)),
                             "ok": true])
                return
            }

            let home = common.resolvedHome
            let stage = PackStage(artifactsDir: home.artifacts, compression: kind)
            if let dir = modelDir {
                guard isDirectory(dir) else {
                    if fileExists(dir) { throw ToolError.usage("\(dir): not a folder") }
                    throw ToolError.noInput("\(dir): no such folder")
                }
                try checkModel(dir, at: nil)
                try home.ensureLayout()
                let record = try stage.packFolder(dir, name: name, modelId: modelId)
                log.info("packed \(dir) into \(record["artifact"]?.stringValue ?? "")")
                Output.record(record)
                return
            }

            var reader = NDJSONReader(LineReader())
            let inputs = try PackStage.readAll(&reader)
            for input in inputs where PackStage.consumes(input.record) {
                try checkModel(input.record["model_dir"]!.stringValue!, at: input.context)
            }
            if inputs.contains(where: { PackStage.consumes($0.record) }) { try home.ensureLayout() }
            for input in inputs {
                guard PackStage.consumes(input.record) else {
                    // Already reported by the stage that made it; only packed records are new transitions.
                    Output.line(input.record)
                    continue
                }
                let out = try stage.process(input)
                log.info("packed \(input.record["model_dir"]?.stringValue ?? "") into \(out["artifact"]?.stringValue ?? "")")
                Output.record(out)
            }
        }
    }
}

/// A folder whose model.json carries a `magic` is a model: it is loaded and checked in full (every
/// field's range, the tensor table, no NaN or infinity in any weight) before it may enter the store.
/// Other folders are packed as they are.
func checkModel(_ dir: String, at place: String?) throws {
    guard let data = FileManager.default.contents(atPath: dir + "/model.json"),
          let json = try? JSON.parse(data), json["magic"] != nil else { return }
    do {
        try NERModel.check(dir)
    } catch let e as ToolError {
        throw place.map { ToolError(e.status, "\($0): \(e.message)") } ?? e
    }
}

Tool.main()
