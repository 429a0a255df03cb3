import CArchive
import Crypto
import Foundation
import NERCore
#if canImport(Glibc)
import Glibc
#endif

extension Artifact {
    /// Checks every file against MANIFEST.json (size + sha256), no missing/extra files, no unsafe entries.
    /// Tampering is ToolError(.dataError) naming the file: "<tarball>: weights.bin: sha256 mismatch".
    public static func verify(path: String) throws -> Manifest {
        try inspect(path: path).manifest
    }

    /// Verifies like `verify(path:)` and also returns the tarball's own sha256 and size, computed in
    /// the same read.
    public static func inspect(path: String) throws -> PackResult {
        try inspect(path: path, shownAs: path)
    }

    /// Safe unpack into a new folder `dest` (must not exist): refuses absolute paths, `..` components,
    /// symlinks/hardlinks/devices, and files not in the manifest (ToolError .dataError naming the entry);
    /// extracts into a temp folder beside dest, verifies, then renames into place.
    /// The folder holds the model files and `MANIFEST.json`.
    public static func unpack(path: String, into dest: String) throws -> Manifest {
        let target = absolute(dest)
        if fileExists(target) { throw ToolError.failure("\(dest): already exists; unpack needs a new folder") }
        try makeDirectory((target as NSString).deletingLastPathComponent)
        let tmp = tempName(beside: target)
        guard mkdir(tmp, 0o755) == 0 else { throw ToolError.failure("\(dest): cannot create temp folder: \(errnoString())") }
        var tmpExists = true
        defer { if tmpExists { try? FileManager.default.removeItem(atPath: tmp) } }

        let result = try read(path: path, shownAs: path, extractInto: tmp)
        AtomicFile.syncDirectory(tmp)
        // rename() would replace an empty folder created at dest meanwhile; checking again keeps that
        // window to a moment.
        if fileExists(target) { throw ToolError.failure("\(dest): already exists; unpack needs a new folder") }
        try AtomicFile.move(tmp, to: target)
        tmpExists = false
        return result.manifest
    }

    static func inspect(path: String, shownAs: String) throws -> PackResult {
        try read(path: path, shownAs: shownAs, extractInto: nil)
    }

    /// The packer's read-back check of a tarball it just wrote: every file against the manifest, but
    /// the tarball's own digest is the one the packer computed while writing, so it is not recomputed.
    static func check(written path: String, shownAs: String) throws -> (manifest: Manifest, bytes: Int64) {
        let r = try read(path: path, shownAs: shownAs, extractInto: nil, hashTarball: false)
        return (r.manifest, r.bytes)
    }

    /// Reads the whole tarball once: checks each entry, hashes each file (writing it under `extractInto`
    /// when given), hashes the tarball itself, then checks the files against the manifest.
    ///
    /// Nothing is written past the size the manifest gives a file (docs/artifacts.md): the tarballs
    /// this toolchain writes hold MANIFEST.json first, so every later entry is checked against it
    /// before and while it is written. An older tarball, manifest last, is first read through once
    /// without writing anything (decompressing costs time, not disk) to find its manifest.
    private static func read(path: String, shownAs name: String, extractInto dir: String?,
                             hashTarball: Bool = true) throws -> PackResult {
        try withUTF8Names { _ in
            var known: Data?
            if dir != nil {
                let first = try scan(path: path, shownAs: name, untilManifest: false)
                if !first.isManifest {
                    known = try scan(path: path, shownAs: name, untilManifest: true).manifest
                    if known == nil { throw ToolError.data("\(name): \(Manifest.fileName) missing; not an artifact") }
                }
            }
            return try readEntries(path: path, shownAs: name, extractInto: dir, hashTarball: hashTarball,
                                   knownManifest: known)
        }
    }

    /// The largest MANIFEST.json accepted.
    static let maxManifestBytes = 16 << 20

    /// Opens `path` for libarchive through a HashingSource.
    private static func openArchive(_ path: String, shownAs name: String, hashing: Bool) throws
        -> (archive: OpaquePointer, source: HashingSource) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw ToolError.noInput("\(name): no such file") }
            throw ToolError.failure("\(name): cannot open: \(errnoString())")
        }
        if isDirectory(path) {
            close(fd)
            throw ToolError.data("\(name): is a folder, not a tarball")
        }
        let source = HashingSource(fd: fd, path: name, hashing: hashing)
        guard let a = archive_read_new() else {
            close(fd)
            throw ToolError.failure("libarchive: out of memory")
        }
        archive_read_support_format_tar(a)
        archive_read_support_filter_zstd(a)
        archive_read_support_filter_gzip(a)
        guard archive_read_open(a, Unmanaged.passUnretained(source).toOpaque(), nil, hashingSourceRead, nil) == ARCHIVE_OK else {
            let e = source.error ?? ToolError.data("\(name): \(archiveError(a))")
            archive_read_free(a)
            close(fd)
            throw e
        }
        return (a, source)
    }

    /// Reads entry headers without writing anything: whether the first entry is MANIFEST.json, or
    /// (with `untilManifest`) the bytes of the first MANIFEST.json, skipping the data before it.
    private static func scan(path: String, shownAs name: String, untilManifest: Bool) throws
        -> (isManifest: Bool, manifest: Data?) {
        let (a, source) = try openArchive(path, shownAs: name, hashing: false)
        defer {
            archive_read_free(a)
            close(source.fd)
        }
        var entry: OpaquePointer?
        while true {
            let r = archive_read_next_header(a, &entry)
            if r == ARCHIVE_EOF { return (false, nil) }
            guard r == ARCHIVE_OK || r == ARCHIVE_WARN, let entry else {
                throw source.error ?? ToolError.data("\(name): \(archiveError(a))")
            }
            let cPath = archive_entry_pathname_utf8(entry) ?? archive_entry_pathname(entry)
            let isManifest = cPath.map { String(cString: $0) == Manifest.fileName } ?? false
            if !untilManifest { return (isManifest, nil) }
            if !isManifest {
                guard archive_read_data_skip(a) == ARCHIVE_OK else {
                    throw source.error ?? ToolError.data("\(name): \(archiveError(a))")
                }
                continue
            }
            var bytes = Data()
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buffer.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
                if n == 0 { return (true, bytes) }
                guard n > 0 else { throw source.error ?? ToolError.data("\(name): \(Manifest.fileName): \(archiveError(a))") }
                guard bytes.count + n <= maxManifestBytes else { throw ToolError.data("\(name): \(Manifest.fileName): too large") }
                bytes.append(contentsOf: buffer[0..<n])
            }
        }
    }

    /// Parses and checks MANIFEST.json: its format version, and paths that are safe and listed once.
    private static func decodeManifest(_ data: Data, shownAs name: String) throws -> Manifest {
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data)
        } catch {
            throw ToolError.data("\(name): \(Manifest.fileName): not a valid manifest")
        }
        guard manifest.formatVersion == Manifest.currentFormatVersion else {
            throw ToolError.data("\(name): \(Manifest.fileName): format_version \(manifest.formatVersion) is not supported (this toolchain reads \(Manifest.currentFormatVersion))")
        }
        var listed = Set<String>()
        for file in manifest.files {
            if let reason = unsafePathReason(file.path) { throw ToolError.data("\(name): \(Manifest.fileName): \(file.path): \(reason)") }
            guard file.size >= 0 else { throw ToolError.data("\(name): \(Manifest.fileName): \(file.path): negative size") }
            guard listed.insert(file.path).inserted else {
                throw ToolError.data("\(name): \(Manifest.fileName): \(file.path): listed twice")
            }
        }
        return manifest
    }

    /// Each file's size as the manifest lists it, by path.
    private static func listedSizes(_ data: Data, shownAs name: String) throws -> [String: Int64] {
        Dictionary(uniqueKeysWithValues: try decodeManifest(data, shownAs: name).files.map { ($0.path, $0.size) })
    }

    private static func readEntries(path: String, shownAs name: String, extractInto dir: String?,
                                    hashTarball: Bool, knownManifest: Data?) throws -> PackResult {
        let (a, source) = try openArchive(path, shownAs: name, hashing: hashTarball)
        defer {
            archive_read_free(a)
            close(source.fd)
        }
        func failed(_ entry: String? = nil) -> ToolError {
            if let e = source.error { return e }
            return ToolError.data("\(name): \(entry.map { $0 + ": " } ?? "")\(archiveError(a))")
        }

        var found: [String: ManifestFile] = [:]
        var order: [String] = []
        var manifestData: Data?
        // The size of every listed file, once the manifest is known: an entry may not exceed its own,
        // and as unlisted and repeated entries are refused, all of them together not their sum.
        var limits = try knownManifest.map { try listedSizes($0, shownAs: name) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }

        var entry: OpaquePointer?
        while true {
            let r = archive_read_next_header(a, &entry)
            if r == ARCHIVE_EOF { break }
            guard r == ARCHIVE_OK || r == ARCHIVE_WARN, let entry else { throw failed() }
            guard let cPath = archive_entry_pathname_utf8(entry) ?? archive_entry_pathname(entry) else {
                throw ToolError.data("\(name): an entry has no readable path")
            }
            var entryPath = String(cString: cPath)
            let type = archive_entry_filetype(entry) & EntryType.mask
            if type == EntryType.directory && entryPath.hasSuffix("/") { entryPath.removeLast() }
            if let reason = unsafePathReason(entryPath) { throw ToolError.data("\(name): \(entryPath): \(reason)") }
            if archive_entry_hardlink(entry) != nil { throw ToolError.data("\(name): \(entryPath): hardlink refused") }
            if type == EntryType.directory {
                if let dir { try makeDirectory(dir + "/" + entryPath) }
                continue
            }
            guard type == EntryType.regular else {
                throw ToolError.data("\(name): \(entryPath): \(EntryType.describe(type)) refused")
            }
            guard found[entryPath] == nil, !(entryPath == Manifest.fileName && manifestData != nil) else {
                throw ToolError.data("\(name): \(entryPath): duplicate entry")
            }
            let isManifest = entryPath == Manifest.fileName
            var limit: Int64? = isManifest ? Int64(maxManifestBytes) : nil
            if !isManifest, let limits {
                guard let size = limits[entryPath] else { throw ToolError.data("\(name): \(entryPath): not in manifest") }
                if archive_entry_size_is_set(entry) != 0 && archive_entry_size(entry) != size {
                    throw ToolError.data("\(name): \(entryPath): size mismatch (manifest says \(size) bytes, the entry holds \(archive_entry_size(entry)))")
                }
                limit = size
            }

            var out: Int32 = -1
            if let dir {
                let parent = (entryPath as NSString).deletingLastPathComponent
                if !parent.isEmpty { try makeDirectory(dir + "/" + parent) }
                out = open(dir + "/" + entryPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                guard out >= 0 else { throw ToolError.data("\(name): \(entryPath): cannot extract: \(errnoString())") }
            }
            defer { if out >= 0 { close(out) } }
            var hasher = SHA256()
            var size: Int64 = 0
            var bytes = Data()
            while true {
                let n = archive_read_data(a, buffer, chunkSize)
                if n == 0 { break }
                guard n > 0 else { throw failed(entryPath) }
                if let limit, size + Int64(n) > limit {
                    throw ToolError.data(isManifest ? "\(name): \(entryPath): too large"
                        : "\(name): \(entryPath): size mismatch (manifest says \(limit) bytes, the entry holds more)")
                }
                let chunk = UnsafeRawBufferPointer(start: buffer, count: n)
                if isManifest {
                    bytes.append(contentsOf: chunk)
                } else {
                    hasher.update(bufferPointer: chunk)
                }
                if out >= 0 { try AtomicFile.writeAll(fd: out, chunk, path: dir! + "/" + entryPath) }
                size += Int64(n)
            }
            if out >= 0 && fsync(out) != 0 {
                throw ToolError.failure("\(name): \(entryPath): fsync failed: \(errnoString())")
            }
            if isManifest {
                if let knownManifest, bytes != knownManifest {
                    throw ToolError.data("\(name): \(entryPath): changed while being read")
                }
                manifestData = bytes
                if limits == nil && order.isEmpty {
                    limits = try listedSizes(bytes, shownAs: name)
                }
            } else {
                found[entryPath] = ManifestFile(path: entryPath, size: size, sha256: hasher.finalize().hex)
                order.append(entryPath)
            }
        }
        try source.drain()

        guard let manifestData else { throw ToolError.data("\(name): \(Manifest.fileName) missing; not an artifact") }
        let manifest = try decodeManifest(manifestData, shownAs: name)
        let listed = Set(manifest.files.map(\.path))
        for entryPath in order where !listed.contains(entryPath) {
            throw ToolError.data("\(name): \(entryPath): not in manifest")
        }
        for file in manifest.files {
            guard let have = found[file.path] else { throw ToolError.data("\(name): \(file.path): missing") }
            guard have.size == file.size else {
                throw ToolError.data("\(name): \(file.path): size mismatch (manifest says \(file.size) bytes, found \(have.size))")
            }
            guard have.sha256 == file.sha256.lowercased() else { throw ToolError.data("\(name): \(file.path): sha256 mismatch") }
        }
        return PackResult(path: absolute(path), sha256: hashTarball ? source.digest : "", bytes: source.bytes,
                          manifest: manifest)
    }
}
