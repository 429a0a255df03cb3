import Foundation
import GRDB
import NERCore

extension Registry {
    /// Points `name@alias` at a model and appends the move to the audit. The model must be a
    /// registered model of that name. Returns the move, or nil when the alias already pointed there.
    @discardableResult
    public func setAlias(name: String, alias: String, modelId: String, action: String = "set", who: String? = nil) throws -> AliasMove? {
        try Registry.validateAlias(alias)
        guard ["set", "promote", "rollback"].contains(action) else {
            throw ToolError.usage("alias action must be set, promote or rollback, got \(action)")
        }
        return try write { db in try moveAlias(db, name: name, alias: alias, modelId: modelId, action: action, who: who) }
    }

    /// Points the model's name at it under `alias` (default `production`). `who` names the mover in
    /// the audit (default `user@host`; the web console gives its signed-in user's name).
    @discardableResult
    public func promote(modelId: String, alias: String = "production", who: String? = nil) throws -> AliasMove? {
        try Registry.validateAlias(alias)
        return try write { db in
            guard let m = try fetchModel(db, id: modelId) else { throw ToolError.noInput("unknown model \(modelId)") }
            return try moveAlias(db, name: m.name, alias: alias, modelId: modelId, action: "promote", who: who)
        }
    }

    /// Puts back what `name@alias` pointed at before its last move. The audit is read as a stack:
    /// every set or promote pushes, every rollback pops, so repeated rollbacks walk further back.
    public func rollback(name: String, alias: String = "production", who: String? = nil) throws -> ModelRow {
        try Registry.validateAlias(alias)
        return try write { db in
            let moves = try Row.fetchAll(db, sql: "SELECT * FROM alias_audit WHERE name = ? AND alias = ? ORDER BY id",
                                         arguments: [name, alias]).map(AliasMove.init)
            var stack: [String] = []
            for m in moves {
                if m.action == "rollback" {
                    if !stack.isEmpty { stack.removeLast() }
                    if stack.last != m.toModel { stack.append(m.toModel) }
                } else {
                    stack.append(m.toModel)
                }
            }
            guard stack.count >= 2 else {
                throw ToolError.failure("\(name)@\(alias) has no earlier target to roll back to")
            }
            let target = stack[stack.count - 2]
            _ = try moveAlias(db, name: name, alias: alias, modelId: target, action: "rollback", who: who)
            return try fetchModel(db, id: target)!
        }
    }

    /// Every alias move of a name, oldest first.
    public func aliasHistory(name: String) throws -> [AliasMove] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM alias_audit WHERE name = ? ORDER BY id", arguments: [name])
                .map(AliasMove.init)
        }
    }

    /// The current aliases of a name (alias → model id).
    public func aliases(name: String) throws -> [String: String] {
        try read { db in
            var out: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT alias, model_id FROM aliases WHERE name = ?", arguments: [name]) {
                out[row["alias"]] = row["model_id"]
            }
            return out
        }
    }

    /// What `name@alias` pointed at at time `date` ("what was in production on 3 May"), from the
    /// audit; nil when the alias was not set yet.
    public func aliasTarget(name: String, alias: String, at date: Date) throws -> ModelRow? {
        try read { db in
            let moves = try Row.fetchAll(db, sql: "SELECT * FROM alias_audit WHERE name = ? AND alias = ? ORDER BY id",
                                         arguments: [name, alias]).map(AliasMove.init)
            let before = moves.last { move in
                guard let t = Timestamp.parse(move.at) else { return false }
                return t <= date
            }
            return try before.flatMap { try fetchModel(db, id: $0.toModel) }
        }
    }

    func aliasTarget(_ db: Database, name: String, alias: String) throws -> ModelRow? {
        try Row.fetchOne(db, sql: """
            SELECT models.* FROM aliases JOIN models USING (model_id) WHERE aliases.name = ? AND aliases.alias = ?
            """, arguments: [name, alias]).map(ModelRow.init)
    }

    private func moveAlias(_ db: Database, name: String, alias: String, modelId: String, action: String,
                           who: String?) throws -> AliasMove? {
        guard let m = try fetchModel(db, id: modelId) else { throw ToolError.noInput("unknown model \(modelId)") }
        guard m.name == name else {
            throw ToolError.usage("model \(modelId) is a model of \(m.name), not of \(name)")
        }
        guard m.status == "registered" else {
            throw ToolError.failure("model \(modelId) is \(m.status) (its artifact is gone); register it again first")
        }
        let from = try String.fetchOne(db, sql: "SELECT model_id FROM aliases WHERE name = ? AND alias = ?",
                                       arguments: [name, alias])
        if from == modelId { return nil }
        let now = Timestamp.now()
        try db.execute(sql: """
            INSERT INTO aliases (name, alias, model_id, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (name, alias) DO UPDATE SET model_id = excluded.model_id, updated_at = excluded.updated_at
            """, arguments: [name, alias, modelId, now])
        try db.execute(sql: """
            INSERT INTO alias_audit (name, alias, from_model, to_model, at, who, action) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [name, alias, from, modelId, now, who ?? Registry.who, action])
        return try Row.fetchOne(db, sql: "SELECT * FROM alias_audit WHERE id = ?", arguments: [db.lastInsertedRowID])
            .map(AliasMove.init)
    }

    /// Alias names follow model names; `latest` is implicit (the highest registered version).
    static func validateAlias(_ alias: String) throws {
        if alias == "latest" {
            throw ToolError.usage("alias latest is implicit (the highest registered version) and cannot be set")
        }
        do { try Job.validateName(alias) } catch let e as ToolError {
            throw ToolError.usage(e.message.replacingOccurrences(of: "name '", with: "alias '"))
        }
    }
}

extension Registry {
    /// The names a tool may serve without being told which: every name with a registered model, and
    /// those of them whose `production` alias is set (docs/records.md, "The default model").
    public func servableNames() throws -> (all: [String], production: [String]) {
        try read { db in
            let all = try String.fetchAll(db, sql: """
                SELECT DISTINCT name FROM models WHERE status = 'registered' ORDER BY name
                """)
            let production = try String.fetchAll(db, sql: """
                SELECT DISTINCT a.name FROM aliases a JOIN models m ON m.model_id = a.model_id
                WHERE a.alias = 'production' AND m.status = 'registered' ORDER BY a.name
                """)
            return (all, production)
        }
    }
}
