import Foundation
import NERCore

/// The `ner-pack` pipeline stage (docs/records.md): records with a `model_dir` come out with
/// `artifact`, `sha256`, `bytes`, `model_id` and `status: "packed"` added; every other field, and every
/// record it does not consume, passes through untouched.
public struct PackStage {
    public var artifactsDir: String
    public var compression: Compression

    public init(artifactsDir: String, compression: Compression = .zstd) {
        self.artifactsDir = artifactsDir
        self.compression = compression
    }

    /// One input record and where it came from (`stdin:3`), for errors that point.
    public struct Input {
        public var record: JSON
        public var context: String
    }

    /// Reads every record before packing anything, so a malformed line anywhere (exit 65) or a missing
    /// model folder (exit 66) leaves the artifact store untouched.
    public static func readAll(_ reader: inout NDJSONReader) throws -> [Input] {
        var inputs: [Input] = []
        while let record = try reader.next() {
            let input = Input(record: record, context: "\(reader.lines.name):\(reader.lines.lineNumber)")
            try check(input)
            inputs.append(input)
        }
        return inputs
    }

    /// Whether this stage packs the record: it names a model folder and did not fail upstream.
    public static func consumes(_ record: JSON) -> Bool {
        record["model_dir"] != nil && record["status"]?.stringValue != "failed"
    }

    /// The checks that need no writing: model_dir is a string naming an existing folder, model_id
    /// (when given) is a usable id.
    public static func check(_ input: Input) throws {
        let record = input.record
        guard consumes(record) else { return }
        guard let dir = record["model_dir"]?.stringValue, !dir.isEmpty else {
            throw ToolError.data("\(input.context): model_dir must be a non-empty string")
        }
        guard fileExists(dir) else { throw ToolError.noInput("\(input.context): model_dir \(dir): no such folder") }
        guard isDirectory(dir) else { throw ToolError.data("\(input.context): model_dir \(dir): not a folder") }
        if let id = record["model_id"], !id.isNull {
            guard let s = id.stringValue else { throw ToolError.data("\(input.context): model_id must be a string") }
            do { try Artifact.validateModelId(s) } catch let e as ToolError {
                throw ToolError.data("\(input.context): \(e.message)")
            }
        }
    }

    /// Packs a consumed record and returns it enriched; other records come back unchanged.
    public func process(_ input: Input) throws -> JSON {
        let record = input.record
        guard Self.consumes(record), let dir = record["model_dir"]?.stringValue else { return record }
        do {
            let (id, name) = try Self.identity(modelDir: dir, modelId: record["model_id"]?.stringValue,
                                               name: record["name"]?.stringValue)
            let packed = try Artifact.pack(modelDir: dir, modelId: id, name: name, into: artifactsDir,
                                           compression: compression)
            return Self.enrich(record, with: packed)
        } catch let e as ToolError {
            throw ToolError(e.status, "\(input.context): \(e.message)")
        }
    }

    /// Packs a folder named on the command line and returns the record describing it.
    public func packFolder(_ dir: String, name: String?, modelId: String?) throws -> JSON {
        let (id, resolvedName) = try Self.identity(modelDir: dir, modelId: modelId, name: name)
        let packed = try Artifact.pack(modelDir: dir, modelId: id, name: resolvedName, into: artifactsDir,
                                       compression: compression)
        var record: JSON = ["schema": .int(Int64(recordSchema)), "model_dir": .string(absolute(dir)),
                            "name": .string(resolvedName)]
        record = Self.enrich(record, with: packed)
        return record
    }

    static func enrich(_ record: JSON, with packed: PackResult) -> JSON {
        var out = record
        out["artifact"] = .string(packed.path)
        out["sha256"] = .string(packed.sha256)
        out["bytes"] = .int(packed.bytes)
        out["model_id"] = .string(packed.manifest.modelId)
        out["status"] = "packed"
        return out
    }

    /// The model id and name: the given id, else the `id` in `<dir>/model.json`, else `<name>-<uuid>`;
    /// the name is the given one, else model.json's `name`, else the folder's name.
    public static func identity(modelDir: String, modelId: String?, name: String?) throws -> (id: String, name: String) {
        let info = modelInfo(modelDir)
        let resolvedName = name ?? info?["name"]?.stringValue ?? (absolute(modelDir) as NSString).lastPathComponent
        if let id = modelId ?? info?["id"]?.stringValue {
            try Artifact.validateModelId(id)
            return (id, resolvedName)
        }
        let id = Job.makeId(name: resolvedName)
        do {
            try Artifact.validateModelId(id)
        } catch {
            throw ToolError.usage("cannot make a model id from the name '\(resolvedName)'; give a name of letters, digits, '.', '_' or '-'")
        }
        return (id, resolvedName)
    }

    /// `model.json` of the folder, when it is there and is a JSON object. The packer does not need to
    /// understand it, so an unreadable one only means it offers no id or name.
    private static func modelInfo(_ dir: String) -> JSON? {
        guard let data = FileManager.default.contents(atPath: dir + "/model.json"),
              let json = try? JSON.parse(data), json.objectValue != nil else { return nil }
        return json
    }
}
