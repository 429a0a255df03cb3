import Foundation
import GRDB
import NERCore

/// A user of the web console (docs/console.md).
public struct UserRow: Sendable, Equatable {
    public var name: String
    /// `viewer`, `operator` or `admin`.
    public var role: String
    /// Whether a one-time sign-in token is waiting to be used.
    public var pendingToken: Bool
    public var createdAt: String
    public var createdBy: String

    init(row: Row) {
        name = row["name"]
        role = row["role"]
        pendingToken = (row["token_hash"] as String?) != nil
        createdAt = row["created_at"]
        createdBy = row["created_by"]
    }

    public var json: JSON {
        ["type": "user", "name": .string(name), "role": .string(role), "pending_token": .bool(pendingToken),
         "created_at": .string(createdAt), "created_by": .string(createdBy)]
    }
}

/// A signed-in session: its user and the CSRF token every state-changing request must carry.
public struct SessionRow: Sendable {
    public var user: UserRow
    public var csrf: String
    public var expiresAt: String
}

/// One entry of the console's audit: who did what to which target.
public struct AuditRow: Sendable {
    public var id: Int64
    public var at: String
    public var who: String
    public var action: String
    public var target: String?
    public var detail: String?

    public var json: JSON {
        var o: [String: JSON] = ["type": "audit", "id": .int(id), "at": .string(at), "who": .string(who),
                                 "action": .string(action)]
        if let target { o["target"] = .string(target) }
        if let detail { o["detail"] = .string(detail) }
        return .object(o)
    }
}

/// The web console's users, sessions and audit (docs/console.md). Tokens and session ids arrive
/// here already hashed: the registry never holds a credential that could be replayed.
extension Registry {
    public static let userRoles = ["viewer", "operator", "admin"]

    static func validateRole(_ role: String) throws {
        guard userRoles.contains(role) else {
            throw ToolError.usage("role must be viewer, operator or admin, got \(clipped(role))")
        }
    }

    /// Adds a user whose one-time sign-in token has the digest `tokenHash`.
    public func addUser(name: String, role: String, tokenHash: String, by creator: String) throws -> UserRow {
        try Job.validateName(name)
        try Registry.validateRole(role)
        return try write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM users WHERE name = ?", arguments: [name]) != nil {
                throw ToolError.usage("user \(name) exists already (ner-console user reset \(name) gives a new token)")
            }
            try db.execute(sql: """
                INSERT INTO users (name, role, token_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?)
                """, arguments: [name, role, tokenHash, Timestamp.now(), creator])
            try Registry.audit(db, who: creator, action: "user.add", target: name, detail: role)
            return try Row.fetchOne(db, sql: "SELECT * FROM users WHERE name = ?", arguments: [name]).map(UserRow.init)!
        }
    }

    /// Gives a user a new one-time token (and, when `role` is given, a new role); ends their sessions.
    public func resetUser(name: String, tokenHash: String, role: String? = nil, by who: String) throws {
        if let role { try Registry.validateRole(role) }
        try write { db in
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM users WHERE name = ?", arguments: [name]) != nil else {
                throw ToolError.noInput("unknown user \(clipped(name))")
            }
            try db.execute(sql: "UPDATE users SET token_hash = ?, role = COALESCE(?, role) WHERE name = ?",
                           arguments: [tokenHash, role, name])
            try db.execute(sql: "DELETE FROM sessions WHERE user = ?", arguments: [name])
            try Registry.audit(db, who: who, action: "user.reset", target: name, detail: role)
        }
    }

    /// Removes a user and ends their sessions.
    public func removeUser(name: String, by who: String) throws {
        try write { db in
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM users WHERE name = ?", arguments: [name]) != nil else {
                throw ToolError.noInput("unknown user \(clipped(name))")
            }
            try db.execute(sql: "DELETE FROM sessions WHERE user = ?", arguments: [name])
            try db.execute(sql: "DELETE FROM users WHERE name = ?", arguments: [name])
            try Registry.audit(db, who: who, action: "user.rm", target: name, detail: nil)
        }
    }

    public func users() throws -> [UserRow] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY name").map(UserRow.init) }
    }

    /// Spends a one-time token: returns its user, whose token is then cleared, or nil.
    public func redeemToken(hash: String) throws -> UserRow? {
        try write { db in
            guard let user = try Row.fetchOne(db, sql: "SELECT * FROM users WHERE token_hash = ?", arguments: [hash])
                .map(UserRow.init) else { return nil }
            try db.execute(sql: "UPDATE users SET token_hash = NULL WHERE name = ?", arguments: [user.name])
            try Registry.audit(db, who: user.name, action: "sign-in", target: nil, detail: nil)
            return user
        }
    }

    /// Opens a session for `user`; expired sessions are swept on the way.
    public func createSession(idHash: String, user: String, csrf: String, expiresAt: Date) throws {
        try write { db in
            let now = Timestamp.now()
            try db.execute(sql: "DELETE FROM sessions WHERE expires_at < ?", arguments: [now])
            try db.execute(sql: """
                INSERT INTO sessions (id_hash, user, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
                """, arguments: [idHash, user, csrf, now, Timestamp.format(expiresAt)])
        }
    }

    /// The live session whose id has the digest `idHash`, or nil (unknown, expired, or its user removed).
    public func session(idHash: String) throws -> SessionRow? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT users.*, sessions.csrf AS csrf, sessions.expires_at AS expires_at
                FROM sessions JOIN users ON users.name = sessions.user
                WHERE sessions.id_hash = ? AND sessions.expires_at > ?
                """, arguments: [idHash, Timestamp.now()]) else { return nil }
            return SessionRow(user: UserRow(row: row), csrf: row["csrf"], expiresAt: row["expires_at"])
        }
    }

    public func deleteSession(idHash: String) throws {
        try write { db in try db.execute(sql: "DELETE FROM sessions WHERE id_hash = ?", arguments: [idHash]) }
    }

    /// Appends an entry to the console's audit.
    public func audit(who: String, action: String, target: String?, detail: String? = nil) throws {
        try write { db in try Registry.audit(db, who: who, action: action, target: target, detail: detail) }
    }

    static func audit(_ db: Database, who: String, action: String, target: String?, detail: String?) throws {
        try db.execute(sql: "INSERT INTO audit (at, who, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                       arguments: [Timestamp.now(), who, action, target, detail])
    }

    /// Who queued each of these jobs through the console (job id → user), from the audit.
    public func queuedBy(jobIds: [String]) throws -> [String: String] {
        guard !jobIds.isEmpty else { return [:] }
        return try read { db in
            var out: [String: String] = [:]
            for chunk in stride(from: 0, to: jobIds.count, by: 500).map({ Array(jobIds[$0..<min($0 + 500, jobIds.count)]) }) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                for row in try Row.fetchAll(db, sql: """
                    SELECT target, who FROM audit WHERE action IN ('job.queue', 'job.retrain', 'sweep.queue') AND target IN (\(marks))
                    """, arguments: StatementArguments(chunk)) {
                    out[row["target"]] = row["who"]
                }
            }
            return out
        }
    }

    /// The newest `limit` audit entries, newest first.
    public func auditLog(limit: Int = 200) throws -> [AuditRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id DESC LIMIT ?", arguments: [limit]).map {
                AuditRow(id: $0["id"], at: $0["at"], who: $0["who"], action: $0["action"], target: $0["target"],
                         detail: $0["detail"])
            }
        }
    }

    /// One page of jobs, newest first, with the total that match: `name` matches a prefix of the
    /// job name, `status` exactly, `sweep` the record's `sweep_id`.
    public func jobsPage(name: String?, status: String?, sweep: String?, limit: Int, offset: Int) throws -> (jobs: [JobRow], total: Int) {
        var conditions: [String] = []
        var args: [DatabaseValueConvertible?] = []
        if let name, !name.isEmpty {
            conditions.append("name >= ? AND name < ?")
            args.append(name)
            args.append(name + "\u{10FFFF}")
        }
        if let status, !status.isEmpty {
            conditions.append("status = ?")
            args.append(status)
        }
        if let sweep, !sweep.isEmpty {
            conditions.append("json_extract(record, '$.sweep_id') = ?")
            args.append(sweep)
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs \(whereClause)",
                                         arguments: StatementArguments(args)) ?? 0
            let rows = try Row.fetchAll(db, sql: """
                SELECT * FROM jobs \(whereClause)
                ORDER BY COALESCE(json_extract(record, '$.created_at'), updated_at) DESC, job_id LIMIT ? OFFSET ?
                """, arguments: StatementArguments(args + [limit, offset])).map(JobRow.init)
            return (rows, total)
        }
    }

    /// A number that changes whenever a job moves, an alias moves, a model is registered or the
    /// console's audit grows: what the console's event stream watches.
    public func changeStamp() throws -> String {
        try read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT (SELECT COALESCE(MAX(id), 0) FROM transitions) AS t,
                       (SELECT COALESCE(MAX(id), 0) FROM alias_audit) AS a,
                       (SELECT COUNT(*) FROM models) AS m,
                       (SELECT COALESCE(MAX(registered_at), '') FROM models) AS r,
                       (SELECT COALESCE(MAX(id), 0) FROM audit) AS u
                """)!
            let t: Int64 = row["t"], a: Int64 = row["a"], m: Int64 = row["m"], u: Int64 = row["u"]
            let r: String = row["r"]
            return "\(t).\(a).\(m).\(u).\(r)"
        }
    }

    /// The newest transitions after `id` (for the event stream), oldest first.
    public func transitions(after id: Int64, limit: Int = 500) throws -> [TransitionRow] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM transitions WHERE id > ? ORDER BY id LIMIT ?",
                             arguments: [id, limit]).map(TransitionRow.init)
        }
    }

    /// Every version of `name`, newest first, as the console's versions table shows them: the
    /// columns and the headline scores, without the full records (a name may have thousands).
    public func versionTable(name: String) throws -> [JSON] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT model_id, version, status, job_id, parent_id, sweep_id, bytes, sha256, created_at, registered_at,
                       json_extract(metrics, '$.dev.f1') AS dev_f1, json_extract(metrics, '$.test.f1') AS test_f1
                FROM models WHERE name = ? ORDER BY version DESC
                """, arguments: [name]).map { row in
                var o: [String: JSON] = ["model_id": .string(row["model_id"]), "name": .string(name),
                                         "version": .int(row["version"]), "status": .string(row["status"]),
                                         "created_at": .string(row["created_at"]), "registered_at": .string(row["registered_at"])]
                for key in ["job_id", "parent_id", "sweep_id", "sha256"] {
                    if let v = row[key] as String? { o[key] = .string(v) }
                }
                if let b = row["bytes"] as Int64? { o["bytes"] = .int(b) }
                if let f = row["dev_f1"] as Double? { o["dev_f1"] = .double(f) }
                if let f = row["test_f1"] as Double? { o["test_f1"] = .double(f) }
                return .object(o)
            }
        }
    }

    public func lastTransitionId() throws -> Int64 {
        try read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM transitions") ?? 0 }
    }

    /// The names of registered models with how many versions each has and their current aliases.
    public func modelNames() throws -> [(name: String, versions: Int, latest: Int, updated: String)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT name, COUNT(*) AS n, MAX(version) AS v, MAX(registered_at) AS r FROM models GROUP BY name ORDER BY name
                """).map { row in
                    (name: row["name"] as String, versions: row["n"] as Int, latest: row["v"] as Int, updated: row["r"] as String)
                }
        }
    }

    /// Every alias of every name (name, alias, model id).
    public func allAliases() throws -> [(name: String, alias: String, modelId: String)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT name, alias, model_id FROM aliases ORDER BY name, alias").map { row in
                (name: row["name"] as String, alias: row["alias"] as String, modelId: row["model_id"] as String)
            }
        }
    }
}
