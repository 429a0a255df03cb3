import Foundation
import NERCore
import NERText
import TestSupport
import Testing

@Suite struct CoNLLTests {
    /// Reads `content` written to a temporary file.
    func read(_ content: String, scheme: TagScheme = .auto) throws -> [Sentence] {
        let dir = TempDir("conll")
        defer { dir.remove() }
        return try CoNLL.read(path: dir.write("data.txt", content), scheme: scheme)
    }

    /// The error `CoNLL.read` throws for `bytes`, with the file's path replaced by `F`.
    func failure(_ bytes: [UInt8], scheme: TagScheme = .auto) -> ToolError? {
        let dir = TempDir("conll")
        defer { dir.remove() }
        let path = dir.file("bad.txt")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        do {
            _ = try CoNLL.read(path: path, scheme: scheme)
            return nil
        } catch let e as ToolError {
            return ToolError(e.status, e.message.replacingOccurrences(of: path, with: "F"))
        } catch {
            return nil
        }
    }

    func failure(_ text: String, scheme: TagScheme = .auto) -> ToolError? { failure(Array(text.utf8), scheme: scheme) }

    @Test func iob1FourColumnsWithDocstartRepeatedBlanksAndCRLF() throws {
        let text = "-DOCSTART- -X- O O\r\n\r\nEU NNP I-NP I-ORG\r\nrejects VBZ I-VP O\r\nGerman JJ I-NP I-MISC\r\n"
            + "call NN I-NP O\r\n\r\n\r\n\r\nPeter NNP I-NP I-PER\r\nBlackburn NNP I-NP I-PER\r\n\r\n"
            + "-DOCSTART- -X- O O\r\n\r\nIn IN I-PP O\r\nParis NNP I-NP I-LOC\r\nLyon NNP I-NP B-LOC\r\n"
            + "and CC O O\r\nBerlin NNP I-NP I-LOC\r\n"
        let s = try read(text)
        #expect(s == [
            Sentence(tokens: ["EU", "rejects", "German", "call"], tags: ["B-ORG", "O", "B-MISC", "O"], document: 0),
            Sentence(tokens: ["Peter", "Blackburn"], tags: ["B-PER", "I-PER"], document: 0),
            Sentence(tokens: ["In", "Paris", "Lyon", "and", "Berlin"], tags: ["O", "B-LOC", "B-LOC", "O", "B-LOC"], document: 1),
        ])
    }

    /// Sentences before the first -DOCSTART- belong to no document; one that a -DOCSTART- line ends
    /// (no blank line between) still belongs to the document it started in.
    @Test func documentNumbersFollowDocstartLines() throws {
        let s = try read("a O\n\n-DOCSTART- O\nb O\n-DOCSTART- O\n\nc O\n\nd O\n-DOCSTART- O\n-DOCSTART- O\ne O\n")
        #expect(s.map(\.tokens) == [["a"], ["b"], ["c"], ["d"], ["e"]])
        #expect(s.map(\.document) == [nil, 0, 1, 1, 3])
    }

    @Test func bioTwoColumnsWithTabsPassesThrough() throws {
        let s = try read("New\tB-LOC\nYork\tI-LOC\nis\tO\nbig\tO\n\nB-ORG\tB-ORG\n", scheme: .bio)
        #expect(s == [
            Sentence(tokens: ["New", "York", "is", "big"], tags: ["B-LOC", "I-LOC", "O", "O"]),
            Sentence(tokens: ["B-ORG"], tags: ["B-ORG"]),
        ])
    }

    @Test func bioesIsConvertedToBIO() throws {
        let text = "Obama S-PER\nvisited O\nBank B-ORG\nof I-ORG\nAmerica E-ORG\nin O\nParis S-LOC\n"
        for scheme in [TagScheme.auto, .bioes] {
            let s = try read(text, scheme: scheme)
            #expect(s.map(\.tags) == [["B-PER", "O", "B-ORG", "I-ORG", "I-ORG", "O", "B-LOC"]])
        }
    }

    @Test func wikigoldStyleFileEndingWithDocstart() throws {
        let s = try read("010 I-MISC\nis O\n\nThe I-ORG\nMad I-ORG\n\n-DOCSTART- O\n\n")
        #expect(s.map(\.tags) == [["B-MISC", "O"], ["B-ORG", "I-ORG"]])
    }

    @Test(.enabled(if: TestTools.sharedData != nil, "needs the CoNLL-2003 files in ../shared/data"))
    func readsTheSharedCoNLLDevFileWithItsPublishedCounts() throws {
        let data = try #require(TestTools.sharedData)
        let s = try CoNLL.read(path: data + "/conll2003/dev.txt")
        #expect(s.count == 3250)
        #expect(s.reduce(0) { $0 + $1.tokens.count } == 51362)
        #expect(s.reduce(0) { $0 + Tags.spans($1.tags).count } == 5942)
    }

    @Test func missingFileIs66() {
        #expect(throws: Error.self) { try CoNLL.read(path: "/nonexistent/train.txt") }
        do {
            _ = try CoNLL.read(path: "/nonexistent/train.txt")
        } catch let e as ToolError {
            #expect(e.status == .noInput)
            #expect(e.message == "/nonexistent/train.txt: no such file")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func folderIs66() {
        let dir = TempDir("conll")
        defer { dir.remove() }
        #expect(throws: Error.self) { try CoNLL.read(path: dir.path) }
        do {
            _ = try CoNLL.read(path: dir.path)
        } catch let e as ToolError {
            #expect(e.status == .noInput)
            #expect(e.message == "\(dir.path): is a folder, expected a CoNLL file")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func badInputGivesOneLineErrorsWithStatus65() {
        let cases: [(String, TagScheme, String)] = [
            ("EU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman I-MISC\n", .auto, "F:3: expected 4 columns, found 2"),
            ("EU B-ORG\n\nx y z O\n", .auto, "F:3: expected 2 columns, found 4"),
            ("EU\n", .auto, "F:1: expected at least 2 columns (token and tag), found 1"),
            ("EU B-ORG\nrejects X-PER\n", .auto, "F:2: invalid tag 'X-PER'"),
            ("EU B-\n", .auto, "F:1: invalid tag 'B-'"),
            ("EU PER\n", .auto, "F:1: invalid tag 'PER'"),
            ("EU S-ORG\n", .bio, "F:1: invalid tag 'S-ORG'"),
            ("EU E-ORG\n", .iob1, "F:1: invalid tag 'E-ORG'"),
            ("", .auto, "F: no sentences"),
            ("\n\n-DOCSTART- -X- O O\n\n", .auto, "F: no sentences"),
        ]
        for (text, scheme, message) in cases {
            let e = failure(text, scheme: scheme)
            #expect(e?.status == .dataError, "\(text)")
            #expect(e?.message == message)
        }
    }

    @Test func invalidUTF8NamesTheLine() {
        let bytes = Array("EU B-ORG\n".utf8) + [0x5A, 0xFC, 0x72, 0x20] + Array("B-LOC\n".utf8)
        let e = failure(bytes)
        #expect(e?.status == .dataError)
        #expect(e?.message == "F:2: invalid UTF-8")
    }

    @Test func readerStreamsSentencesFromALineReader() throws {
        let dir = TempDir("conll")
        defer { dir.remove() }
        let path = dir.write("a.txt", "a O\n\nb B-PER\n")
        var reader = CoNLLReader(try LineReader(path: path))
        #expect(try reader.next() == Sentence(tokens: ["a"], tags: ["O"]))
        #expect(try reader.next() == Sentence(tokens: ["b"], tags: ["B-PER"]))
        #expect(try reader.next() == nil)
    }

    /// Batches end only where documents end (or at the cap), never inside one, and keep every
    /// sentence once and in order; a bad line ends the stream after the sentences before it.
    @Test func documentBatchesNeverSplitADocument() throws {
        let dir = TempDir("conll"); defer { dir.remove() }
        // Two loose sentences, then documents of 3, 1, 5 and 2 sentences.
        var text = "a O\n\nb O\n\n"
        var expected: [Int?] = [nil, nil]
        for (d, n) in [3, 1, 5, 2].enumerated() {
            text += "-DOCSTART- O\n\n"
            for i in 0..<n { text += "w\(d)x\(i) O\n\n"; expected.append(d) }
        }
        let path = dir.write("docs.txt", text)
        func batches(size: Int, cap: Int) throws -> [[Sentence]] {
            var b = DocumentBatches(CoNLLReader(try LineReader(path: path)), size: size, cap: cap)
            var out: [[Sentence]] = []
            while true {
                let (batch, failure) = b.next()
                #expect(failure == nil)
                if batch.isEmpty { return out }
                out.append(batch)
            }
        }
        for size in 1...4 {
            let got = try batches(size: size, cap: 100)
            #expect(got.flatMap { $0 }.map(\.document) == expected)
            for (i, batch) in got.enumerated() {
                if i < got.count - 1 { #expect(batch.count >= size) }
                // The next batch starts a new document, or a loose sentence.
                if i + 1 < got.count, let doc = batch.last?.document { #expect(got[i + 1][0].document != doc) }
            }
        }
        #expect(try batches(size: 1, cap: 100).map(\.count) == [1, 1, 3, 1, 5, 2])
        // The 5-sentence document is cut at a cap of 3.
        #expect(try batches(size: 1, cap: 3).map(\.count) == [1, 1, 3, 1, 3, 2, 2])

        let bad = dir.write("bad.txt", "-DOCSTART- O\n\nx O\n\ny O\nz O extra\n")
        var b = DocumentBatches(CoNLLReader(try LineReader(path: bad)), size: 10, cap: 100)
        let (first, failure) = b.next()
        #expect(first.map(\.tokens) == [["x"]])
        #expect(failure?.message.contains("bad.txt:6: expected 2 columns, found 3") == true, "\(String(describing: failure))")
        #expect(b.next().sentences.isEmpty)
    }
}
