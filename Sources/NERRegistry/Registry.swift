import Foundation
import GRDB
import NERCore
#if canImport(Glibc)
import Glibc
#endif

/// The model registry (docs/records.md): one SQLite file holding models, jobs and their transitions,
/// aliases and the audit of every alias move. Safe to share between processes: every write is one
/// `BEGIN IMMEDIATE` transaction, so concurrent writers queue on the file lock (up to the busy
/// timeout) instead of failing half-way.
public final class Registry: @unchecked Sendable {
    /// How SQLite keeps its journal. WAL needs shared memory between the writers, so it only
    /// works when they all run on one host; a registry on a network file system uses `delete`.
    public enum JournalMode: String, Sendable {
        case wal, delete

        /// The environment variable that selects `delete` (README, State and durability).
        public static let environmentKey = "NER_REGISTRY_JOURNAL"

        /// `NER_REGISTRY_JOURNAL=delete` selects the rollback journal; anything else means WAL.
        public static var fromEnvironment: JournalMode {
            let v = ProcessInfo.processInfo.environment[environmentKey]?.lowercased()
            return v == "delete" ? .delete : .wal
        }
    }

    public let path: String
    public let busyTimeout: Double
    public let journalMode: JournalMode
    let queue: DatabaseQueue

    /// Opens (creating and migrating if needed) the registry at `path`. A file locked by another
    /// writer for longer than `busyTimeout` seconds is `ToolError(.unavailable)` (exit 69).
    ///
    /// With `readOnly` (commands that only look things up), an existing registry of the current
    /// schema is opened read-only, so a registry on a read-only mount or in a folder the user may not
    /// write still answers. One that nobody can write (a read-only file system, an immutable file) is
    /// opened as immutable: SQLite then needs no -shm file beside it. A missing registry, or one
    /// whose schema must first be brought up to date, is opened for writing as usual.
    public init(path: String, busyTimeout: Double = 30, journalMode: JournalMode? = nil, readOnly: Bool = false) throws {
        self.path = absolute(path)
        self.busyTimeout = max(0, busyTimeout)
        let mode = journalMode ?? .fromEnvironment
        self.journalMode = mode
        if readOnly, fileExists(self.path), let q = try Registry.openReadOnly(self.path, self.busyTimeout) {
            queue = q
            return
        }
        let dir = (self.path as NSString).deletingLastPathComponent
        if !isDirectory(dir) { try makeDirectory(dir) }

        var config = Configuration()
        config.busyMode = .timeout(self.busyTimeout)
        config.label = "ner-registry"
        config.prepareDatabase { db in
            // Reading the mode first avoids taking a write lock on every open of a registry that is
            // already in the right mode.
            let current = try String.fetchOne(db, sql: "PRAGMA journal_mode")?.lowercased()
            if current != mode.rawValue {
                let set = try String.fetchOne(db, sql: "PRAGMA journal_mode = \(mode.rawValue.uppercased())")
                if set?.lowercased() != mode.rawValue {
                    throw ToolError.unavailable("\(path): cannot switch the registry to \(mode.rawValue) journal mode "
                        + "(it is \(set ?? "unknown")); is another process holding it open?")
                }
            }
            // A registered model must survive a power cut, so every commit is fsynced.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        let location = self.path
        queue = try Registry.guarded(location, self.busyTimeout) {
            try DatabaseQueue(path: location, configuration: config)
        }
        try migrate()
    }

    /// A read-only connection to an existing registry, or nil when its schema is behind this
    /// build's (migrating needs a writer). A schema ahead of this build is refused, as on any open.
    static func openReadOnly(_ path: String, _ busyTimeout: Double) throws -> DatabaseQueue? {
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(busyTimeout)
        config.label = "ner-registry"
        // EROFS and EPERM (an immutable file or folder) stop every writer, root included; EACCES
        // does not, so then the file may change under us and a plain read-only open is used.
        let dir = (path as NSString).deletingLastPathComponent
        // (`immutable=1` is a URI parameter; the SQLite GRDB links must take URI file names, as
        // Debian's and Ubuntu's builds do. Without them the open fails with 69, as before.)
        let frozen = nobodyCanWrite(path) || nobodyCanWrite(dir)
        let location = frozen ? "file:" + uriEscaped(path) + "?immutable=1" : path
        let queue = try guarded(path, busyTimeout) { try DatabaseQueue(path: location, configuration: config) }
        // A registry another process is creating at this moment may not have its tables yet; the
        // writer's open (the caller's fallback) waits for that migration, or reports what is wrong.
        guard let state = try? guarded(path, busyTimeout, {
            try queue.read { db in (done: try migrator.hasCompletedMigrations(db), newer: try migrator.hasBeenSuperseded(db)) }
        }) else { return nil }
        if state.newer { throw newerSchemaError(path) }
        return state.done ? queue : nil
    }

    static func nobodyCanWrite(_ path: String) -> Bool {
        access(path, W_OK) != 0 && (errno == EROFS || errno == EPERM)
    }

    /// `path` as the path of a `file:` URI: every byte but unreserved ones and `/` percent-encoded.
    static func uriEscaped(_ path: String) -> String {
        let plain = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/-._~".utf8)
        var out = ""
        for b in path.utf8 {
            if plain.contains(b) { out.append(Character(UnicodeScalar(b))) } else { out += String(format: "%%%02X", b) }
        }
        return out
    }

    static func newerSchemaError(_ path: String) -> ToolError {
        ToolError.failure("\(path): the registry was written by a newer toolchain "
            + "(schema past \(Registry.schemaVersions.last ?? "v1")); upgrade ner-register to use it")
    }

    // MARK: - Transactions and errors

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so two
    /// writers never deadlock upgrading a read lock, and a `ToolError` thrown inside rolls it back.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        try Registry.guarded(path, busyTimeout) {
            try queue.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try Registry.guarded(path, busyTimeout) {
            try queue.read(body)
        }
    }

    /// Turns SQLite errors into the tools' exit codes: a lock held past the timeout is 69, a file
    /// that is not a registry is 65, anything else is 1. `ToolError`s pass through unchanged.
    ///
    /// SQLite answers "busy" without waiting in a few WAL corner cases (another process closing the
    /// last connection and cleaning up the WAL, or running recovery), so a busy answer that comes
    /// before the timeout has passed is retried. `body` is always a whole transaction or a read,
    /// which a failure rolls back, so running it again is safe.
    static func guarded<T>(_ path: String, _ timeout: Double, _ body: () throws -> T) throws -> T {
        let start = Date()
        var pause: UInt32 = 1_000
        while true {
            do {
                return try body()
            } catch let e as ToolError {
                throw e
            } catch let e as DatabaseError {
                switch e.resultCode {
                case .SQLITE_BUSY, .SQLITE_LOCKED:
                    if Date().timeIntervalSince(start) < timeout {
                        usleep(pause + UInt32.random(in: 0...pause))
                        pause = min(pause * 2, 100_000)
                        continue
                    }
                    throw ToolError.unavailable("\(path): registry locked by another process for more than "
                        + "\(formatSeconds(timeout)) s (raise --busy-timeout, or find the process holding it)")
                case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                    throw ToolError.data("\(path): not a registry (\(e.message ?? "not an SQLite database"))")
                case .SQLITE_READONLY:
                    throw ToolError.unavailable("\(path): cannot open the registry for writing (\(e.message ?? "\(e.resultCode)"))")
                case .SQLITE_CANTOPEN, .SQLITE_PERM:
                    throw ToolError.unavailable("\(path): cannot open the registry (\(e.message ?? "\(e.resultCode)"))")
                default:
                    throw ToolError.failure("\(path): registry error: \(e.message ?? "\(e.resultCode)")")
                }
            }
        }
    }

    // MARK: - Who and where

    static var hostName: String { NERCore.hostName() }

    /// `user@host`, the `who` of an alias move.
    static var who: String { "\(currentUser())@\(hostName)" }
}

private func formatSeconds(_ s: Double) -> String {
    s.rounded() == s ? String(Int(s)) : String(s)
}
