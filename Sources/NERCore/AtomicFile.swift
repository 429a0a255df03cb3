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

    /// Renames `from` to `to`, then makes it durable. Returns false when `from` is gone (lost a race).
    @discardableResult
    public static func move(_ from: String, to: String) throws -> Bool {
        if rename(from, to) != 0 {
            if errno == ENOENT { return false }
            throw ToolError(.failure, "cannot move \(from) to \(to): \(errnoString())")
        }
        syncDirectory((to as NSString).deletingLastPathComponent)
        let fromDir = (from as NSString).deletingLastPathComponent
        if fromDir != (to as NSString).deletingLastPathComponent { syncDirectory(fromDir) }
        return true
    }
}

public func errnoString(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}
