import Foundation
import GRDB
import NERCore

/// One registered model. `json` is its NDJSON form (without the full pipeline record, which
/// `record` holds).
public struct ModelRow: Sendable, Equatable {
    public var modelId: String
    public var name: String
    public var version: Int
    /// `registered`, `collected` (gc deleted its artifact) or `removed`.
    public var status: String
    public var jobId: String?
    public var parentId: String?
    /// The sweep (ner-queue --sweep) whose trial this model is.
    public var sweepId: String?
    public var artifact: String
    public var sha256: String?
    public var bytes: Int?
    public var metrics: JSON?
    /// The whole pipeline record as registered, with `model_id`, `version` and `status` added.
    public var record: JSON
    /// The record's `created_at` (when its job was queued), else the registration time.
    public var createdAt: String
    public var registeredAt: String

    init(row: Row) {
        modelId = row["model_id"]
        name = row["name"]
        version = row["version"]
        status = row["status"]
        jobId = row["job_id"]
        parentId = row["parent_id"]
        sweepId = row["sweep_id"]
        artifact = row["artifact"]
        sha256 = row["sha256"]
        bytes = row["bytes"]
        metrics = parseStored(row["metrics"])
        record = parseStored(row["record"]) ?? [:]
        createdAt = row["created_at"]
        registeredAt = row["registered_at"]
    }

    public var json: JSON {
        var o: [String: JSON] = [
            "schema": .int(Int64(recordSchema)), "type": "model",
            "model_id": .string(modelId), "name": .string(name), "version": .int(Int64(version)),
            "status": .string(status), "artifact": .string(artifact),
            "created_at": .string(createdAt), "registered_at": .string(registeredAt),
        ]
        if let jobId { o["job_id"] = .string(jobId) }
        if let parentId { o["parent_id"] = .string(parentId) }
        if let sweepId { o["sweep_id"] = .string(sweepId) }
        if let sha256 { o["sha256"] = .string(sha256) }
        if let bytes { o["bytes"] = .int(Int64(bytes)) }
        if let metrics { o["metrics"] = metrics }
        return .object(o)
    }
}

/// A job's current state, as the dispatcher last recorded it.
public struct JobRow: Sendable, Equatable {
    public var jobId: String
    public var name: String
    /// `queued`, `running`, `trained`, `packed`, `registered`, `failed` or `cancelled`.
    public var status: String
    public var attempt: Int
    public var error: String?
    /// The backend's handle on the run, e.g. a Slurm job id or a local pid.
    public var backendId: String?
    public var modelId: String?
    public var updatedAt: String
    public var record: JSON?

    init(row: Row) {
        jobId = row["job_id"]
        name = row["name"]
        status = row["status"]
        attempt = row["attempt"]
        error = row["error"]
        backendId = row["backend_id"]
        modelId = row["model_id"]
        updatedAt = row["updated_at"]
        record = parseStored(row["record"])
    }

    public var json: JSON {
        var o: [String: JSON] = [
            "schema": .int(Int64(recordSchema)), "type": "job",
            "job_id": .string(jobId), "name": .string(name), "status": .string(status),
            "attempt": .int(Int64(attempt)), "updated_at": .string(updatedAt),
        ]
        if let error { o["error"] = .string(error) }
        if let backendId { o["backend_id"] = .string(backendId) }
        if let modelId { o["model_id"] = .string(modelId) }
        return .object(o)
    }
}

/// One status change of a job, with where it was recorded from.
public struct TransitionRow: Sendable, Equatable {
    public var id: Int64
    public var jobId: String
    public var status: String
    public var attempt: Int
    public var at: String
    public var host: String
    public var pid: Int
    /// The error cause of a `failed` transition, or other detail.
    public var detail: String?

    init(row: Row) {
        id = row["id"]
        jobId = row["job_id"]
        status = row["status"]
        attempt = row["attempt"]
        at = row["at"]
        host = row["host"]
        pid = row["pid"]
        detail = row["detail"]
    }

    public var json: JSON {
        var o: [String: JSON] = [
            "schema": .int(Int64(recordSchema)), "type": "transition",
            "id": .int(id), "job_id": .string(jobId), "status": .string(status),
            "attempt": .int(Int64(attempt)), "at": .string(at), "host": .string(host), "pid": .int(Int64(pid)),
        ]
        if let detail { o["detail"] = .string(detail) }
        return .object(o)
    }
}

/// One entry of the alias audit: who moved which alias from which model to which, and when.
public struct AliasMove: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var alias: String
    public var fromModel: String?
    public var toModel: String
    public var at: String
    /// `user@host`.
    public var who: String
    /// `set`, `promote` or `rollback`.
    public var action: String

    init(row: Row) {
        id = row["id"]
        name = row["name"]
        alias = row["alias"]
        fromModel = row["from_model"]
        toModel = row["to_model"]
        at = row["at"]
        who = row["who"]
        action = row["action"]
    }

    public var json: JSON {
        var o: [String: JSON] = [
            "schema": .int(Int64(recordSchema)), "type": "alias_move",
            "id": .int(id), "name": .string(name), "alias": .string(alias), "to_model": .string(toModel),
            "at": .string(at), "who": .string(who), "action": .string(action),
        ]
        o["from_model"] = fromModel.map(JSON.string) ?? .null
        return .object(o)
    }
}

/// JSON kept in a TEXT column; a value that no longer parses reads as absent rather than failing
/// the whole listing.
func parseStored(_ text: String?) -> JSON? {
    guard let text else { return nil }
    return try? JSON.parse(text)
}
