import Foundation
import GRDB
import NERArtifact
import NERCore
#if canImport(Glibc)
import Glibc
#endif

extension Registry {
    /// Registers the model a packed record describes. The record must carry `artifact` (an existing
    /// file), `sha256` and `name`, and `model_id` (ner-register reads it from the artifact's
    /// manifest); `metrics`, `job_id`, `parent_id` (the model a retraining started from) and
    /// `sweep_id` are stored when present. An artifact outside the store is copied into it first
    /// (see `adopt`), so the registry only ever names files in the store.
    ///
    /// Idempotent: a record whose `model_id`, `sha256` or `job_id` is already registered returns that
    /// row with `created == false` (a collected or removed model whose artifact is back becomes `registered`
    /// again). The version is assigned inside the same write transaction, so concurrent registrations
    /// of one name get 1, 2, 3, ... with no gap and no duplicate.
    public func register(record: JSON) throws -> (model: ModelRow, created: Bool) {
        guard case .object = record else { throw ToolError.data("record is not a JSON object") }
        func field(_ key: String) throws -> String {
            guard let v = record[key]?.stringValue, !v.isEmpty else {
                throw ToolError.data("record has no \(key)")
            }
            return v
        }
        let artifactGiven = try field("artifact")
        let sha = try field("sha256").lowercased()
        let name = try field("name")
        let modelId = try field("model_id")
        guard sha.count == 64, sha.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw ToolError.data("record sha256 '\(sha)' is not 64 hex digits")
        }
        do { try Job.validateName(name) } catch let e as ToolError { throw ToolError.data("record: \(e.message)") }
        var st = stat()
        guard stat(absolute(artifactGiven), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw ToolError.noInput("\(artifactGiven): no such artifact file")
        }
        let bytes = record["bytes"]?.intValue ?? Int(st.st_size)
        let now = Timestamp.now()
        let artifact = try adopt(absolute(artifactGiven), sha256: sha, modelId: modelId)

        return try write { db in
            if let existing = try fetchModel(db, id: modelId) {
                if let s = existing.sha256, s != sha {
                    throw ToolError.data("model \(modelId) is already registered with another artifact "
                        + "(sha256 \(s.prefix(12))..., this record has \(sha.prefix(12))...)")
                }
                return (try revive(db, existing, artifact: artifact, now: now), false)
            }
            if let existing = try Row.fetchOne(db, sql: "SELECT * FROM models WHERE sha256 = ?", arguments: [sha]) {
                return (try revive(db, ModelRow(row: existing), artifact: artifact, now: now), false)
            }
            // One job gives one model: a retried attempt (or an orphaned run that finished after its
            // dispatcher died) registering a second artifact for the same job gets the first model.
            if let jobId = record["job_id"]?.stringValue,
               let existing = try Row.fetchOne(db, sql: "SELECT * FROM models WHERE job_id = ? ORDER BY version LIMIT 1",
                                               arguments: [jobId]) {
                return (ModelRow(row: existing), false)
            }
            let version = (try Int.fetchOne(db, sql: "SELECT MAX(version) FROM models WHERE name = ?",
                                            arguments: [name]) ?? 0) + 1
            var stored = record
            stored["artifact"] = .string(artifact)
            stored["sha256"] = .string(sha)
            stored["model_id"] = .string(modelId)
            stored["version"] = .int(Int64(version))
            stored["status"] = "registered"
            stored["registered_at"] = .string(now)
            let metrics = record["metrics"].flatMap { $0.isNull ? nil : $0.compactString }
            try db.execute(sql: """
                INSERT INTO models (model_id, name, version, status, job_id, parent_id, sweep_id, artifact, sha256,
                                    bytes, metrics, record, created_at, registered_at)
                VALUES (?, ?, ?, 'registered', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [modelId, name, version, record["job_id"]?.stringValue, record["parent_id"]?.stringValue,
                                 record["sweep_id"]?.stringValue, artifact, sha, bytes, metrics, stored.compactString,
                                 record["created_at"]?.stringValue ?? now, now])
            return (try fetchModel(db, id: modelId)!, true)
        }
    }

    /// The artifact store: `artifacts/` beside the registry file (`$NER_HOME/artifacts`).
    public var artifactsDir: String { (path as NSString).deletingLastPathComponent + "/artifacts" }

    /// Where the registry keeps `artifact`: the file itself when it is a regular file directly in the
    /// store, else a copy made there as `MODEL_ID.tar.zst` (or `.tar.gz`) whose sha256 must be
    /// `sha256` (docs/artifacts.md). A file already there under that name is used only when it holds
    /// the same bytes.
    func adopt(_ artifact: String, sha256 sha: String, modelId: String) throws -> String {
        if isInStore(artifact) { return artifact }
        do { try Artifact.validateModelId(modelId) } catch let e as ToolError { throw ToolError.data("record: \(e.message)") }
        try makeDirectory(artifactsDir)
        let gzip = artifact.hasSuffix(".tar.gz") || artifact.hasSuffix(".tgz")
        let dest = artifactsDir + "/" + modelId + (gzip ? ".tar.gz" : ".tar.zst")
        if !fileExists(dest) {
            do {
                try Artifact.copy(artifact, to: dest, sha256: sha)
                return dest
            } catch where !fileExists(dest) {
                throw error
            }
        }
        // Another registration of the same model copied it first, or the name is taken.
        guard isInStore(dest), (try? Artifact.sha256(ofFile: dest)) == sha else {
            throw ToolError.data("\(dest): the artifact store already holds another file for model \(modelId)")
        }
        return dest
    }

    /// Whether `path` is a regular file (not a link) directly in the artifact store.
    func isInStore(_ path: String) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG,
              let parent = canonicalPath((path as NSString).deletingLastPathComponent),
              let store = canonicalPath(artifactsDir) else { return false }
        return parent == store
    }

    /// A model that gc collected (or rm removed) is registered again when its verified artifact
    /// comes back; its version and history stay as they were.
    private func revive(_ db: Database, _ model: ModelRow, artifact: String, now: String) throws -> ModelRow {
        guard model.status != "registered" else { return model }
        try db.execute(sql: "UPDATE models SET status = 'registered', artifact = ?, registered_at = ? WHERE model_id = ?",
                       arguments: [artifact, now, model.modelId])
        return try fetchModel(db, id: model.modelId)!
    }

    func fetchModel(_ db: Database, id: String) throws -> ModelRow? {
        try Row.fetchOne(db, sql: "SELECT * FROM models WHERE model_id = ?", arguments: [id]).map(ModelRow.init)
    }

    public func model(_ id: String) throws -> ModelRow? {
        try read { db in try fetchModel(db, id: id) }
    }

    /// Every model (any status), by name then version.
    public func models(name: String? = nil) throws -> [ModelRow] {
        try read { db in
            if let name {
                return try Row.fetchAll(db, sql: "SELECT * FROM models WHERE name = ? ORDER BY version",
                                        arguments: [name]).map(ModelRow.init)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM models ORDER BY name, version").map(ModelRow.init)
        }
    }

    /// Finds a model the way `--model` names one (docs/records.md): a model id; `NAME@ALIAS` (`latest` is
    /// the highest registered version); `NAME:VERSION`; or `NAME` alone, which is alias `production`
    /// when set, else latest. Nil when nothing matches.
    public func resolve(_ spec: String) throws -> ModelRow? {
        try read { db in try resolve(db, spec) }
    }

    func resolve(_ db: Database, _ spec: String) throws -> ModelRow? {
        if let m = try fetchModel(db, id: spec) { return m }
        if let at = spec.firstIndex(of: "@") {
            let name = String(spec[..<at]), alias = String(spec[spec.index(after: at)...])
            return alias == "latest" ? try latest(db, name: name) : try aliasTarget(db, name: name, alias: alias)
        }
        if let colon = spec.lastIndex(of: ":"), let version = Int(spec[spec.index(after: colon)...]) {
            return try Row.fetchOne(db, sql: "SELECT * FROM models WHERE name = ? AND version = ?",
                                    arguments: [String(spec[..<colon]), version]).map(ModelRow.init)
        }
        return try aliasTarget(db, name: spec, alias: "production") ?? latest(db, name: spec)
    }

    func latest(_ db: Database, name: String) throws -> ModelRow? {
        try Row.fetchOne(db, sql: """
            SELECT * FROM models WHERE name = ? AND status = 'registered' ORDER BY version DESC LIMIT 1
            """, arguments: [name]).map(ModelRow.init)
    }

    /// Marks a model `removed` and deletes its artifact file (only as `deleteArtifact` allows; `warn`
    /// says why a file was kept). A model an alias points at is refused (move the alias first), so
    /// `production` never names a model whose artifact is gone.
    public func remove(modelId: String, warn: (String) -> Void = { _ in }) throws {
        let model: ModelRow = try write { db in
            guard let m = try fetchModel(db, id: modelId) else {
                throw ToolError.noInput("unknown model \(modelId)")
            }
            let aliases = try String.fetchAll(db, sql: "SELECT alias FROM aliases WHERE model_id = ? ORDER BY alias",
                                              arguments: [modelId])
            if !aliases.isEmpty {
                throw ToolError.failure("model \(modelId) is \(m.name)@\(aliases.joined(separator: ", @")); "
                    + "move the alias before removing it")
            }
            try db.execute(sql: "UPDATE models SET status = 'removed' WHERE model_id = ?", arguments: [modelId])
            return m
        }
        // The row is marked first: a crash here leaves an orphan file, never a registered model
        // without its artifact.
        try deleteArtifact(of: model, warn: warn)
    }

    /// Keeps the `keep` newest registered models of every name and every model an alias points at;
    /// marks the others `collected` and deletes their artifact files (as `remove` does). Returns the
    /// collected models (with `dryRun`, the ones it would collect, unchanged).
    public func gc(keep: Int, dryRun: Bool = false, warn: (String) -> Void = { _ in }) throws -> [ModelRow] {
        guard keep >= 0 else { throw ToolError.usage("gc --keep must be 0 or more, got \(keep)") }
        let victims: [ModelRow] = try write { db in
            let aliased = try Set(String.fetchAll(db, sql: "SELECT model_id FROM aliases"))
            let rows = try Row.fetchAll(db, sql: """
                SELECT * FROM models WHERE status = 'registered' ORDER BY name, version DESC
                """).map(ModelRow.init)
            var seen: [String: Int] = [:]
            var out: [ModelRow] = []
            for m in rows {
                let rank = seen[m.name, default: 0]
                seen[m.name] = rank + 1
                if rank >= keep && !aliased.contains(m.modelId) { out.append(m) }
            }
            if dryRun { return out }
            for m in out {
                try db.execute(sql: "UPDATE models SET status = 'collected' WHERE model_id = ?", arguments: [m.modelId])
            }
            return try out.map { try fetchModel(db, id: $0.modelId)! }
        }
        if !dryRun {
            for m in victims { try deleteArtifact(of: m, warn: warn) }
        }
        return victims
    }

    /// Deletes a model's artifact, but only a regular file directly in the store whose sha256 is still
    /// the model's: a row registered elsewhere, or a file replaced since, is left alone. The file is
    /// checked to be the same one (device, inode, size, time) before and after hashing.
    private func deleteArtifact(of model: ModelRow, warn: (String) -> Void) throws {
        let path = model.artifact
        var before = stat()
        guard lstat(path, &before) == 0 else { return }
        guard isInStore(path) else {
            return warn("\(path): not deleted: it is outside the artifact store \(artifactsDir)")
        }
        guard let sha = model.sha256, (try? Artifact.sha256(ofFile: path)) == sha else {
            return warn("\(path): not deleted: its sha256 is no longer the one registered for \(model.modelId)")
        }
        var after = stat()
        guard lstat(path, &after) == 0, after.st_dev == before.st_dev, after.st_ino == before.st_ino,
              after.st_size == before.st_size, after.st_mtim.tv_sec == before.st_mtim.tv_sec,
              after.st_mtim.tv_nsec == before.st_mtim.tv_nsec else {
            return warn("\(path): not deleted: it changed while being checked")
        }
        if unlink(path) != 0 && errno != ENOENT {
            throw ToolError.failure("\(path): cannot delete the artifact (\(errnoString())); the registry already "
                + "marks it gone, delete the file by hand")
        }
        AtomicFile.syncDirectory((path as NSString).deletingLastPathComponent)
    }
}

/// `path` with every link resolved, nil when it does not exist.
func canonicalPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}
