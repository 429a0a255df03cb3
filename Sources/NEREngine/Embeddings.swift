import Foundation
import NERCore
#if canImport(Glibc)
import Glibc
#endif

/// Pretrained word vectors in word2vec/GloVe text format (`word v1 v2 ...` per line, an optional
/// `count dim` header line), plain or gzip-compressed.
struct PretrainedVectors {
    var words: [String] = []
    var vectors: [Float] = []
    var dim = 0

    /// Reads `path`; the dimension is taken from the first vector, and any line that disagrees is a
    /// data error naming the file and line.
    static func read(_ path: String) throws -> PretrainedVectors {
        guard fileExists(path) else { throw ToolError.noInput("embeddings file \(path): no such file") }
        var process: Process?
        let lines: LineReader
        if path.hasSuffix(".gz") {
            // Foundation on Linux has no gunzip; gzip is on every system this runs on.
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "exec gzip -dc -- \"$0\"", path]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = FileHandle.nullDevice
            do { try p.run() } catch { throw ToolError.unavailable("\(path): cannot run gzip: \(error)") }
            process = p
            lines = LineReader(fd: pipe.fileHandleForReading.fileDescriptor, name: path)
        } else {
            lines = try LineReader(path: path)
        }
        var out = PretrainedVectors()
        var seen = Set<String>()
        var values: [Float] = []
        while let raw = lines.nextBytes() {
            if raw.isEmpty { continue }
            let line = lines.lineNumber
            guard let space = raw.firstIndex(of: 0x20) else {
                throw ToolError.data(path, line: line, "expected a word and \(out.dim > 0 ? String(out.dim) : "its") values, found one field")
            }
            guard let word = String(validating: raw[raw.startIndex..<space], as: UTF8.self) else {
                throw ToolError.data(path, line: line, "invalid UTF-8")
            }
            values.removeAll(keepingCapacity: true)
            let ok = parseFloats(raw[(space + 1)...], into: &values)
            if line == 1 && values.count == 1 && Int(word) != nil { continue }  // word2vec header "count dim"
            guard ok else { throw ToolError.data(path, line: line, "not a number in the vector of '\(word)'") }
            if out.dim == 0 {
                // A model file allows word vectors of up to 4,096 values (docs/model-format.md).
                guard values.count <= 4096 else {
                    throw ToolError.data(path, line: line, "vectors of \(values.count) values; at most 4096 are supported")
                }
                out.dim = values.count
            }
            guard values.count == out.dim, out.dim > 0 else {
                throw ToolError.data(path, line: line, "expected \(out.dim) values (the dimension of line 1), found \(values.count)")
            }
            let key = Encoder.wordKey(word)
            if !seen.insert(key).inserted { continue }
            out.words.append(key)
            out.vectors += values
        }
        if let process {
            process.waitUntilExit()
            if process.terminationStatus != 0 { throw ToolError.data("\(path): not a valid gzip file") }
        }
        if out.words.isEmpty { throw ToolError.data("\(path): no vectors found") }
        return out
    }

    /// Parses space-separated floats; false when a field is not a number.
    private static func parseFloats(_ bytes: ArraySlice<UInt8>, into values: inout [Float]) -> Bool {
        var field = [CChar](repeating: 0, count: 64)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            while i < bytes.endIndex && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
            if i == bytes.endIndex { break }
            var n = 0
            while i < bytes.endIndex && bytes[i] != 0x20 && bytes[i] != 0x09 {
                if n < 63 { field[n] = CChar(bitPattern: bytes[i]); n += 1 }
                i += 1
            }
            field[n] = 0
            var ok = true
            let v: Float = field.withUnsafeBufferPointer { f in
                var end: UnsafeMutablePointer<CChar>?
                let v = strtof(f.baseAddress!, &end)
                ok = end != nil && end! == UnsafeMutablePointer(mutating: f.baseAddress! + n) && n > 0
                return v
            }
            if !ok || !v.isFinite { return false }
            values.append(v)
        }
        return true
    }
}
