import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NERCore
import Testing
import TestSupport

/// One `ner-serve` serving several models: naming them, loading on demand within `--max-models`,
/// a model that fails to load, reloads, and fairness between the models' requests.
@Suite(.serialized)
struct ManyModelsTests {
    static let sample = ServeTests.sample

    /// A registry home (`tiny-a` version 1 and production, `tiny-b` version 2, both named `tiny`) and
    /// a server on it with `args`.
    func server(_ args: [String]) throws -> (ServerProcess, home: String) {
        if let problem = Fixture.shared.problem { throw Failure(problem) }
        let home = try Fixture.shared.registryHome()
        return (try ServerProcess(args + ["--home", home]), home)
    }

    func post(_ s: ServerProcess, _ path: String, _ text: String = sample) throws -> Reply {
        try s.post(path, Data(text.utf8), type: "text/plain")
    }

    func postJSON(_ s: ServerProcess, _ body: JSON) throws -> Reply {
        try s.post("/ner", Data(body.compactString.utf8), type: "application/json")
    }

    /// `/v1/models`' entry for the model served as `name`.
    func entry(_ s: ServerProcess, _ name: String) throws -> JSON? {
        try s.get("/v1/models").json?["models"]?.arrayValue?.first { $0["served_as"]?.stringValue == name }
    }

    func metric(_ s: ServerProcess, _ series: String) throws -> Int? {
        try s.get("/metrics").text.split(separator: "\n").first { $0.hasPrefix(series + " ") }
            .flatMap { Int($0.split(separator: " ").last!) }
    }

    @Test func requestsPickAModelByPathOrBodyAndPlainNerKeepsTheDefault() throws {
        let (s, home) = try server(["--model", "tiny-a", "--model", "tiny-b", "--poll-interval", "0"])
        defer { try? FileManager.default.removeItem(atPath: home) }
        #expect(try entry(s, "tiny-b")?["loaded"] == .bool(false), "only the default is loaded at start")

        let plain = try post(s, "/ner")
        #expect(plain.status == 200)
        #expect(plain.headers["x-model-id"] == "tiny-a")
        let byPath = try post(s, "/v1/models/tiny-b/ner")
        #expect(byPath.status == 200, "\(byPath.text)")
        #expect(byPath.headers["x-model-id"] == "tiny-b")
        #expect(byPath.json == plain.json, "the two models hold the same weights")
        let byBody = try postJSON(s, ["model": "tiny-b", "text": .string(Self.sample)])
        #expect(byBody.headers["x-model-id"] == "tiny-b")
        #expect(byBody.json?.arrayValue != nil)
        #expect(try post(s, "/v1/models/tiny-a/ner").headers["x-model-id"] == "tiny-a")

        // Both are registered as "tiny", so that name picks neither; an unknown one lists the served.
        for unknown in ["tiny", "nope"] {
            let r = try post(s, "/v1/models/\(unknown)/ner")
            #expect(r.status == 404)
            #expect(r.error?.contains("served: tiny-a, tiny-b") == true, "\(r.text)")
            #expect(r.json?["models"] == ["tiny-a", "tiny-b"])
        }
        #expect(try postJSON(s, ["model": "nope", "text": "x"]).status == 404)
        #expect(try postJSON(s, ["model": 3, "text": "x"]).status == 400)
        let clash = try s.post("/v1/models/tiny-a/ner", Data(JSON.object(["model": "tiny-b", "text": "x"]).compactString.utf8),
                               type: "application/json")
        #expect(clash.status == 400, "\(clash.text)")
        #expect(try s.get("/v1/models/tiny-b/ner").status == 405)

        let models = try #require(try s.get("/v1/models").json)
        let list = try #require(models["models"]?.arrayValue)
        #expect(list.map { $0["served_as"] } == ["tiny-a", "tiny-b"])
        #expect(list.map { $0["default"] } == [true, false])
        #expect(list.map { $0["loaded"] } == [true, true])
        #expect(list.map { $0["version"] } == [1, 2])
        #expect(models["max_models"] == 5)

        let metrics = try s.get("/metrics").text
        for series in ["ner_model_requests_total{model=\"tiny-b\",status=\"200\"} 2\n",
                       "ner_model_requests_total{model=\"tiny-a\",status=\"200\"} 2\n",
                       "ner_requests_total{path=\"/ner\",status=\"200\"} 2\n",
                       "ner_requests_total{path=\"/v1/models/{name}/ner\",status=\"200\"} 2\n",
                       "ner_model_loads_total{model=\"tiny-b\",result=\"success\"} 1\n",
                       "ner_model_queue_depth{model=\"tiny-b\"} 0\n",
                       "ner_model_request_duration_seconds_count{model=\"tiny-b\"} 2\n"] {
            #expect(metrics.contains(series), "no \(series) in \(metrics)")
        }
        #expect(metrics.contains("ner_model_info{model_id=\"tiny-a\",name=\"tiny\",version=\"1\",model=\"tiny-a\"} 1\n"))
        #expect(metrics.contains("ner_model_info{model_id=\"tiny-b\",name=\"tiny\",version=\"2\",model=\"tiny-b\"} 1\n"))
        #expect(s.stop() == 0)
    }

    @Test func modelsLoadOnceOnDemandAndTheLeastRecentlyUsedIsUnloaded() throws {
        let (s, home) = try server(["--model", "tiny-a", "--models", "tiny-b,tiny:1", "--max-models", "2",
                                    "--poll-interval", "0"])
        defer { try? FileManager.default.removeItem(atPath: home) }
        // Eight first requests at once: one load serves them all.
        let group = DispatchGroup()
        let statuses = Statuses()
        for _ in 0..<8 {
            onThread(group) {
                statuses.add((try? self.post(s, "/v1/models/tiny-b/ner").status) ?? -1)
            }
        }
        group.wait()
        #expect(statuses.all == Array(repeating: 200, count: 8))
        #expect(try metric(s, "ner_model_loads_total{model=\"tiny-b\",result=\"success\"}") == 1)

        // A third model makes room by unloading tiny-b, never the default.
        let third = try post(s, "/v1/models/tiny:1/ner")
        #expect(third.status == 200)
        #expect(third.headers["x-model-id"] == "tiny-a")
        #expect(try entry(s, "tiny-b")?["loaded"] == .bool(false))
        #expect(try entry(s, "tiny:1")?["loaded"] == .bool(true))
        #expect(try entry(s, "tiny-a")?["loaded"] == .bool(true))
        #expect(try metric(s, "ner_model_evictions_total{model=\"tiny-b\"}") == 1)
        #expect(s.stderr.contains("unloaded model tiny-b"), "\(s.stderr)")

        // Using the default counts for nothing: tiny:1 is still the last other model used, so
        // tiny-b comes back in its place.
        #expect(try post(s, "/ner").status == 200)
        #expect(try post(s, "/v1/models/tiny-b/ner").status == 200)
        #expect(try entry(s, "tiny:1")?["loaded"] == .bool(false))
        #expect(try metric(s, "ner_model_loads_total{model=\"tiny-b\",result=\"success\"}") == 2)

        // Two clients alternating models unload each other's model s and s while its
        // requests are queued: every request is answered.
        let churn = DispatchGroup()
        let answers = Statuses()
        for path in ["/v1/models/tiny-b/ner", "/v1/models/tiny:1/ner"] {
            onThread(churn) {
                for _ in 0..<30 { answers.add((try? self.post(s, path, String(repeating: Self.sample + " ", count: 20)).status) ?? -1) }
            }
        }
        churn.wait()
        #expect(answers.all == Array(repeating: 200, count: 60))
        #expect(try metric(s, "ner_model_evictions_total{model=\"tiny-b\"}") ?? 0 >= 2)
        #expect(s.stop() == 0)
    }

    @Test func aModelThatFailsToLoadAnswers503WithTheCauseAndTheOthersServe() throws {
        if let problem = Fixture.shared.problem { throw Failure(problem) }
        let home = try Fixture.shared.registryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        try Fixture.shared.registerBrokenModel(in: home)
        let s = try ServerProcess(["--model", "tiny-a", "--model", "tiny-broken", "--poll-interval", "0", "--home", home])
        for _ in 0..<2 {
            let r = try post(s, "/v1/models/tiny-broken/ner")
            #expect(r.status == 503)
            #expect(r.error?.contains("model 'tiny-broken' cannot be loaded") == true, "\(r.text)")
            #expect(r.error?.contains("config.max_word_chars is -5") == true, "\(r.text)")
            #expect(try post(s, "/ner").status == 200)
        }
        #expect(try metric(s, "ner_model_loads_total{model=\"tiny-broken\",result=\"failure\"}") == 2)
        #expect(try entry(s, "tiny-broken")?["loaded"] == .bool(false))
        #expect(s.stop() == 0)
    }

    @Test func everyLoadedAliasFollowsPromotionAndSighupReloadsThemAll() throws {
        let (s, home) = try server(["--model", "tiny-b", "--model", "tiny@production", "--poll-interval", "0.2"])
        defer { try? FileManager.default.removeItem(atPath: home) }
        let path = "/v1/models/tiny@production/ner"
        #expect(try post(s, path).headers["x-model-id"] == "tiny-a")
        let promoted = try run("ner-register", ["promote", "tiny-b", "--home", home, "--quiet"])
        try #require(promoted.status == 0, "\(promoted.stderr)")
        let deadline = Date().addingTimeInterval(15)
        while (try? post(s, path).headers["x-model-id"]) != "tiny-b" && Date() < deadline { usleep(50_000) }
        #expect(try post(s, path).headers["x-model-id"] == "tiny-b")
        #expect(try post(s, "/ner").headers["x-model-id"] == "tiny-b")
        #expect(try post(s, "/v1/models/tiny%40production/ner").headers["x-model-id"] == "tiny-b", "a name may be URL-encoded")
        #expect(try metric(s, "ner_model_reloads_total{result=\"success\"}") == 1)

        kill(s.process.processIdentifier, SIGHUP)
        let reloaded = Date().addingTimeInterval(15)
        while try metric(s, "ner_model_reloads_total{result=\"success\"}") != 3 && Date() < reloaded { usleep(50_000) }
        #expect(try metric(s, "ner_model_reloads_total{result=\"success\"}") == 3, "both loaded models reload")
        #expect(s.stop() == 0)
    }

    /// One client floods model A with large bodies on six connections while another sends small
    /// requests to model B. With one queue for both, B's request would wait behind A's backlog, as
    /// long as A's own requests take; taking the models in turn, it waits for one batch of A's.
    @Test func oneModelsBurstDoesNotHoldUpAnothersRequests() throws {
        let (s, home) = try server(["--model", "tiny-a", "--model", "tiny-b", "--workers", "1", "--max-batch-size", "8",
                                    "--io-threads", "2", "--poll-interval", "0"])
        defer { try? FileManager.default.removeItem(atPath: home) }
        #expect(try post(s, "/v1/models/tiny-b/ner").status == 200)  // loaded before the timing starts
        let large = String(repeating: Self.sample + " ", count: 1000)
        let flood = Flood()
        let floodGroup = DispatchGroup()
        for _ in 0..<6 {
            onThread(floodGroup) {
                while flood.running {
                    let started = Date()
                    let status = (try? self.post(s, "/v1/models/tiny-a/ner", large).status) ?? -1
                    flood.record(status, seconds: Date().timeIntervalSince(started))
                }
            }
        }
        let busy = Date().addingTimeInterval(30)
        while (try metric(s, "ner_model_queue_depth{model=\"tiny-a\"}") ?? 0) < 4 && Date() < busy { usleep(10_000) }

        var small: [Double] = []
        for _ in 0..<10 {
            let started = Date()
            let r = try post(s, "/v1/models/tiny-b/ner")
            small.append(Date().timeIntervalSince(started))
            #expect(r.status == 200)
            #expect(r.headers["x-model-id"] == "tiny-b")
        }
        let backlogAfter = try metric(s, "ner_model_queue_depth{model=\"tiny-a\"}") ?? 0
        flood.stop()
        floodGroup.wait()

        let seen = flood.results
        #expect(seen.statuses.allSatisfy { $0 == 200 }, "\(seen.statuses)")
        #expect(backlogAfter > 0, "A's requests were still queued when B's were done")
        let bMedian = median(small), aMedian = median(seen.seconds)
        #expect(seen.seconds.count >= 4)
        #expect(bMedian < aMedian / 4, "B's median \(bMedian) s sst A's \(aMedian) s")
        #expect(s.stop() == 0)
    }

    @Test func badModelListsExitBeforeListening() throws {
        if let problem = Fixture.shared.problem { throw Failure(problem) }
        let dir = Fixture.shared.modelDir
        for (args, message) in [(["--max-models", "0"], "--max-models must be at least 1"),
                                (["--model", dir, "--models", "x," + dir], "is given twice"),
                                (["--models", "x,,y"], "--models has an empty name"),
                                (["--models", dir + ",x", "--max-models", "1"], "leaves no room")] {
            let r = try run("ner-serve", args + ["--port", "0"])
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        let missing = try run("ner-serve", ["--model", dir, "--model", "/nonexistent/model", "--port", "0",
                                            "--home", Fixture.shared.root.file("empty-home")])
        #expect(missing.status == 66, "\(missing.stderr)")
        #expect(!missing.stderr.contains("listening"))
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
}

/// The flooding client's answers and how long each took.
final class Flood: @unchecked Sendable {
    private let lock = NSLock()
    private var going = true
    private var statuses: [Int] = []
    private var seconds: [Double] = []

    var running: Bool { lock.withLock { going } }

    func stop() { lock.withLock { going = false } }

    func record(_ status: Int, seconds s: Double) {
        lock.withLock {
            statuses.append(status)
            seconds.append(s)
        }
    }

    var results: (statuses: [Int], seconds: [Double]) { lock.withLock { (statuses, seconds) } }
}
