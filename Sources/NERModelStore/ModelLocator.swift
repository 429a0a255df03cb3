import Foundation
import NERArtifact
import NERCore
import NERRegistry

/// Finds the model folder a `--model` argument names (docs/records.md): a model folder, a tarball, or a
/// registry reference (`NAME` = its `production` alias or else the latest version, `NAME@ALIAS`,
/// `NAME:VERSION`, a model id). Tarballs are verified and unpacked once into `cache/models/`, so
/// every process on a node maps the same files.
public struct ModelLocator {
    public let home: Home

    public init(home: Home) { self.home = home }

    public struct Located: Sendable {
        /// The folder holding `model.json` and the weights.
        public var directory: String
        /// The registry's model id, when the model came from the registry.
        public var modelId: String?
        /// The registry row's version and name, when known.
        public var name: String?
        public var version: Int?
    }

    /// What to serve when no `--model` is given (docs/records.md, "The default model"): `NER_MODEL`;
    /// else the one name whose `production` alias is set; else the registry's only name. Anything
    /// else is a usage error that lists the candidates and the ways to choose.
    public func defaultSpec(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let named = environment["NER_MODEL"], !named.isEmpty { return named }
        let ways = "choose with --model NAME, NER_MODEL=NAME, or `ner-register promote NAME`"
        guard fileExists(home.registry) else {
            throw ToolError.usage("no model given and no registry at \(home.registry); \(ways)")
        }
        let names = try Registry(path: home.registry, readOnly: true).servableNames()
        if names.production.count == 1 { return names.production[0] }
        if names.production.isEmpty && names.all.count == 1 { return names.all[0] }
        if names.all.isEmpty {
            throw ToolError.usage("no model given and none registered in \(home.registry); \(ways)")
        }
        let candidates = names.production.isEmpty ? names.all : names.production
        let listed = candidates.prefix(10).map { clipped($0) }.joined(separator: ", ") + (candidates.count > 10 ? ", ..." : "")
        let which = names.production.isEmpty ? "registered names" : "names with a production alias"
        throw ToolError.usage("no model given and \(candidates.count) \(which) (\(listed)); \(ways)")
    }

    public func locate(_ spec: String) throws -> Located {
        if isDirectory(spec) { return Located(directory: absolute(spec)) }
        if fileExists(spec) { return Located(directory: try unpackCached(absolute(spec))) }
        let row: ModelRow?
        if fileExists(home.registry) {
            row = try Registry(path: home.registry, readOnly: true).resolve(spec)
        } else {
            row = nil
        }
        guard let row else {
            throw ToolError.noInput("no model '\(clipped(spec))': not a model folder, a tarball, or a model registered in \(home.registry)")
        }
        guard row.status == "registered" else {
            throw ToolError.noInput("model \(row.modelId) is \(row.status); its artifact is gone")
        }
        let dir = try unpackCached(row.artifact, key: row.modelId)
        return Located(directory: dir, modelId: row.modelId, name: row.name, version: row.version)
    }

    /// Unpacks `tarball` into `cache/models/KEY` unless it is already there. Racing processes
    /// each unpack into their own temp folder; the first rename wins and the others use it.
    func unpackCached(_ tarball: String, key: String? = nil) throws -> String {
        let cacheKey = try key ?? String(Artifact.sha256(ofFile: tarball).prefix(32))
        let root = home.cache + "/models"
        try makeDirectory(root)
        let dest = root + "/" + cacheKey
        if isDirectory(dest) { return dest }
        do {
            _ = try Artifact.unpack(path: tarball, into: dest)
        } catch {
            if isDirectory(dest) { return dest }
            throw error
        }
        return dest
    }
}
