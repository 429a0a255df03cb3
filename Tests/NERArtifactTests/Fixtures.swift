import CArchive
import Foundation
import NERArtifact
import NERCore
import TestSupport

/// A small model folder: a multi-chunk weights file, a nested file and a model.json.
func makeModelDir(_ tmp: TempDir, _ name: String = "model", weightsBytes: Int = 3 << 20 + 17,
                  modelJSON: String = #"{"format":"test"}"#) -> String {
    let dir = tmp.file(name)
    try! FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
    var rng = SeededBytes(seed: 42)
    let weights = Data((0..<weightsBytes).map { _ in rng.next() })
    FileManager.default.createFile(atPath: dir + "/weights.bin", contents: weights)
    FileManager.default.createFile(atPath: dir + "/sub/vocab.txt", contents: Data("EU\nrejects\nGerman\n".utf8))
    FileManager.default.createFile(atPath: dir + "/model.json", contents: Data(modelJSON.utf8))
    return dir
}

/// Deterministic pseudo-random bytes (xorshift), so fixtures do not compress away to nothing.
struct SeededBytes {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt8 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state >> 24)
    }
}

/// Names in a folder, hidden ones included (temp files are hidden).
func listing(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
}

/// An entry of a hand-made tarball, for the hostile cases our own packer never writes.
enum CraftedEntry {
    case file(String, Data)
    case symlink(String, target: String)
    case hardlink(String, target: String)
    /// A file of `size` zero bytes, streamed (a decompression bomb's payload).
    case zeros(String, size: Int)
}

/// Writes a gzip'd pax tarball with exactly these entries, in this order.
func craftTarball(_ path: String, _ entries: [CraftedEntry]) {
    let a = archive_write_new()!
    defer { archive_write_free(a) }
    precondition(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK)
    precondition(archive_write_add_filter_gzip(a) == ARCHIVE_OK)
    precondition(archive_write_open_filename(a, path) == ARCHIVE_OK)
    let e = archive_entry_new()!
    defer { archive_entry_free(e) }
    for entry in entries {
        archive_entry_clear(e)
        archive_entry_set_perm(e, 0o644)
        archive_entry_set_mtime(e, 1_700_000_000, 0)
        var body = Data()
        switch entry {
        case .file(let p, let d):
            archive_entry_set_pathname(e, p)
            archive_entry_set_filetype(e, 0o100000)
            archive_entry_set_size(e, Int64(d.count))
            body = d
        case .symlink(let p, let target):
            archive_entry_set_pathname(e, p)
            archive_entry_set_filetype(e, 0o120000)
            archive_entry_set_symlink(e, target)
            archive_entry_set_size(e, 0)
        case .hardlink(let p, let target):
            archive_entry_set_pathname(e, p)
            archive_entry_set_filetype(e, 0o100000)
            archive_entry_set_hardlink(e, target)
            archive_entry_set_size(e, 0)
        case .zeros(let p, let size):
            archive_entry_set_pathname(e, p)
            archive_entry_set_filetype(e, 0o100000)
            archive_entry_set_size(e, Int64(size))
            precondition(archive_write_header(a, e) == ARCHIVE_OK)
            let chunk = [UInt8](repeating: 0, count: 1 << 20)
            var left = size
            while left > 0 {
                let n = min(left, chunk.count)
                precondition(archive_write_data(a, chunk, n) == n)
                left -= n
            }
            continue
        }
        precondition(archive_write_header(a, e) == ARCHIVE_OK)
        if !body.isEmpty {
            let n = body.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) }
            precondition(n == body.count)
        }
    }
    precondition(archive_write_close(a) == ARCHIVE_OK)
}

/// The model folder's files as tarball entries (minus `skipping`, with `change` applied to their
/// contents), then `extra`, then `manifest` as the last entry.
func entries(of dir: String, manifest: Manifest, skipping: Set<String> = [],
             change: [String: (Data) -> Data] = [:], extra: [CraftedEntry] = []) throws -> [CraftedEntry] {
    var out: [CraftedEntry] = []
    for f in manifest.files where !skipping.contains(f.path) {
        var d = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f.path))
        if let c = change[f.path] { d = c(d) }
        out.append(.file(f.path, d))
    }
    return out + extra + [.file(Manifest.fileName, try manifest.encoded())]
}

/// A value shared between threads in a test.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
