import Foundation
import NERCore
import TestSupport
import Testing

/// `ner-infer` without a model: its errors, its argument checks and `--tokenize-only`. Tagging with a
/// trained model is tested with the engine (NEREngineTests).
@Suite struct InferCommandTests {
    @Test func missingModelIs66() throws {
        let home = TempDir("infer-home")
        defer { home.remove() }
        let r = try run("ner-infer", ["--home", home.path, "--model", "/nonexistent/model"], stdin: "Hello\n")
        #expect(r.status == 66)
        #expect(r.stderr.hasPrefix("ner-infer: error: ") && r.stderr.contains("/nonexistent/model"))
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stdout.isEmpty)
    }

    @Test func badFlagsAre64() throws {
        #expect(try run("ner-infer", ["--model", "m", "--eval"]).status == 64)
        #expect(try run("ner-infer", []).status == 64)
        #expect(try run("ner-infer", ["--model", "m", "--batch-lines", "0"]).status == 64)
        #expect(try run("ner-infer", ["--model", "m", "--format", "xml"]).status == 64)
    }

    @Test func tokenizeOnlyPrintsSentencesWithOffsets() throws {
        let r = try run("ner-infer", ["--tokenize-only", "--threads", "2", "--batch-lines", "2", "-q"],
                        stdin: "Germany's team won.\n\nMr. Smith left. He came back.\nZürich")
        #expect(r.status == 0)
        let lines = try r.lines.map { try JSON.parse($0) }
        #expect(lines.count == 4)
        #expect(lines.map { $0["text"]?.stringValue } == ["Germany's team won.", "", "Mr. Smith left. He came back.", "Zürich"])
        func texts(_ j: JSON) -> [[String]] {
            (j["sentences"]?.arrayValue ?? []).map { ($0.arrayValue ?? []).compactMap { $0["text"]?.stringValue } }
        }
        #expect(texts(lines[0]) == [["Germany", "'s", "team", "won", "."]])
        #expect(texts(lines[1]) == [])
        #expect(texts(lines[2]) == [["Mr.", "Smith", "left", "."], ["He", "came", "back", "."]])
        let token = lines[3]["sentences"]?.arrayValue?.first?.arrayValue?.first
        #expect(token == ["text": "Zürich", "start": 0, "end": 6])
    }

    @Test func invalidUTF8StopsWith65AfterTheLinesBeforeIt() throws {
        let dir = TempDir("infer")
        defer { dir.remove() }
        let path = dir.file("in.txt")
        let bytes = Array("one line\n".utf8) + [0xFF, 0x0A] + Array("three\n".utf8)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let r = try run("ner-infer", ["--tokenize-only", "--input", path, "-q"])
        #expect(r.status == 65)
        #expect(r.stderr == "ner-infer: error: \(path):2: invalid UTF-8\n")
        #expect(r.lines.count == 1)
    }

    @Test func missingInputIs66() throws {
        let r = try run("ner-infer", ["--tokenize-only", "--input", "/nonexistent/in.txt"])
        #expect(r.status == 66)
        #expect(r.stderr == "ner-infer: error: /nonexistent/in.txt: no such file\n")
    }

    @Test func helpReadsLikeAManPage() throws {
        let r = try run("ner-infer", ["--help"])
        #expect(r.status == 0)
        for part in ["--model", "--format", "--batch-lines", "--threads", "EXAMPLES", "ner-infer --model", "EXIT STATUS", "Unicode scalars"] {
            #expect(r.stdout.contains(part), "\(part)")
        }
    }
}
