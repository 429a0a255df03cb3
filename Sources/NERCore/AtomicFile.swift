import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Every file the tools write goes through here: write under a temp name in the same folder,
/// fsync it, rename it into place, fsync the folder. A crash leaves the old file or the new one,
/// never half of one.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o644) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        let tmp = (dir.isEmpty ? "." : dir) + "/.\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ToolError(.failure, "\(path): cannot create: \(errnoString())") }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            try data.withUnsafeBytes { raw in
                try writeAll(fd: fd, raw, path: path)
            }
            guard fsync(fd) == 0 else { throw ToolError(.failure, "\(path): fsync failed: \(errnoString())") }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else { throw ToolError(.failure, "\(path): rename failed: \(errnoString())") }
        ok = true
        syncDirectory(dir.isEmpty ? "." : dir)
    }

    public static func write(_ string: String, to path: String) throws {
        try write(Data(string.utf8), to: path)
    }

    /// Writes every byte of `buffer` to `fd`, retrying short writes and EINTR.
    public static func writeAll(fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < buffer.count {
            let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw ToolError(.failure, "\(path): write failed: \(errnoString())")
            }
            offset += n
        }
    }

    /// Makes a rename or unlink in `dir` durable.
    public static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// Renames `from` to `to`; with `durable`, fsyncs the destination folder so the rename survives
    /// a power cut. Returns false when `from` is gone (another process won the race).
    @discardableResult
    public static func move(_ from: String, to: String, durable: Bool = true) throws -> Bool {
        if rename(from, to) != 0 {
            if errno == ENOENT { return false }
            throw ToolError(.failure, "cannot move \(from) to \(to): \(errnoString())")
        }
        if durable { syncDirectory((to as NSString).deletingLastPathComponent) }
        return true
    }

    /// Group commit for many files: each is written under a temp name in `stagingDir` (same file
    /// system), one `syncfs` makes them all durable, then each is renamed into place and the target
    /// folders are fsynced once. A crash leaves every file either absent or whole.
    public static func writeBatch(_ files: [(data: Data, path: String)], stagingDir: String) throws {
        var staged: [(tmp: String, path: String)] = []
        defer { for s in staged { unlink(s.tmp) } }
        for f in files {
            let tmp = stagingDir + "/.\((f.path as NSString).lastPathComponent).tmp-\(getpid())"
            let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw ToolError(.failure, "\(tmp): cannot create: \(errnoString())") }
            staged.append((tmp, f.path))
            do {
                try f.data.withUnsafeBytes { try writeAll(fd: fd, $0, path: f.path) }
            } catch {
                close(fd)
                throw error
            }
            close(fd)
        }
        let dirFD = open(stagingDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0, syncfs(dirFD) == 0 else {
            if dirFD >= 0 { close(dirFD) }
            throw ToolError(.failure, "\(stagingDir): sync failed: \(errnoString())")
        }
        close(dirFD)
        var dirs = Set<String>()
        var placed: [String] = []
        while let s = staged.first {
            guard rename(s.tmp, s.path) == 0 else {
                let reason = errnoString()
                // All or nothing: take back the files of this batch already in place.
                for p in placed { unlink(p) }
                throw ToolError(.failure, "cannot move \(s.tmp) to \(s.path): \(reason)")
            }
            staged.removeFirst()
            placed.append(s.path)
            dirs.insert((s.path as NSString).deletingLastPathComponent)
        }
        for d in dirs { syncDirectory(d) }
    }
}

/// syncfs(2) flushes one file system; Glibc hides it behind _GNU_SOURCE, so declare it here.
@_silgen_name("syncfs")
private func syncfs(_ fd: Int32) -> Int32

public func errnoString(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

/// Runs `body` holding an exclusive `flock` on `path` (created when missing): how processes sharing
/// a spool take turns at one step. The lock goes with the process if it dies.
public func withFileLock<T>(_ path: String, _ body: () throws -> T) throws -> T {
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw ToolError.failure("\(path): \(errnoString())") }
    defer { close(fd) }
    while flock(fd, LOCK_EX) != 0 {
        if errno != EINTR { throw ToolError.failure("cannot lock \(path): \(errnoString())") }
    }
    defer { flock(fd, LOCK_UN) }
    return try body()
}
