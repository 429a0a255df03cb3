import Foundation
import NERCore
#if canImport(Glibc)
import Glibc
#endif

/// A read-only file mapped into memory (MAP_SHARED), so every process serving one model on a node
/// shares the same pages and loading costs no parsing.
final class MappedFile: @unchecked Sendable {
    let path: String
    let base: UnsafeRawPointer
    let size: Int

    init(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw ToolError.noInput("\(path): no such file") }
            throw ToolError.noInput("\(path): cannot open: \(errnoString())")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ToolError.data("\(path): cannot stat: \(errnoString())") }
        size = Int(st.st_size)
        guard size > 0 else { throw ToolError.data("\(path): empty file") }
        guard let p = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw ToolError.data("\(path): cannot map: \(errnoString())")
        }
        self.path = path
        base = UnsafeRawPointer(p)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }
}

/// The word vocabulary as an open-addressing hash table in one flat little-endian block:
/// header (magic "NERV", version, count, slots), `slots` u32 (word index + 1, 0 = empty),
/// `count + 1` u32 byte offsets, then the UTF-8 bytes. The same bytes serve training (in memory)
/// and inference (mmapped), so GloVe's 400k words load in no time.
final class WordTable: @unchecked Sendable {
    static let magic: UInt32 = 0x5652_454E  // "NERV"
    static let version: UInt32 = 1

    let count: Int
    private let slotMask: Int
    private let slots: UnsafePointer<UInt32>
    private let offsets: UnsafePointer<UInt32>
    private let blob: UnsafePointer<UInt8>
    private let blobSize: Int
    private let owner: AnyObject

    /// Serialises `words` (index i is row i of the embedding matrix).
    static func build(_ words: [String]) -> [UInt8] {
        var slotCount = 16
        while slotCount < words.count * 2 { slotCount <<= 1 }
        var slots = [UInt32](repeating: 0, count: slotCount)
        var offsets = [UInt32](repeating: 0, count: words.count + 1)
        var blob: [UInt8] = []
        for (i, w) in words.enumerated() {
            let bytes = Array(w.utf8)
            var h = hash(bytes) & (slotCount - 1)
            while slots[h] != 0 { h = (h + 1) & (slotCount - 1) }
            slots[h] = UInt32(i + 1)
            blob += bytes
            offsets[i + 1] = UInt32(blob.count)
        }
        var out: [UInt8] = []
        out.reserveCapacity(16 + 4 * (slotCount + offsets.count) + blob.count)
        for v in [magic, version, UInt32(words.count), UInt32(slotCount)] + slots + offsets {
            withUnsafeBytes(of: v.littleEndian) { out += $0 }
        }
        return out + blob
    }

    @inline(__always)
    private static func hash<C: Collection>(_ bytes: C) -> Int where C.Element == UInt8 {
        var h: UInt32 = 2_166_136_261
        for b in bytes { h = (h ^ UInt32(b)) &* 16_777_619 }
        return Int(h)
    }

    /// Reads a table from `bytes` (kept alive by `owner`); `name` is used in error messages.
    init(bytes: UnsafeRawPointer, size: Int, owner: AnyObject, name: String) throws {
        func bad(_ m: String) -> ToolError { ToolError.data("\(name): \(m)") }
        guard size >= 16 else { throw bad("truncated vocabulary") }
        let header = bytes.assumingMemoryBound(to: UInt32.self)
        guard UInt32(littleEndian: header[0]) == WordTable.magic else { throw bad("not a vocabulary file (bad magic)") }
        let v = UInt32(littleEndian: header[1])
        guard v == WordTable.version else { throw bad("unsupported vocabulary version \(v) (this build reads \(WordTable.version))") }
        count = Int(header[2])
        let slotCount = Int(header[3])
        guard slotCount > 0, slotCount & (slotCount - 1) == 0, 16 + 4 * (slotCount + count + 1) <= size else {
            throw bad("corrupt vocabulary header")
        }
        slotMask = slotCount - 1
        slots = UnsafePointer(header + 4)
        offsets = UnsafePointer(header + 4 + slotCount)
        blob = (bytes + 16 + 4 * (slotCount + count + 1)).assumingMemoryBound(to: UInt8.self)
        blobSize = size - 16 - 4 * (slotCount + count + 1)
        guard Int(offsets[count]) == blobSize else { throw bad("corrupt vocabulary (size mismatch)") }
        // A lookup probes until it meets an empty slot; a table without one would never end.
        let slots = self.slots, count = self.count
        guard (0..<slotCount).contains(where: { slots[$0] == 0 || Int(slots[$0]) > count }) else {
            throw bad("corrupt vocabulary (no empty slot)")
        }
        self.owner = owner
    }

    convenience init(bytes: [UInt8]) {
        let box = Scratch<UInt8>(bytes.count)
        box.pointer.update(from: bytes, count: bytes.count)
        try! self.init(bytes: UnsafeRawPointer(box.pointer), size: bytes.count, owner: box, name: "vocabulary")
    }

    func lookup(_ word: String) -> Int32? {
        var w = word
        return w.withUTF8 { lookup(bytes: $0) }
    }

    /// The id of the word whose UTF-8 is `key`.
    func lookup(bytes key: UnsafeBufferPointer<UInt8>) -> Int32? {
        var h = WordTable.hash(key) & slotMask
        while true {
            let s = Int(slots[h])
            if s == 0 || s > count { return nil }
            let lo = Int(offsets[s - 1]), hi = Int(offsets[s])
            if hi - lo == key.count && hi <= blobSize
                && (key.isEmpty || memcmp(blob + lo, key.baseAddress!, key.count) == 0) {
                return Int32(s - 1)
            }
            h = (h + 1) & slotMask
        }
    }

    func word(_ i: Int) -> String {
        let lo = Int(offsets[i]), hi = Int(offsets[i + 1])
        return String(decoding: UnsafeBufferPointer(start: blob + lo, count: hi - lo), as: UTF8.self)
    }
}
