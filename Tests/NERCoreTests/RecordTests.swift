import Foundation
import NERCore
import Testing
import TestSupport

@Suite struct RecordTests {
    @Test func jsonKeepsUnknownFieldsAndNumberKinds() throws {
        let text = #"{"a":1,"b":2.5,"c":"x","d":[true,null],"e":{"f":-3}}"#
        let j = try JSON.parse(text)
        #expect(j["a"] == .int(1))
        #expect(j["b"] == .double(2.5))
        #expect(try JSON.parse(j.compactString) == j)
    }

    @Test func encodingEscapesAndRoundTrips() throws {
        let tricky: JSON = ["s": "quote \" backslash \\ newline \n tab \t bell \u{07} Zürich ☕ a/b",
                            "n": [1, -2, 0.5, 1e-7, 3.0], "z": nil, "b": [true, false]]
        let text = tricky.compactString
        #expect(!text.contains("\n") || text.contains("\\n"))
        #expect(text.hasPrefix(#"{"b":[true,false],"n":[1,-2,0.5,"#))
        #expect(text.contains(#"\u0007"#))
        #expect(try JSON.parse(text) == ["s": tricky["s"]!, "n": [1, -2, 0.5, 1e-7, 3], "z": nil, "b": [true, false]])
    }

    @Test func ndjsonReaderNamesTheBadLine() throws {
        let t = TempDir(); defer { t.remove() }
        let p = t.write("in.ndjson", "{\"a\":1}\n\n{\"a\":\n")
        var r = NDJSONReader(try LineReader(path: p))
        #expect(try r.next()?["a"] == 1)
        do {
            _ = try r.next()
            Issue.record("expected an error")
        } catch let e as ToolError {
            #expect(e.status == .dataError)
            #expect(e.message.hasPrefix("\(p):3: invalid JSON"))
        }
    }

    @Test func lineReaderRejectsInvalidUTF8WithItsLine() throws {
        let t = TempDir(); defer { t.remove() }
        let p = t.file("bad.txt")
        try Data([0x61, 0x0A, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: p))
        let r = try LineReader(path: p)
        #expect(try r.nextLine() == "a")
        #expect(throws: ToolError.self) { try r.nextLine() }
        #expect(r.lineNumber == 2)
    }

    @Test func missingFileIsExit66() {
        do {
            _ = try LineReader(path: "/nonexistent/x")
            Issue.record("expected an error")
        } catch let e as ToolError {
            #expect(e.status == .noInput)
        } catch { Issue.record("unexpected \(error)") }
    }

    @Test func atomicWriteLeavesNoTempFiles() throws {
        let t = TempDir(); defer { t.remove() }
        try AtomicFile.write("one", to: t.file("f"))
        try AtomicFile.write("two", to: t.file("f"))
        try AtomicFile.writeBatch([(Data("a".utf8), t.file("g")), (Data("b".utf8), t.file("h"))], stagingDir: t.path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: t.path).sorted() == ["f", "g", "h"])
        #expect(try String(contentsOfFile: t.file("f"), encoding: .utf8) == "two")
    }

    @Test func jobSpecValidationNamesTheField() throws {
        let t = TempDir(); defer { t.remove() }
        var s = JobSpec(train: t.write("train.txt", "EU B-ORG\n"))
        s.dropout = 1.5
        #expect(throws: ToolError.self) { try s.validate() }
        s.dropout = 0.5
        try s.validate()
        for (train, says) in [("/nonexistent", "train file /nonexistent: no such file"),
                              ("/dev/null", "train file /dev/null: not a regular file")] {
            s.train = train
            do { try s.validate(); Issue.record("expected an error") } catch let e as ToolError {
                #expect(e.status == .noInput)
                #expect(e.message == says)
            }
        }
    }

    @Test func timestampsAreRFC3339UTC() {
        let s = Timestamp.format(Date(timeIntervalSince1970: 0))
        #expect(s == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.parse(s) == Date(timeIntervalSince1970: 0))
    }
}
