import Foundation
import NERCore
import Testing
import TestSupport

/// `POST /sim` and `ner-infer --embed`: one sentence vector per text, the same from both.
@Suite(.serialized)
struct SimilarityTests {
    func server(_ extra: [String] = []) throws -> ServerProcess {
        if let problem = Fixture.shared.problem { throw Failure(problem) }
        return try ServerProcess(["--model", Fixture.shared.modelDir, "--poll-interval", "0"] + extra)
    }

    func sim(_ s: ServerProcess, target: String, texts: [String]) throws -> [Double] {
        let body = JSON.object(["target": .string(target), "texts": .array(texts.map { .string($0) })]).encoded()
        let r = try s.post("/sim", body, type: "application/json")
        try #require(r.status == 200, "\(r.status): \(r.text)")
        let answer = try #require(r.json)
        #expect(answer["target"]?.stringValue == target)
        #expect(answer["texts"]?.arrayValue?.map { $0.stringValue } == texts)
        #expect(r.headers["x-model-id"]?.isEmpty == false)
        let sims = answer["sims"]?.arrayValue?.compactMap { $0.doubleValue }
        return try #require(sims)
    }

    @Test func curlExampleAnswersTargetTextsAndSimsInOrder() throws {
        let s = try server()
        let r = try curl(["-X", "POST", "-H", "Content-Type: application/json", "-d",
                          #"{"target":"JSON", "texts":["text", "format", "data"]}"#, s.base + "/sim"])
        #expect(r.status == 200)
        let answer = try JSON.parse(r.body)
        #expect(answer["target"]?.stringValue == "JSON")
        #expect(answer["texts"]?.arrayValue?.map { $0.stringValue } == ["text", "format", "data"])
        let found = answer["sims"]?.arrayValue?.compactMap { $0.doubleValue }
        let sims = try #require(found)
        #expect(sims.count == 3)
        #expect(sims.allSatisfy { (-1...1).contains($0) })

        let target = "George Washington was president of the United States."
        let texts = [target, "Paris is the capital of France.", "", "The president of the United States lives in Washington."]
        let forward = try sim(s, target: target, texts: texts)
        #expect(abs(forward[0] - 1) < 1e-5)
        #expect(forward[2] == 0)
        // Each sim belongs to its text, wherever the text stands and whatever stands beside it.
        let backward = try sim(s, target: target, texts: texts.reversed())
        #expect(zip(forward, backward.reversed()).allSatisfy { abs($0 - $1) < 1e-5 }, "\(forward) \(backward)")
        let alone = try sim(s, target: target, texts: [texts[1]])
        #expect(abs(alone[0] - forward[1]) < 1e-5)
        #expect(s.stop() == 0)
    }

    @Test func badRequestsGetTheirStatusAndAMessage() throws {
        let s = try server(["--max-body", "40000"])
        func expectError(_ body: String, type: String? = "application/json", _ status: Int, _ message: String,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
            let r = try s.post("/sim", Data(body.utf8), type: type)
            #expect(r.status == status, "\(r.status): \(r.text)", sourceLocation: sourceLocation)
            #expect(r.error?.contains(message) == true, "\(r.text)", sourceLocation: sourceLocation)
        }
        try expectError(#"{"texts": ["a"]}"#, 400, #"missing "target""#)
        try expectError(#"{"target": 3, "texts": ["a"]}"#, 400, #""target" must be a string"#)
        try expectError(#"{"target": "a"}"#, 400, #"missing "texts""#)
        try expectError(#"{"target": "a", "texts": "b"}"#, 400, #""texts" must be a list of strings"#)
        try expectError(#"{"target": "a", "texts": []}"#, 400, #""texts" is empty"#)
        try expectError(#"{"target": "a", "texts": ["b", 7]}"#, 400, #""texts"[1] is not a string"#)
        try expectError(#"["a"]"#, 400, "expected a JSON object")
        try expectError(#"{"target": "#, 400, "the body is")
        let many = JSON.object(["target": "a", "texts": .array(Array(repeating: .string("b"), count: 1025))]).compactString
        try expectError(many, 400, "holds 1025 texts; at most 1024 are allowed")
        try expectError(#"{"target": "a", "texts": ["b"]}"#, type: "text/plain", 415, "/sim takes application/json, not 'text/plain'")
        try expectError(#"{"target": "a", "texts": ["b"]}"#, type: "image/png", 415, "/sim takes application/json, not 'image/png'")
        try expectError(#"{"target": "a", "texts": ["b"]}"#, type: "application/json; charset=latin1", 415, "unsupported charset")
        let untyped = try curl(["-X", "POST", s.base + "/sim", "-H", "Content-Type:", "--data-binary", #"{"target": "a", "texts": ["b"]}"#])
        #expect(untyped.status == 415)
        #expect(untyped.body.contains("without a Content-Type"), "\(untyped.body)")
        let huge = JSON.object(["target": "a", "texts": .array(Array(repeating: .string("Paris is big."), count: 4000))]).compactString
        let file = Fixture.shared.root.write("sim-\(UUID().uuidString).json", huge)
        let refused = try curl(["-X", "POST", s.base + "/sim", "--data-binary", "@" + file, "-H", "Content-Type: application/json"])
        #expect(refused.status == 413)
        #expect(refused.body.contains("--max-body"), "\(refused.body)")
        let get = try s.get("/sim")
        #expect(get.status == 405)
        #expect(get.headers["allow"] == "POST")
        // 1024 texts are allowed.
        #expect(try sim(s, target: "a", texts: Array(repeating: "b", count: 1024)).count == 1024)
        #expect(try s.get("/metrics").text.contains(#"ner_requests_total{path="/sim",status="400"} 9"#))
        #expect(s.stop() == 0)
    }

    @Test func fullQueueAnswers503() throws {
        let s = try server(["--max-queue", "1", "--max-batch-delay", "3000", "--max-batch-size", "10000"])
        let group = DispatchGroup()
        let held = Statuses()
        // A /ner request waits out the batch delay and holds the one admission.
        onThread(group) {
            if let r = try? s.post("/ner", Data("Paris is big.".utf8), type: "text/plain") { held.add(r.status, retryAfter: nil) }
        }
        usleep(700_000)
        let r = try s.post("/sim", Data(#"{"target": "a", "texts": ["b"]}"#.utf8), type: "application/json")
        #expect(r.status == 503, "\(r.text)")
        #expect(r.headers["retry-after"] == "1")
        group.wait()
        #expect(held.all == [200])
        #expect(try sim(s, target: "a", texts: ["b"]).count == 1)
        #expect(s.stop() == 0)
    }

    /// `ner-infer --embed`: one line per input line, in order, whose dot products are /sim's answers.
    @Test func embedWritesOneVectorPerLineMatchingSim() throws {
        let lines = ["George Washington was president of the United States.", "Paris is the capital of France.", "",
                     "The president of the United States lives in Washington. He works there."]
        let r = try run("ner-infer", ["--model", Fixture.shared.modelDir, "--embed", "--quiet"], stdin: lines.joined(separator: "\n") + "\n")
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.lines.count == lines.count)
        var vectors: [[Double]] = []
        for (line, text) in zip(r.lines, lines) {
            let record = try JSON.parse(line)
            #expect(record["text"]?.stringValue == text)
            let vector = record["vector"]?.arrayValue?.compactMap { $0.doubleValue }
            vectors.append(try #require(vector))
        }
        #expect(Set(vectors.map(\.count)).count == 1)
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        #expect(abs(dot(vectors[0], vectors[0]) - 1) < 1e-5)
        #expect(vectors[2].allSatisfy { $0 == 0 })

        let s = try server()
        let sims = try sim(s, target: lines[0], texts: lines)
        for (i, v) in vectors.enumerated() {
            #expect(abs(dot(vectors[0], v) - sims[i]) < 1e-5, "line \(i): \(dot(vectors[0], v)) vs \(sims[i])")
        }
        #expect(s.stop() == 0)

        // JSON lines keep their fields and get "vector"; CoNLL is refused.
        let json = try run("ner-infer", ["--model", Fixture.shared.modelDir, "--embed", "--format", "json", "--quiet"],
                           stdin: #"{"id": 7, "text": "\#(lines[1])", "vector": "old"}"# + "\n")
        try #require(json.status == 0, "\(json.stderr)")
        let record = try JSON.parse(json.stdout)
        #expect(record["id"]?.intValue == 7)
        let found = record["vector"]?.arrayValue?.compactMap { $0.doubleValue }
        let v = try #require(found)
        #expect(zip(v, vectors[1]).allSatisfy { abs($0 - $1) < 1e-6 })
        let conll = try run("ner-infer", ["--model", Fixture.shared.modelDir, "--embed", "--format", "conll"])
        #expect(conll.status == 64)
    }
}
