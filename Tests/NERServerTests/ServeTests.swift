import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NERCore
import Testing
import TestSupport

/// `ner-serve` as a user meets it: the real executable on a real socket, real HTTP clients (curl and
/// URLSession), a model trained by the real ner-train.
@Suite(.serialized)
struct ServeTests {
    static let sample = "George Washington was president of the United States."

    /// The entities ner-infer (the batch tool, the reference path) finds in each text.
    func reference(_ texts: [String]) throws -> [[JSON]] {
        let input = texts.map { JSON.object(["text": .string($0)]).compactString }.joined(separator: "\n") + "\n"
        let r = try run("ner-infer", ["--model", Fixture.shared.modelDir, "--format", "json", "--quiet"], stdin: input)
        try #require(r.status == 0, "ner-infer failed: \(r.stderr)")
        return try r.lines.map { try #require(JSON.parse($0)["entities"]?.arrayValue) }
    }

    /// Checks every entity against the text it claims to come from, and the list against ner-infer's.
    func expectSameEntities(_ got: [JSON], _ want: [JSON], in text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let scalars = Array(text.unicodeScalars)
        for e in got {
            guard let start = e["start"]?.intValue, let end = e["end"]?.intValue, let s = e["text"]?.stringValue,
                  e["tag"]?.stringValue != nil, e["score"]?.doubleValue != nil, 0 <= start, start < end, end <= scalars.count else {
                Issue.record("malformed entity \(e.compactString)", sourceLocation: sourceLocation)
                continue
            }
            var slice = ""
            slice.unicodeScalars.append(contentsOf: scalars[start..<end])
            #expect(slice == s, "offsets \(start)..<\(end) give '\(slice)', not '\(s)'", sourceLocation: sourceLocation)
        }
        func key(_ e: JSON) -> String {
            "\(e["start"]?.intValue ?? -1)-\(e["end"]?.intValue ?? -1)-\(e["tag"]?.stringValue ?? "")-\(e["text"]?.stringValue ?? "")"
        }
        #expect(got.map(key) == want.map(key), sourceLocation: sourceLocation)
        for (g, w) in zip(got, want) {
            #expect(abs((g["score"]?.doubleValue ?? 0) - (w["score"]?.doubleValue ?? 0)) < 0.01, sourceLocation: sourceLocation)
        }
    }

    /// Starts `count` POSTs of the sample, each its own curl process on its own thread, so all are on
    /// the wire at once. A status is 200 only when the body is a JSON list; -1 when curl failed.
    func startPosts(_ count: Int, to s: ServerProcess) -> (DispatchGroup, Statuses) {
        let group = DispatchGroup()
        let statuses = Statuses()
        for i in 0..<count {
            onThread(group) {
                let r = try? curl(["-X", "POST", s.base + "/ner", "-H", "Content-Type: text/plain",
                                   "--data", "Request \(i): \(Self.sample)"])
                statuses.add(r.map { $0.status == 200 && (try? JSON.parse($0.body).arrayValue) != nil ? 200 : $0.status } ?? -1)
            }
        }
        return (group, statuses)
    }

    func server(_ extra: [String] = [], env: [String: String] = [:]) throws -> ServerProcess {
        if let problem = Fixture.shared.problem { throw Failure(problem) }
        return try ServerProcess(["--model", Fixture.shared.modelDir, "--poll-interval", "0"] + extra, env: env)
    }

    @Test func curlExampleReturnsEntitiesWithOffsetsIntoTheBody() throws {
        let s = try server()
        let r = try curl(["-X", "POST", s.base + "/ner", "--data", Self.sample, "-H", "Content-type: text/plain"])
        #expect(r.status == 200)
        let list = try #require(try JSON.parse(r.body).arrayValue, "expected a JSON list: \(r.body)")
        for e in list {
            #expect(Set(e.objectValue?.keys.map { $0 } ?? []) == ["text", "tag", "start", "end", "score"])
        }
        expectSameEntities(list, try reference([Self.sample])[0], in: Self.sample)
        #expect(s.stop() == 0)
        #expect(s.stderr.contains("POST /ner 200"), "one access-log line per request: \(s.stderr)")
    }

    /// `--device cuda` (on the tests' CPU stand-in for the CUDA libraries where there is no GPU):
    /// the same entities as the CPU path, through the batcher's worker threads.
    @Test func servesFromTheGPU() throws {
        let env = try #require(CUDAStandIn.environment, "no CUDA stand-in: \(CUDAStandIn.problem)")
        let s = try server(["--device", "cuda"], env: env)
        let texts = [Self.sample, "EU rejects German call to boycott British lamb."]
        let want = try reference(texts)
        for (text, expected) in zip(texts, want) {
            let reply = try s.post("/ner", Data(text.utf8), type: "text/plain")
            #expect(reply.status == 200)
            expectSameEntities(try #require(try JSON.parse(reply.body).arrayValue), expected, in: text)
        }
        let (group, statuses) = startPosts(16, to: s)
        group.wait()
        #expect(statuses.all == Array(repeating: 200, count: 16))
        #expect(s.stop() == 0)
    }

    @Test func modelFindsEntitiesSoOffsetChecksMeanSomething() throws {
        let texts = [Self.sample, "EU rejects German call to boycott British lamb.",
                     "Peter Blackburn of the European Commission said in Brussels on Thursday that Germany disagreed."]
        let found = try reference(texts).reduce(0) { $0 + $1.count }
        #expect(found > 0, "the test model tags nothing; the offset checks would prove nothing")
    }

    @Test func jsonBodiesGiveAListOrAListOfLists() throws {
        let s = try server()
        let texts = [Self.sample, "Angela Merkel visited Paris and met Emmanuel Macron.", ""]
        let want = try reference(texts)

        let one = try s.post("/ner", Data(JSON.object(["text": .string(texts[1])]).compactString.utf8), type: "application/json")
        #expect(one.status == 200)
        #expect(one.headers["content-type"] == "application/json")
        expectSameEntities(try #require(one.json?.arrayValue), want[1], in: texts[1])

        let many = try s.post("/ner", Data(JSON.object(["texts": .array(texts.map { .string($0) })]).compactString.utf8),
                              type: "application/json; charset=utf-8")
        #expect(many.status == 200)
        let lists = try #require(many.json?.arrayValue)
        try #require(lists.count == texts.count)
        for i in texts.indices {
            expectSameEntities(try #require(lists[i].arrayValue), want[i], in: texts[i])
        }
        #expect(s.stop() == 0)
    }

    @Test func multiSentenceBodiesMapOffsetsIntoTheWholeBody() throws {
        let s = try server()
        // Several sentences, a blank line, and scalars outside ASCII before the later entities, so an
        // offset counted per sentence or in bytes would be wrong.
        let body = """
        Zürich ☕ is not in Germany. George Washington was president of the United States.

        Angela Merkel met 🇫🇷 Emmanuel Macron in Paris on Thursday. EU rejects German call to boycott British lamb.
        """
        let r = try s.post("/ner", Data(body.utf8), type: "text/plain")
        #expect(r.status == 200)
        let got = try #require(r.json?.arrayValue)
        let want = try reference([body])[0]
        expectSameEntities(got, want, in: body)
        // The same body sent by curl with no Content-Type at all is read as plain text.
        let plain = try curl(["-X", "POST", s.base + "/ner", "--data-binary", body, "-H", "Content-Type:"])
        #expect(plain.status == 200)
        expectSameEntities(try #require(try JSON.parse(plain.body).arrayValue), want, in: body)

        // curl sends "Expect: 100-continue" for bodies over 1 KiB and, told to, waits 30 s for the
        // go-ahead; the server must give it at once.
        let long = String(repeating: body + "\n\n", count: 20)
        let file = Fixture.shared.root.write("long-\(UUID().uuidString).txt", long)
        let continued = try curl(["-X", "POST", s.base + "/ner", "--data-binary", "@" + file, "-H", "Content-Type: text/plain",
                                  "--expect100-timeout", "30", "--max-time", "10"])
        #expect(continued.status == 200)
        expectSameEntities(try #require(try JSON.parse(continued.body).arrayValue), try reference([long])[0], in: long)
        #expect(s.stop() == 0)
    }

    @Test func badInputGetsItsStatusAndAJSONErrorAndServingGoesOn() throws {
        let s = try server(["--max-body", "2000"])
        func expectError(_ r: Reply, _ status: Int, _ sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(r.status == status, "\(r.status): \(r.text)", sourceLocation: sourceLocation)
            #expect(r.headers["content-type"] == "application/json", sourceLocation: sourceLocation)
            #expect(r.error?.isEmpty == false, "no JSON error in \(r.text)", sourceLocation: sourceLocation)
        }
        expectError(try s.post("/ner", Data([0x47, 0x65, 0xFF, 0xFE, 0x6F]), type: "text/plain"), 400)
        expectError(try s.post("/ner", Data("{\"text\": ".utf8), type: "application/json"), 400)
        expectError(try s.post("/ner", Data("[1, 2]".utf8), type: "application/json"), 400)
        expectError(try s.post("/ner", Data("{\"text\": 5}".utf8), type: "application/json"), 400)
        expectError(try s.post("/ner", Data("{\"texts\": [\"a\", 7]}".utf8), type: "application/json"), 400)
        expectError(try s.post("/ner", Data("{\"text\": \"a\", \"texts\": []}".utf8), type: "application/json"), 400)
        expectError(try s.post("/ner", Data([0x7B, 0x22, 0x74, 0x22, 0x3A, 0x22, 0xC3, 0x22, 0x7D]), type: "application/json"), 400)
        expectError(try s.post("/ner", Data("hello".utf8), type: "image/png"), 415)
        expectError(try s.post("/ner", Data("hello".utf8), type: "text/plain; charset=latin1"), 415)
        expectError(try s.post("/ner", Data(String(repeating: "Paris is big. ", count: 200).utf8), type: "text/plain"), 413)
        let get = try s.get("/ner")
        expectError(get, 405)
        #expect(get.headers["allow"] == "POST")
        let postHealth = try s.post("/healthz", Data(), type: "text/plain")
        expectError(postHealth, 405)
        #expect(postHealth.headers["allow"] == "GET")
        expectError(try s.get("/nope"), 404)
        expectError(try s.get("/ner/extra"), 404)

        // A 413 announced by Content-Length is refused before the body is read, and the connection closed.
        let big = Fixture.shared.root.write("big-\(UUID().uuidString).txt", String(repeating: "x", count: 1_000_000))
        let refused = try curl(["-X", "POST", s.base + "/ner", "--data-binary", "@" + big, "-H", "Content-Type: text/plain"])
        #expect(refused.status == 413)

        let ok = try s.post("/ner", Data(Self.sample.utf8), type: "text/plain")
        #expect(ok.status == 200)
        #expect(ok.json?.arrayValue != nil)
        #expect(try s.get("/healthz").status == 200)
        #expect(s.stop() == 0)
    }

    @Test func bearerTokenGuardsEverythingButTheProbes() throws {
        for viaEnvironment in [false, true] {
            let s = viaEnvironment ? try server(env: ["NER_SERVE_TOKEN": "s3cret"]) : try server(["--token", "s3cret"])
            let none = try s.post("/ner", Data(Self.sample.utf8), type: "text/plain")
            #expect(none.status == 401)
            #expect(none.headers["www-authenticate"] == "Bearer")
            #expect(none.error != nil)
            #expect(try s.post("/ner", Data(Self.sample.utf8), type: "text/plain",
                               headers: ["Authorization": "Bearer s3cre"]).status == 401)
            #expect(try s.get("/metrics").status == 401)
            #expect(try s.get("/v1/models", headers: ["Authorization": "Bearer s3cret"]).status == 200)
            #expect(try s.post("/ner", Data(Self.sample.utf8), type: "text/plain",
                               headers: ["Authorization": "Bearer s3cret"]).status == 200)
            #expect(try s.get("/healthz").status == 200)
            #expect(try s.get("/readyz").status == 200)
            #expect(s.stop() == 0)
        }
    }

    @Test func slowClientIsDisconnectedAndOthersAreServed() throws {
        let s = try server(["--read-timeout", "1"])
        let slow = try RawConnection(port: s.port)
        slow.send("POST /ner HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n")
        let started = Date()
        let (_, closed) = slow.readUntilClosed(timeout: 8)
        #expect(closed, "a client that never finishes its headers must be cut off")
        #expect(Date().timeIntervalSince(started) < 5)

        let dripping = try RawConnection(port: s.port)
        dripping.send("POST /ner HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nGeorge")
        #expect(dripping.readUntilClosed(timeout: 8).closed, "a body that never arrives in full must be cut off")

        // The clock restarts after each answer: a keep-alive client that stalls in its second
        // request is cut off too, after its first was answered.
        let body = Self.sample
        let second = try RawConnection(port: s.port)
        second.send("POST /ner HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                    + "POST /ner HTTP/1.1\r\nHost: x\r\n")
        let again = Date()
        let (answered, cut) = second.readUntilClosed(timeout: 8)
        #expect(cut && answered.hasPrefix("HTTP/1.1 200 OK"), "\(answered)")
        #expect(Date().timeIntervalSince(again) < 5)

        #expect(try s.post("/ner", Data(Self.sample.utf8), type: "text/plain").status == 200)
        #expect(s.stop() == 0)
    }

    @Test func connectionsFollowHTTP11KeepAlivePipeliningAndClose() throws {
        let s = try server(["--max-body", "2000"])
        let body = Self.sample
        let post = "POST /ner HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"

        // Three requests in one write: three answers, in order, on the connection that stays open.
        let pipelined = try RawConnection(port: s.port)
        pipelined.send(post + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + post)
        // Long enough for three answers on a loaded machine; the connection must still be open after it.
        let (text, closed) = pipelined.readUntilClosed(timeout: 3)
        #expect(!closed, "a keep-alive connection must stay open")
        #expect(text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(6) } == ["200 OK", "200 OK", "200 OK"],
                "\(text)")
        let health = try #require(text.range(of: "{\"status\":\"ok\"}"), "the /healthz answer is missing: \(text)")
        let firstList = try #require(text.range(of: "[{\"text\":\"George Washington\""))
        let lastList = try #require(text.range(of: "[{\"text\":\"George Washington\"", options: .backwards))
        #expect(firstList.lowerBound < health.lowerBound && health.lowerBound < lastList.lowerBound,
                "answers out of order: \(text)")

        // "Connection: close" and HTTP/1.0 without keep-alive: one answer, then the server closes.
        for request in ["GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "GET /healthz HTTP/1.0\r\n\r\n"] {
            let c = try RawConnection(port: s.port)
            c.send(request)
            let (answer, closedAfter) = c.readUntilClosed(timeout: 5)
            #expect(answer.contains(" 200 OK\r\n") && answer.lowercased().contains("connection: close"), "\(answer)")
            #expect(closedAfter, "the server must close after answering \(request.debugDescription)")
        }

        // A chunked body that grows past --max-body: 413 with a JSON error, then the connection closes.
        let chunked = try RawConnection(port: s.port)
        let chunk = String(repeating: "Paris is big. ", count: 100)
        let size = String(chunk.utf8.count, radix: 16)
        chunked.send("POST /ner HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "\(size)\r\n\(chunk)\r\n\(size)\r\n\(chunk)\r\n")
        let (refused, closedOnRefusal) = chunked.readUntilClosed(timeout: 5)
        #expect(refused.hasPrefix("HTTP/1.1 413 "), "\(refused)")
        #expect(refused.contains("{\"error\":"), "\(refused)")
        #expect(closedOnRefusal)

        #expect(try s.post("/ner", Data(body.utf8), type: "text/plain").status == 200)
        #expect(s.stop() == 0)
    }

    @Test func metricsAndModelsDescribeWhatIsServed() throws {
        let s = try server()
        for _ in 0..<3 { #expect(try s.post("/ner", Data(Self.sample.utf8), type: "text/plain").status == 200) }
        _ = try s.get("/missing")
        let models = try #require(try s.get("/v1/models").json?["models"]?.arrayValue)
        try #require(models.count == 1)
        let id = try #require(models[0]["id"]?.stringValue)
        #expect(models[0]["directory"]?.stringValue == Fixture.shared.modelDir)
        #expect(models[0]["labels"]?.arrayValue?.isEmpty == false)
        #expect(try s.get("/readyz").json?["model"]?.stringValue == id)

        let metrics = try s.get("/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        let text = metrics.text
        #expect(text.contains("ner_requests_total{path=\"/ner\",status=\"200\"} 3\n"), "\(text)")
        #expect(text.contains("ner_requests_total{path=\"other\",status=\"404\"} 1\n"))
        #expect(text.contains("ner_request_errors_total 1\n"))
        #expect(text.contains("ner_model_info{model_id=\"\(id)\""))
        #expect(text.contains("ner_request_duration_seconds_bucket{le=\"+Inf\"}"))
        #expect(text.contains("ner_batch_size_count"))
        #expect(text.contains("ner_ready 1\n"))
        #expect(s.stop() == 0)
    }

    @Test func aliasMoveSwitchesModelsWithoutFailingARequest() throws {
        if let problem = Fixture.shared.problem { throw Failure(problem) }
        let home = try Fixture.shared.registryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let s = try ServerProcess(["--model", "tiny", "--home", home, "--poll-interval", "0.2"])
        #expect(try servedModel(s) == "tiny-a")

        let load = Load(server: s, clients: 4)
        load.start()
        usleep(300_000)
        let promoted = try run("ner-register", ["promote", "tiny-b", "--home", home, "--quiet"])
        try #require(promoted.status == 0, "\(promoted.stderr)")
        let deadline = Date().addingTimeInterval(15)
        while (try? servedModel(s)) != "tiny-b" && Date() < deadline {
            usleep(50_000)
        }
        usleep(500_000)
        let seen = load.stop()
        #expect(seen.failures == [], "requests failed during the switch")
        #expect(seen.models.first == "tiny-a")
        #expect(seen.models.last == "tiny-b", "responses never came from the promoted model")
        #expect(seen.count > 20)
        #expect(try servedModel(s) == "tiny-b")
        #expect(try s.get("/metrics").text.contains("ner_model_reloads_total{result=\"success\"} 1\n"))
        #expect(s.stop() == 0)
        #expect(s.stderr.contains("switched from model tiny-a to tiny-b"))
    }

    /// A model whose model.json is out of range (max_word_chars -5 made the server abort while
    /// loading it) is promoted while the server serves: the old model keeps serving, and the cause
    /// shows in the log, in /v1/models and in /metrics.
    @Test func aBrokenModelPromotedWhileServingLeavesTheOldOneServing() throws {
        if let problem = Fixture.shared.problem { throw Failure(problem) }
        let home = try Fixture.shared.registryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        try Fixture.shared.registerBrokenModel(in: home)

        let s = try ServerProcess(["--model", "tiny", "--home", home, "--poll-interval", "0.2"])
        #expect(try servedModel(s) == "tiny-a")
        #expect(try s.get("/v1/models").json?["last_reload_error"] == .null)
        let promoted = try run("ner-register", ["promote", "tiny-broken", "--home", home, "--quiet"])
        try #require(promoted.status == 0, "\(promoted.stderr)")
        let deadline = Date().addingTimeInterval(15)
        var models = try s.get("/v1/models").json
        while models?["last_reload_error"] == .null && Date() < deadline {
            usleep(50_000)
            models = try s.get("/v1/models").json
        }
        let problem = try #require(models?["last_reload_error"]?["error"]?.stringValue, "no reload error reported")
        #expect(problem.contains("config.max_word_chars is -5"), "\(problem)")
        #expect(models?["last_reload_error"]?["at"]?.stringValue != nil)
        #expect(models?["models"]?.arrayValue?.first?["id"]?.stringValue == "tiny-a")

        // Still serving the old model, and polling does not load the broken one again and again.
        usleep(1_000_000)
        let reply = try s.post("/ner", Data(Self.sample.utf8), type: "text/plain")
        #expect(reply.status == 200)
        #expect(reply.headers["x-model-id"] == "tiny-a")
        let metrics = try s.get("/metrics").text
        #expect(metrics.contains("ner_model_reloads_total{result=\"failure\"} 1\n"), "\(metrics)")
        #expect(s.stderr.contains("failed, still serving tiny-a"), "\(s.stderr)")

        // A good model promoted next is served, and the error is cleared.
        #expect(try run("ner-register", ["promote", "tiny-b", "--home", home, "--quiet"]).status == 0)
        let again = Date().addingTimeInterval(15)
        while (try? servedModel(s)) != "tiny-b" && Date() < again { usleep(50_000) }
        #expect(try servedModel(s) == "tiny-b")
        #expect(try s.get("/v1/models").json?["last_reload_error"] == .null)
        #expect(s.stop() == 0)
    }

    @Test func sighupReloadsUnderLoad() throws {
        let s = try server()
        let load = Load(server: s, clients: 3)
        load.start()
        usleep(200_000)
        kill(s.process.processIdentifier, SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        while !(try s.get("/metrics").text.contains("ner_model_reloads_total{result=\"success\"} 1\n")) && Date() < deadline {
            usleep(50_000)
        }
        usleep(200_000)
        let seen = load.stop()
        #expect(seen.failures == [])
        #expect(try s.get("/metrics").text.contains("ner_model_reloads_total{result=\"success\"} 1\n"))
        #expect(s.stop() == 0)
    }

    @Test func sigtermAnswersEveryRequestInFlightAndExitsZero() throws {
        // A batch delay far longer than the test holds the requests in the batcher when SIGTERM
        // arrives, however slowly a loaded machine starts the eight curl processes (each its own
        // process, so all eight are surely on the wire at once).
        let s = try server(["--max-batch-delay", "600000", "--max-batch-size", "10000"])
        let (group, statuses) = startPosts(8, to: s)
        let deadline = Date().addingTimeInterval(60)
        var inFlight = false
        while !inFlight && Date() < deadline {
            inFlight = (try? curl([s.base + "/metrics"], maxTime: 5).body.contains("ner_queue_depth 8\n")) ?? false
            if !inFlight { usleep(50_000) }
        }
        try #require(inFlight, "the eight requests never were in flight together")
        let signalled = Date()
        kill(s.process.processIdentifier, SIGTERM)
        group.wait()
        s.process.waitUntilExit()
        #expect(statuses.all == Array(repeating: 200, count: 8))
        #expect(s.process.terminationStatus == 0)
        #expect(s.stderr.contains("draining"))
        #expect(s.stderr.contains("stopped"))
        // The drain runs what is queued at once rather than waiting out the ten-minute delay.
        #expect(Date().timeIntervalSince(signalled) < 60)
        // Once drained, nothing listens any more.
        #expect((try? curl([s.base + "/healthz"], maxTime: 2).status) == 0)
    }

    /// Keep-alive clients sending request after request when SIGTERM arrives, over several runs (a
    /// connection caught between two requests was reset in about half of them): every request a
    /// client sent is answered, and a connection that carried one ends with `Connection: close`.
    @Test func sigtermAnswersEveryRequestSentOnAKeepAliveConnection() throws {
        for run in 0..<5 {
            let s = try server()
            let clients = (0..<8).map { _ in KeepAliveClient(port: s.port, body: Self.sample) }
            let group = DispatchGroup()
            for c in clients { onThread(group) { c.run() } }
            usleep(300_000)
            kill(s.process.processIdentifier, SIGTERM)
            group.wait()
            s.process.waitUntilExit()
            #expect(s.process.terminationStatus == 0)
            for (i, c) in clients.enumerated() {
                #expect(c.failure == nil, "run \(run), client \(i): \(c.failure ?? "")")
                #expect(c.answered > 0, "run \(run), client \(i) got no answer at all")
            }
        }
    }

    @Test func idleWorkersSplitWhatIsQueued() throws {
        // Eight requests arrive within the batch delay: the two idle workers split them, rather than
        // one worker taking all eight while the other core waits.
        let s = try server(["--workers", "2", "--max-batch-delay", "2000"])
        let (group, statuses) = startPosts(8, to: s)
        group.wait()
        #expect(statuses.all == Array(repeating: 200, count: 8))
        // Every batch holds at most four. (A worker that finishes this tiny model's batch before the
        // other has woken up is idle again and shares the rest, so there may be more than two.)
        let metrics = try s.get("/metrics").text
        func value(_ name: String) -> Int? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Int($0.split(separator: " ")[1]) }
        }
        let batches = try #require(value("ner_batch_size_count"), "\(metrics)")
        #expect(batches >= 2)
        #expect(value("ner_batch_size_bucket{le=\"4.0\"}") == batches, "\(metrics)")
        #expect(s.stop() == 0)
    }

    @Test func fullQueueAnswers503WithRetryAfter() throws {
        let s = try server(["--max-queue", "1", "--max-batch-delay", "3000", "--max-batch-size", "10000"])
        let group = DispatchGroup()
        let replies = Statuses()
        for _ in 0..<6 {
            onThread(group) {
                if let r = try? s.post("/ner", Data(Self.sample.utf8), type: "text/plain") {
                    replies.add(r.status, retryAfter: r.headers["retry-after"])
                }
            }
        }
        group.wait()
        #expect(replies.all.filter { $0 == 200 }.count >= 1)
        #expect(replies.all.filter { $0 == 503 }.count >= 1)
        #expect(replies.all.allSatisfy { $0 == 200 || $0 == 503 })
        #expect(replies.retryAfter.allSatisfy { $0 == "1" })
        #expect(s.stop() == 0)
    }

    @Test func missingModelExits66BeforeListening() throws {
        let r = try run("ner-serve", ["--model", "/nonexistent/model", "--port", "0", "--home", Fixture.shared.root.file("empty-home")])
        #expect(r.status == 66)
        #expect(r.stderr.contains("ner-serve: error:"))
        #expect(!r.stderr.contains("listening"))
    }

    @Test func portInUseExits69() throws {
        let s = try server()
        let r = try run("ner-serve", ["--model", Fixture.shared.modelDir, "--port", String(s.port)])
        #expect(r.status == 69, "\(r.stderr)")
        #expect(r.stderr.contains("cannot listen on 127.0.0.1:\(s.port)"))
        #expect(s.stop() == 0)
    }

    @Test func helpReadsLikeAManPage() throws {
        let r = try run("ner-serve", ["--help"])
        #expect(r.status == 0)
        for needle in ["POST /ner", "GET /readyz", "--max-batch-delay", "--max-body", "--token", "SIGHUP", "EXIT STATUS", "69"] {
            #expect(r.stdout.contains(needle), "--help lacks \(needle)")
        }
    }
}

/// Runs `body` on a thread of its own. GCD's global queues on Linux run only about as many blocking
/// items at once as there are cores, too few for clients that must overlap.
func onThread(_ group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
    group.enter()
    Thread.detachNewThread {
        body()
        group.leave()
    }
}

/// The id `/v1/models` reports.
func servedModel(_ s: ServerProcess) throws -> String? {
    try s.get("/v1/models").json?["models"]?.arrayValue?.first?["id"]?.stringValue
}

/// Clients posting the sample sentence in a loop, recording failures and which model answered.
final class Load: @unchecked Sendable {
    let server: ServerProcess
    let clients: Int
    private let lock = NSLock()
    private var running = true
    private var failures: [String] = []
    private var models: [String] = []
    private var count = 0
    private let group = DispatchGroup()

    init(server: ServerProcess, clients: Int) {
        self.server = server
        self.clients = clients
    }

    func start() {
        for _ in 0..<clients {
            onThread(group) { [self] in
                while isRunning {
                    do {
                        let r = try server.post("/ner", Data(ServeTests.sample.utf8), type: "text/plain")
                        record(r.status == 200 && r.json?.arrayValue != nil ? nil : "\(r.status): \(r.text)",
                               model: r.headers["x-model-id"])
                    } catch {
                        record("\(error)", model: nil)
                    }
                }
            }
        }
    }

    private var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    private func record(_ failure: String?, model: String?) {
        lock.lock()
        defer { lock.unlock() }
        count += 1
        if let failure { failures.append(failure) }
        if let model, models.last != model { models.append(model) }
    }

    /// Stops the clients and returns the failures, the models in the order they answered, and the count.
    func stop() -> (failures: [String], models: [String], count: Int) {
        lock.lock()
        running = false
        lock.unlock()
        group.wait()
        lock.lock()
        defer { lock.unlock() }
        return (failures, models, count)
    }
}

final class Statuses: @unchecked Sendable {
    private let lock = NSLock()
    private var statuses: [Int] = []
    private var retries: [String?] = []

    func add(_ status: Int, retryAfter: String? = nil) {
        lock.lock()
        statuses.append(status)
        if status == 503 { retries.append(retryAfter) }
        lock.unlock()
    }

    var all: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return statuses
    }

    var retryAfter: [String?] {
        lock.lock()
        defer { lock.unlock() }
        return retries
    }
}

/// A keep-alive client as a browser or an HTTP library is one: it sends its next request as soon as
/// the last answer is in, unless that answer said `Connection: close` or the server has closed the
/// connection in between. A request sent and never answered is its failure.
final class KeepAliveClient: @unchecked Sendable {
    let port: Int
    let request: String
    private(set) var answered = 0
    private(set) var failure: String?

    init(port: Int, body: String) {
        self.port = port
        request = "POST /ner HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    func run() {
        guard let c = try? RawConnection(port: port) else {
            failure = "cannot connect"
            return
        }
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        while true {
            var probe: UInt8 = 0
            let peek = recv(c.fd, &probe, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if peek == 0 || (peek < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return }  // closed while idle
            c.send(request)
            guard let head = readAnswer(c.fd) else {
                failure = "request \(answered + 1) was sent and never answered (errno \(errno))"
                return
            }
            guard head.hasPrefix("HTTP/1.1 200") else {
                failure = "answered \(head.prefix(40))"
                return
            }
            answered += 1
            if head.lowercased().contains("\r\nconnection: close") { return }
        }
    }

    /// Reads one whole response; its head, or nil when the connection ended first.
    private func readAnswer(_ fd: Int32) -> String? {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var headEnd: Int?
        var length = 0
        while true {
            if headEnd == nil, let r = findHeadEnd(data) {
                headEnd = r
                let head = String(decoding: data[..<r], as: UTF8.self).lowercased()
                if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }) {
                    length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let end = headEnd, data.count >= end + 4 + length {
                return String(decoding: data[..<end], as: UTF8.self)
            }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return nil }
            data += buffer[0..<n]
        }
    }

    private func findHeadEnd(_ d: [UInt8]) -> Int? {
        guard d.count >= 4 else { return nil }
        for i in 0...(d.count - 4) where d[i] == 13 && d[i + 1] == 10 && d[i + 2] == 13 && d[i + 3] == 10 { return i }
        return nil
    }
}
