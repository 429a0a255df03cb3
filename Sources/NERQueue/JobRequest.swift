import Foundation
import NERCore

/// Turns a training request (flags or one JSON line) into a validated job record.
public enum JobRequest {
    static let topLevelFields: Set<String> = ["name", "priority", "spec"]

    /// `base` with `overrides` on top; `resources` is merged field by field, so overriding the
    /// time keeps the partition.
    public static func merged(_ base: [String: JSON], with overrides: [String: JSON]) -> [String: JSON] {
        var out = base
        for (k, v) in overrides {
            if k == "resources", let b = out[k]?.objectValue, let o = v.objectValue {
                out[k] = .object(b.merging(o) { _, new in new })
            } else {
                out[k] = v
            }
        }
        return out
    }

    /// Builds a job from `request`: either `{"name", "priority", "spec": {...}}` or the spec's fields
    /// at the top level beside `name`/`priority`. Unknown fields are refused (a typo must not silently
    /// train with a default). Relative paths are made absolute, since the job may run elsewhere:
    /// against `base` (the folder of the file the request came from), else the working directory.
    /// `context` (`stdin:3`) marks data errors (65); without it errors are usage errors (64).
    public static func make(from request: JSON, context: String?, defaultName: String? = nil,
                            relativeTo base: String? = nil) throws -> Job {
        func bad(_ m: String) -> ToolError {
            context.map { ToolError.data("\($0): \(m)") } ?? ToolError.usage(m)
        }
        guard var fields = request.objectValue else { throw bad("expected a JSON object") }
        var specFields: [String: JSON] = [:]
        if let nested = fields.removeValue(forKey: "spec") {
            guard let o = nested.objectValue else { throw bad("spec must be an object") }
            specFields = o
        }
        if let problem = JobSpec.unknownField(in: specFields) { throw bad(problem) }
        let known = Set(JobSpec.fieldNames)
        for (k, v) in fields.sorted(by: { $0.key < $1.key }) where !topLevelFields.contains(k) {
            guard known.contains(k) else {
                throw bad(unknownFieldMessage(k, among: JobSpec.fieldNames + topLevelFields.sorted()))
            }
            specFields[k] = v
        }
        if let problem = JobSpec.unknownField(in: specFields, prefix: "") { throw bad(problem) }

        var spec: JobSpec
        do {
            spec = try JSON.object(specFields).decode(JobSpec.self)
        } catch let DecodingError.typeMismatch(type, ctx) {
            throw bad("\(fieldPath(ctx.codingPath)): expected \(typeName(type))")
        } catch let DecodingError.dataCorrupted(ctx) {
            throw bad("\(fieldPath(ctx.codingPath)): \(ctx.debugDescription)")
        } catch {
            throw bad("invalid spec: \(error)")
        }
        spec.resolvePaths(relativeTo: base)
        try spec.validate(context: context)

        let name: String
        switch fields["name"] {
        case .string(let n)?: name = n
        case nil, .null?: name = defaultName ?? "ner"
        default: throw bad("name must be a string")
        }
        do { try Job.validateName(name) } catch let e as ToolError { throw bad(e.message) }
        var priority = 0
        if let p = fields["priority"] {
            guard let v = p.intValue, (-9...9).contains(v) else { throw bad("priority must be an integer from -9 to 9") }
            priority = v
        }
        return Job(name: name, spec: spec, priority: priority)
    }

    static func fieldPath(_ path: [CodingKey]) -> String {
        path.isEmpty ? "spec" : path.map(\.stringValue).joined(separator: ".")
    }

    static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is Int.Type, is Double.Type: return "a number"
        case is String.Type: return "a string"
        default: return "\(t)".lowercased()
        }
    }
}
