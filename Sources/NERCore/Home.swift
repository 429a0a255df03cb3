import Foundation

/// The one home for state (docs/records.md): `$NER_HOME`, default `~/.ner`.
public struct Home: Sendable {
    public let root: String

    public init(root: String) {
        self.root = (root as NSString).standardizingPath
    }

    /// `--home` if given, else `$NER_HOME`, else `~/.ner`.
    public static func resolve(_ flag: String?) -> Home {
        if let f = flag, !f.isEmpty { return Home(root: absolute(f)) }
        if let e = ProcessInfo.processInfo.environment["NER_HOME"], !e.isEmpty { return Home(root: absolute(e)) }
        return Home(root: NSHomeDirectory() + "/.ner")
    }

    public var spool: String { root + "/spool" }
    public var registry: String { root + "/registry.sqlite" }
    public var artifacts: String { root + "/artifacts" }
    public var cache: String { root + "/cache" }
    public var models: String { root + "/models" }
    public var logs: String { root + "/logs" }

    /// Creates the folders the tools write into; safe to call from many processes at once.
    public func ensureLayout() throws {
        for dir in [root, spool, artifacts, cache, models, logs] {
            try makeDirectory(dir)
        }
    }
}

public func makeDirectory(_ path: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw ToolError(.failure, "\(path): cannot create folder: \(error.localizedDescription)")
    }
}

/// An absolute, standardized form of a user-given path (relative to the working directory).
/// `path` made absolute: against `base` when given (a job file's folder), else the working directory.
public func absolute(_ path: String, relativeTo base: String? = nil) -> String {
    let p = (path as NSString).expandingTildeInPath
    if p.hasPrefix("/") { return (p as NSString).standardizingPath }
    return (((base ?? FileManager.default.currentDirectoryPath) + "/" + p) as NSString).standardizingPath
}

/// The absolute folder that holds `file`: the base for the relative paths written in it.
public func folder(of file: String) -> String {
    (absolute(file) as NSString).deletingLastPathComponent
}

public func fileExists(_ path: String) -> Bool {
    FileManager.default.fileExists(atPath: path)
}

public func isDirectory(_ path: String) -> Bool {
    var d: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &d) && d.boolValue
}
