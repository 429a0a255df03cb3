import CArchive
import Crypto
import Foundation
import NERCore
#if canImport(Glibc)
import Glibc
#endif

/// The artifact store (docs/artifacts.md): one verified tarball per model id under `$NER_HOME/artifacts`.
public enum Artifact {
    /// Packs every regular file under modelDir into `<artifactsDir>/<modelId>.tar.zst` (or `.tar.gz` when
    /// libarchive lacks zstd, or when compression == .gzip): written under a temp name in artifactsDir,
    /// fsynced, verified, then renamed into place. Same id already there with the same content: reuse it
    /// (idempotent); different content: ToolError(.failure) — never overwrite.
    ///
    /// A top-level `MANIFEST.json` in modelDir (an unpacked artifact being packed again) is not packed
    /// as a model file: the new manifest replaces it. Nor is `checkpoint/`, the training state
    /// `ner-train --resume` needs (weights plus optimizer moments, several times the model's size):
    /// an artifact is what serves, not what resumes.
    public static func pack(modelDir: String, modelId: String, name: String?, into artifactsDir: String,
                            compression: Compression = .zstd) throws -> PackResult {
        try validateModelId(modelId)
        let dir = absolute(modelDir)
        guard fileExists(dir) else { throw ToolError.noInput("\(modelDir): no such folder") }
        guard isDirectory(dir) else { throw ToolError.data("\(modelDir): not a folder") }
        let store = absolute(artifactsDir)
        try makeDirectory(store)
        removeStaleTemps(in: store)

        if let existing = existing(modelId: modelId, in: store) {
            return try reuse(existing, modelDir: dir, shownAs: modelDir, modelId: modelId)
        }

        let used: Compression = (compression == .zstd && zstdAvailable) ? .zstd : .gzip
        let final = store + "/" + modelId + used.fileExtension
        let tmp = tempName(beside: final)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ToolError.failure("\(final): cannot create: \(errnoString())") }
        var tmpExists = true
        defer { if tmpExists { unlink(tmp) } }

        let written: PackResult
        do {
            let files = try listFiles(dir, shownAs: modelDir)
            written = try withUTF8Names { utf8 in
                try writeArchive(fd: fd, shownAs: final, modelDir: dir, shownDir: modelDir, files: files,
                                 modelId: modelId, name: name, compression: used, utf8Names: utf8)
            }
            guard fsync(fd) == 0 else { throw ToolError.failure("\(final): fsync failed: \(errnoString())") }
        } catch {
            close(fd)
            throw error
        }
        close(fd)

        let readBack = try check(written: tmp, shownAs: final)
        guard readBack.bytes == written.bytes, readBack.manifest == written.manifest else {
            throw ToolError.failure("\(final): the tarball read back differs from what was written")
        }

        // link() refuses to replace an existing name, so two packers racing on one id never clobber
        // each other; rename() is the fallback for file systems without hard links.
        if link(tmp, final) == 0 {
            unlink(tmp)
            tmpExists = false
            AtomicFile.syncDirectory(store)
            return written
        }
        let code = errno
        if code == EEXIST {
            return try reuse(final, written: written.manifest, modelId: modelId)
        }
        guard code == EPERM || code == EOPNOTSUPP || code == ENOSYS else {
            throw ToolError.failure("\(final): cannot publish: \(errnoString(code))")
        }
        if fileExists(final) { return try reuse(final, written: written.manifest, modelId: modelId) }
        try AtomicFile.move(tmp, to: final)
        tmpExists = false
        return written
    }

    /// sha256 hex of a whole file (streamed).
    public static func sha256(ofFile path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw ToolError.noInput("\(path): no such file") }
            throw ToolError.failure("\(path): cannot open: \(errnoString())")
        }
        defer { close(fd) }
        var hasher = SHA256()
        try readChunks(fd: fd, name: path) { hasher.update(bufferPointer: $0) }
        return hasher.finalize().hex
    }

    /// Copies `source` to `dest` (which must not exist): written under a temp name beside it, hashed on
    /// the way, fsynced, and put in place only when its sha256 is `sha256`. Never replaces a file.
    public static func copy(_ source: String, to dest: String, sha256 expected: String) throws {
        let (src, _, _) = try openRegularFile(source, shownAs: source)
        defer { close(src) }
        let tmp = tempName(beside: dest)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ToolError.failure("\(dest): cannot create: \(errnoString())") }
        defer { unlink(tmp) }
        var hasher = SHA256()
        do {
            try readChunks(fd: src, name: source) {
                hasher.update(bufferPointer: $0)
                try AtomicFile.writeAll(fd: fd, $0, path: tmp)
            }
            guard fsync(fd) == 0 else { throw ToolError.failure("\(dest): fsync failed: \(errnoString())") }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        let got = hasher.finalize().hex
        guard got == expected.lowercased() else {
            throw ToolError.data("\(source): sha256 is \(got), expected \(expected)")
        }
        guard link(tmp, dest) == 0 else { throw ToolError.failure("\(dest): cannot create: \(errnoString())") }
        AtomicFile.syncDirectory((dest as NSString).deletingLastPathComponent)
    }

    /// The tarball stored for `modelId` in `artifactsDir`, whichever compression it was written with.
    public static func existing(modelId: String, in artifactsDir: String) -> String? {
        let store = absolute(artifactsDir)
        return Compression.allCases.map { store + "/" + modelId + $0.fileExtension }.first(where: fileExists)
    }

    /// Removes temp tarballs left by packers killed mid-way (kill -9, a lost node) and untouched for
    /// `age` seconds; a live packer keeps writing its temp file, so its modification time stays fresh.
    /// Returns the names removed.
    @discardableResult
    public static func removeStaleTemps(in artifactsDir: String, olderThan age: TimeInterval = 24 * 3600) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: artifactsDir)) ?? []
        let cutoff = Date().addingTimeInterval(-age)
        var removed: [String] = []
        for name in names where name.hasPrefix(".") && name.contains(".tmp-") {
            let path = artifactsDir + "/" + name
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
                  attrs[.type] as? FileAttributeType == .typeRegular,
                  let modified = attrs[.modificationDate] as? Date, modified < cutoff else { continue }
            if unlink(path) == 0 { removed.append(name) }
        }
        return removed.sorted()
    }

    /// Whether this libarchive can write zstd itself (without an external program).
    public static let zstdAvailable: Bool = {
        guard let a = archive_write_new() else { return false }
        defer { archive_write_free(a) }
        return archive_write_add_filter_zstd(a) == ARCHIVE_OK
    }()

    /// Model ids become file names: letters, digits, `.`, `_`, `-`, not starting with `.` or `-`.
    public static func validateModelId(_ id: String) throws {
        let ok = !id.isEmpty && id.utf8.count <= 200 && id.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
        } && !id.hasPrefix(".") && !id.hasPrefix("-")
        if !ok {
            throw ToolError.usage("model id '\(id)' must be 1-200 letters, digits, '.', '_' or '-', not starting with '.' or '-'")
        }
    }

    // MARK: - Packing

    /// An artifact for this id already exists: fine when it holds exactly the files of the model folder.
    private static func reuse(_ existing: String, modelDir: String, shownAs: String, modelId: String) throws -> PackResult {
        let have = try inspect(path: existing, shownAs: existing)
        let files = try listFiles(modelDir, shownAs: shownAs).map {
            try digest(modelDir: modelDir, shownDir: shownAs, rel: $0, utf8Names: true)
        }
        guard have.manifest.files == files else { throw differentContent(existing, modelId) }
        return have
    }

    /// A model file's size and sha256, read in chunks.
    private static func digest(modelDir: String, shownDir: String, rel: String, utf8Names: Bool) throws -> ManifestFile {
        let shown = shownDir + "/" + rel
        guard utf8Names || rel.utf8.allSatisfy({ $0 < 0x80 }) else {
            throw ToolError.data("\(shown): a non-ASCII file name needs a UTF-8 locale (C.UTF-8), which this system lacks")
        }
        let (fd, _, _) = try openRegularFile(modelDir + "/" + rel, shownAs: shown)
        defer { close(fd) }
        var hasher = SHA256()
        var size: Int64 = 0
        try readChunks(fd: fd, name: shown) {
            hasher.update(bufferPointer: $0)
            size += Int64($0.count)
        }
        return ManifestFile(path: rel, size: size, sha256: hasher.finalize().hex)
    }

    private static func reuse(_ existing: String, written: Manifest, modelId: String) throws -> PackResult {
        let have = try inspect(path: existing, shownAs: existing)
        guard have.manifest.sameContent(as: written) else { throw differentContent(existing, modelId) }
        return have
    }

    private static func differentContent(_ path: String, _ modelId: String) -> ToolError {
        ToolError.failure("\(path): an artifact for model id \(modelId) already exists with different content; refusing to overwrite it (pack under a new model id)")
    }

    /// The folder ner-train keeps its resumable training state in.
    public static let trainingStateFolder = "checkpoint"

    /// Relative paths of everything under `dir` except folders, sorted so tarballs list files in a
    /// stable order. Non-regular files are listed too: opening them is what refuses them.
    static func listFiles(_ dir: String, shownAs: String) throws -> [String] {
        var out: [String] = []
        func walk(_ rel: String) throws {
            let full = rel.isEmpty ? dir : dir + "/" + rel
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: full)
            } catch {
                if !fileExists(full) { throw ToolError.noInput("\(shownAs)/\(rel): folder vanished while packing") }
                throw ToolError.failure("\(shownAs)/\(rel): cannot list folder")
            }
            for name in names.sorted() {
                let child = rel.isEmpty ? name : rel + "/" + name
                if rel.isEmpty && (name == Manifest.fileName || name == trainingStateFolder) { continue }
                var st = stat()
                guard lstat(dir + "/" + child, &st) == 0 else {
                    throw ToolError.noInput("\(shownAs)/\(child): vanished while packing")
                }
                if UInt32(st.st_mode) & EntryType.mask == EntryType.directory {
                    try walk(child)
                } else {
                    out.append(child)
                }
            }
        }
        try walk("")
        return out.sorted()
    }

    private static func writeArchive(fd: Int32, shownAs final: String, modelDir: String, shownDir: String,
                                     files: [String], modelId: String, name: String?,
                                     compression: Compression, utf8Names: Bool) throws -> PackResult {
        // Declared before the archive so it outlives archive_write_free, which may still flush into it.
        let sink = HashingSink(fd: fd, path: final)
        defer { withExtendedLifetime(sink) {} }
        guard let a = archive_write_new() else { throw ToolError.failure("libarchive: out of memory") }
        defer { archive_write_free(a) }
        func failed() -> ToolError {
            sink.error ?? ToolError.failure("\(final): \(archiveError(a))")
        }
        guard archive_write_set_format_pax_restricted(a) == ARCHIVE_OK else { throw failed() }
        let filter = compression == .zstd ? archive_write_add_filter_zstd(a) : archive_write_add_filter_gzip(a)
        guard filter == ARCHIVE_OK else { throw failed() }
        if compression == .zstd {
            // A zstd worker thread compresses while this one reads and hashes, so packing costs
            // about the slower of the two rather than their sum. Older libarchives lack the option;
            // they compress inline.
            let workers = String(max(1, min(ProcessInfo.processInfo.activeProcessorCount - 1, 4)))
            archive_write_set_filter_option(a, "zstd", "threads", workers)
        }
        // No padding after the compressed stream: the tarball is exactly what the compressor wrote.
        archive_write_set_bytes_in_last_block(a, 1)
        guard archive_write_open(a, Unmanaged.passUnretained(sink).toOpaque(), nil, hashingSinkWrite, nil) == ARCHIVE_OK
        else { throw failed() }

        guard let entry = archive_entry_new() else { throw ToolError.failure("libarchive: out of memory") }
        defer { archive_entry_free(entry) }
        func header(_ path: String, size: Int64, mtime: Int) throws {
            archive_entry_clear(entry)
            archive_entry_set_pathname_utf8(entry, path)
            archive_entry_set_filetype(entry, EntryType.regular)
            archive_entry_set_perm(entry, 0o644)
            archive_entry_set_size(entry, size)
            archive_entry_set_uid(entry, 0)
            archive_entry_set_gid(entry, 0)
            archive_entry_set_uname(entry, "root")
            archive_entry_set_gname(entry, "root")
            archive_entry_set_mtime(entry, mtime, 0)
            guard archive_write_header(a, entry) == ARCHIVE_OK else { throw failed() }
        }
        func data(_ buf: UnsafeRawBufferPointer) throws {
            guard buf.count > 0 else { return }
            guard archive_write_data(a, buf.baseAddress, buf.count) == buf.count else { throw failed() }
        }

        // MANIFEST.json goes first, so a reader knows every file's size before any data
        // (docs/artifacts.md). That costs a read of the files before the one that packs them; the
        // second must find the same bytes.
        let listed = try files.map { try digest(modelDir: modelDir, shownDir: shownDir, rel: $0, utf8Names: utf8Names) }
        let manifest = Manifest(modelId: modelId, name: name, files: listed)
        let manifestBytes = try manifest.encoded()
        try header(Manifest.fileName, size: Int64(manifestBytes.count), mtime: Int(Date().timeIntervalSince1970))
        try manifestBytes.withUnsafeBytes { try data($0) }

        for expected in listed {
            let shown = shownDir + "/" + expected.path
            let (ffd, size, mtime) = try openRegularFile(modelDir + "/" + expected.path, shownAs: shown)
            defer { close(ffd) }
            guard size == expected.size else { throw ToolError.failure("\(shown): file changed while packing") }
            try header(expected.path, size: size, mtime: mtime)
            var hasher = SHA256()
            var read: Int64 = 0
            try readChunks(fd: ffd, name: shown) { buf in
                guard read + Int64(buf.count) <= size else {
                    throw ToolError.failure("\(shown): file grew while packing")
                }
                hasher.update(bufferPointer: buf)
                try data(buf)
                read += Int64(buf.count)
            }
            guard read == size else {
                throw ToolError.failure("\(shown): file shrank while packing (\(size) bytes expected, \(read) read)")
            }
            guard hasher.finalize().hex == expected.sha256 else { throw ToolError.failure("\(shown): file changed while packing") }
        }
        guard archive_write_close(a) == ARCHIVE_OK else { throw failed() }
        return PackResult(path: final, sha256: sink.hasher.finalize().hex, bytes: sink.bytes, manifest: manifest)
    }
}
