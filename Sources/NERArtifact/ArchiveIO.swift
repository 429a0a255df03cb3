import CArchive
import Crypto
import Foundation
import NERCore
#if canImport(Glibc)
import Glibc
#endif

/// Size of the buffers files and tarballs are streamed through; big files never sit in memory whole.
let chunkSize = 1 << 20

/// File type bits of `archive_entry_filetype` (libarchive's AE_IF* macros do not import into Swift).
enum EntryType {
    static let mask: UInt32 = 0o170000
    static let regular: UInt32 = 0o100000
    static let directory: UInt32 = 0o040000
    static let symlink: UInt32 = 0o120000

    static func describe(_ type: UInt32) -> String {
        switch type {
        case symlink: return "symlink"
        case directory: return "folder"
        case 0o020000: return "character device"
        case 0o060000: return "block device"
        case 0o010000: return "fifo"
        case 0o140000: return "socket"
        default: return "special file"
        }
    }
}

extension SHA256.Digest {
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}

/// Why an archive entry's path may not be extracted, or nil when it is a plain relative path.
/// Only `a/b/c` forms pass: no leading `/`, no empty, `.` or `..` components, no NUL or backslash.
func unsafePathReason(_ path: String) -> String? {
    if path.isEmpty { return "empty path" }
    if path.hasPrefix("/") { return "absolute path refused" }
    if path.utf8.contains(0) || path.contains("\\") { return "unsafe characters in path refused" }
    for component in path.split(separator: "/", omittingEmptySubsequences: false) {
        if component == ".." { return "'..' in path refused" }
        if component.isEmpty || component == "." { return "non-canonical path refused" }
    }
    return nil
}

/// The compressed bytes libarchive produces go through here: written to our own fd and hashed on the
/// way, so the tarball's digest costs no second read.
final class HashingSink {
    let fd: Int32
    let path: String
    var hasher = SHA256()
    var bytes: Int64 = 0
    var error: ToolError?

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    func write(_ raw: UnsafeRawBufferPointer) -> Int {
        do {
            try AtomicFile.writeAll(fd: fd, raw, path: path)
        } catch {
            self.error = error as? ToolError ?? ToolError.failure("\(path): write failed")
            return -1
        }
        hasher.update(bufferPointer: raw)
        bytes += Int64(raw.count)
        return raw.count
    }
}

/// libarchive's write callback; the client data is an unretained HashingSink.
func hashingSinkWrite(_: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ buffer: UnsafeRawPointer?,
                      _ length: Int) -> la_ssize_t {
    let sink = Unmanaged<HashingSink>.fromOpaque(client!).takeUnretainedValue()
    return sink.write(UnsafeRawBufferPointer(start: buffer, count: length))
}

/// The tarball bytes libarchive reads come through here, hashed as they pass, so verifying a tarball
/// and computing its digest is one read.
final class HashingSource {
    let fd: Int32
    let path: String
    var hasher = SHA256()
    /// Off when the digest is already known (the packer hashed the bytes as it wrote them).
    let hashing: Bool
    var bytes: Int64 = 0
    var error: ToolError?
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16)

    init(fd: Int32, path: String, hashing: Bool = true) {
        self.fd = fd
        self.path = path
        self.hashing = hashing
    }

    deinit { buffer.deallocate() }

    /// Reads the next chunk into the buffer and hashes it: its length, 0 at the end of the file, -1 on error.
    func readChunk() -> Int {
        var n: Int
        repeat { n = Glibc.read(fd, buffer, chunkSize) } while n < 0 && errno == EINTR
        if n < 0 {
            error = ToolError(.failure, "\(path): read failed: \(errnoString())")
            return -1
        }
        if hashing { hasher.update(bufferPointer: UnsafeRawBufferPointer(start: buffer, count: n)) }
        bytes += Int64(n)
        return n
    }

    /// Hashes whatever libarchive left unread after the end-of-archive marker, so the digest covers
    /// the whole file.
    func drain() throws {
        while true {
            let n = readChunk()
            if n < 0, let error { throw error }
            if n <= 0 { return }
        }
    }

    var digest: String { hasher.finalize().hex }

    var chunk: UnsafeRawPointer { UnsafeRawPointer(buffer) }
}

/// libarchive's read callback; the client data is an unretained HashingSource.
func hashingSourceRead(_: OpaquePointer?, _ client: UnsafeMutableRawPointer?,
                       _ out: UnsafeMutablePointer<UnsafeRawPointer?>?) -> la_ssize_t {
    let source = Unmanaged<HashingSource>.fromOpaque(client!).takeUnretainedValue()
    let n = source.readChunk()
    out?.pointee = source.chunk
    return n
}

/// libarchive's message for its last error, for a one-line ToolError.
func archiveError(_ a: OpaquePointer?) -> String {
    if let a, let s = archive_error_string(a) { return String(cString: s) }
    return "unknown libarchive error"
}

/// Opens a file for reading, refusing anything that is not a regular file (symlinks included).
/// Missing files are exit 66.
func openRegularFile(_ path: String, shownAs name: String) throws -> (fd: Int32, size: Int64, mtime: Int) {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
    if fd < 0 {
        let code = errno
        if code == ELOOP { throw ToolError.data("\(name): is a symlink; a model folder holds regular files only") }
        if code == ENOENT { throw ToolError.noInput("\(name): no such file") }
        throw ToolError.failure("\(name): cannot open: \(errnoString(code))")
    }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
        let code = errno
        close(fd)
        throw ToolError.failure("\(name): cannot stat: \(errnoString(code))")
    }
    let type = UInt32(st.st_mode) & EntryType.mask
    guard type == EntryType.regular else {
        close(fd)
        throw ToolError.data("\(name): is a \(EntryType.describe(type)); a model folder holds regular files only")
    }
    return (fd, Int64(st.st_size), st.st_mtim.tv_sec)
}

/// Reads `fd` to the end in chunks, handing each to `body`.
func readChunks(fd: Int32, name: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16)
    defer { buffer.deallocate() }
    while true {
        let n = Glibc.read(fd, buffer, chunkSize)
        if n < 0 {
            if errno == EINTR { continue }
            throw ToolError.failure("\(name): read failed: \(errnoString())")
        }
        if n == 0 { return }
        try body(UnsafeRawBufferPointer(start: buffer, count: n))
    }
}

/// A temp name beside `path`, hidden, unique to this process and call.
func tempName(beside path: String) -> String {
    let dir = (path as NSString).deletingLastPathComponent
    let base = (path as NSString).lastPathComponent
    return (dir.isEmpty ? "." : dir) + "/.\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

/// A UTF-8 LC_CTYPE, made once; nil where the C library has none.
private let utf8Locale: locale_t? = {
    for name in ["C.UTF-8", "C.utf8", "en_US.UTF-8"] {
        if let l = newlocale(LC_CTYPE_MASK, name, nil) { return l }
    }
    return nil
}()

/// libarchive converts entry names through the current thread's charset, and in the default "C"
/// locale it cannot convert UTF-8 names (setting one even crashes libarchive 3.6). The body runs
/// with a UTF-8 LC_CTYPE on this thread only, leaving the process locale alone.
/// `hasUTF8Locale` tells callers whether non-ASCII names are safe to hand to libarchive.
func withUTF8Names<T>(_ body: (_ hasUTF8Locale: Bool) throws -> T) rethrows -> T {
    guard let utf8Locale else { return try body(false) }
    let previous = uselocale(utf8Locale)
    defer { uselocale(previous) }
    return try body(true)
}
