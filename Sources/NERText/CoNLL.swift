import Foundation
import NERCore

/// The tag scheme of a CoNLL file. `auto` accepts all three and lets the chunk rules sort them out,
/// which is safe because IOB1, BIO and BIOES never disagree about a span under those rules.
public enum TagScheme: String, Sendable, CaseIterable {
    case iob1, bio, bioes, auto
}

/// One sentence of a CoNLL file: its tokens and their tags, always BIO (IOB2) once read.
public struct Sentence: Sendable, Equatable {
    public var tokens: [String]
    public var tags: [String]
    /// Which document of the file it belongs to, counting `-DOCSTART-` lines from 0; nil before the
    /// first one (a file without them is a list of unrelated sentences).
    public var document: Int?

    public init(tokens: [String], tags: [String], document: Int? = nil) {
        self.tokens = tokens
        self.tags = tags
        self.document = document
    }
}

/// CoNLL-2003-style column files: one token per line, the token in the first column and the tag in
/// the last, a blank line after each sentence, `-DOCSTART-` lines between documents.
public enum CoNLL {
    /// Reads a whole file; tags are converted to BIO.
    ///
    /// Errors (`ToolError`): a missing file (or a folder) is 66; a line whose column count differs from the file's
    /// first token line (`path:LINE: expected N columns, found M`), invalid UTF-8, a tag that is not
    /// `O` or `B-/I-/E-/S-TYPE` (`path:LINE: invalid tag 'X'`) and a file without sentences are 65.
    public static func read(path: String, scheme: TagScheme = .auto) throws -> [Sentence] {
        if isDirectory(path) { throw ToolError.noInput("\(path): is a folder, expected a CoNLL file") }
        var reader = try CoNLLReader(LineReader(path: path), scheme: scheme)
        var sentences: [Sentence] = []
        while let s = try reader.next() { sentences.append(s) }
        if sentences.isEmpty { throw ToolError.data("\(path): no sentences") }
        return sentences
    }
}

/// Reads CoNLL sentences one at a time, so a stream (stdin) never has to fit in memory.
public struct CoNLLReader {
    public let lines: LineReader
    public let scheme: TagScheme
    private var columns: Int?
    private var document: Int?
    /// A `-DOCSTART-` line ended the last sentence: the next one starts a document.
    private var documentStarts = false

    public init(_ lines: LineReader, scheme: TagScheme = .auto) {
        self.lines = lines
        self.scheme = scheme
    }

    /// The next sentence (tags in BIO), or nil at the end of input.
    public mutating func next() throws -> Sentence? {
        var tokens: [String] = []
        var tags: [String] = []
        if documentStarts {
            document = (document ?? -1) + 1
            documentStarts = false
        }
        while let raw = lines.nextBytes() {
            if raw.contains(where: { $0 >= 0x80 }) && String(validating: raw, as: UTF8.self) == nil {
                throw ToolError.data(lines.name, line: lines.lineNumber, "invalid UTF-8")
            }
            var fields: [ArraySlice<UInt8>] = []
            var i = raw.startIndex
            while i < raw.endIndex {
                while i < raw.endIndex && (raw[i] == 0x20 || raw[i] == 0x09) { i += 1 }
                let s = i
                while i < raw.endIndex && raw[i] != 0x20 && raw[i] != 0x09 { i += 1 }
                if s < i { fields.append(raw[s..<i]) }
            }
            if fields.isEmpty {
                if tokens.isEmpty { continue }
                break
            }
            if fields[0].elementsEqual("-DOCSTART-".utf8) {
                if tokens.isEmpty {
                    document = (document ?? -1) + 1
                    continue
                }
                documentStarts = true
                break
            }
            let token = String(decoding: fields[0], as: UTF8.self)
            let tag = String(decoding: fields[fields.count - 1], as: UTF8.self)
            if let n = columns {
                if fields.count != n {
                    throw ToolError.data(lines.name, line: lines.lineNumber, "expected \(n) columns, found \(fields.count)")
                }
            } else {
                if fields.count < 2 {
                    throw ToolError.data(lines.name, line: lines.lineNumber,
                                         "expected at least 2 columns (token and tag), found 1")
                }
                columns = fields.count
            }
            guard Self.isValid(tag, scheme) else {
                throw ToolError.data(lines.name, line: lines.lineNumber, "invalid tag '\(tag)'")
            }
            tokens.append(token)
            tags.append(tag)
        }
        if tokens.isEmpty { return nil }
        return Sentence(tokens: tokens, tags: Tags.toBIO(tags), document: document)
    }

    static func isValid(_ tag: String, _ scheme: TagScheme) -> Bool {
        if tag == "O" { return true }
        let u = Array(tag.utf8)
        guard u.count >= 3, u[1] == UInt8(ascii: "-") else { return false }
        switch u[0] {
        case UInt8(ascii: "B"), UInt8(ascii: "I"): return true
        case UInt8(ascii: "E"), UInt8(ascii: "S"): return scheme == .bioes || scheme == .auto
        default: return false
        }
    }
}

/// A CoNLL stream in batches that end where a document ends, so that each document is harmonized
/// whole (DocumentConsistency): at least `size` sentences a batch (but the last), more while the
/// document goes on, up to `cap`; a document longer than that is cut. Sentences outside any
/// document (before the first `-DOCSTART-`) end a batch anywhere.
public struct DocumentBatches {
    private var reader: CoNLLReader
    public let size: Int
    public let cap: Int
    private var carried: Sentence?
    private var failed = false

    public init(_ reader: CoNLLReader, size: Int, cap: Int) {
        self.reader = reader
        self.size = max(1, size)
        self.cap = max(self.size, cap)
    }

    /// The next batch, empty at the end of input. A bad line ends the batch there with its error:
    /// the sentences before it are still in the batch, and the batch after it is empty.
    public mutating func next() -> (sentences: [Sentence], failure: ToolError?) {
        if failed { return ([], nil) }
        var batch: [Sentence] = carried.map { [$0] } ?? []
        carried = nil
        do {
            while let s = try reader.next() {
                if batch.count >= size && (s.document == nil || s.document != batch.last?.document || batch.count >= cap) {
                    carried = s
                    break
                }
                batch.append(s)
            }
        } catch {
            failed = true  // CoNLLReader throws only ToolError
            return (batch, error as? ToolError ?? ToolError.data("\(reader.lines.name): \(error)"))
        }
        return (batch, nil)
    }
}
