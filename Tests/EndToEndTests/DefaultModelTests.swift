import Foundation
import NERCore
import Testing
import TestSupport

/// Which model `ner-infer` and `ner-serve` use when no `--model` is given (docs/records.md, "The
/// default model"): `NER_MODEL`, else the one name with a production alias, else the only name.
@Suite(.serialized) struct DefaultModelTests {
    static let text = "George Washington was president of the United States.\n"

    /// A home, and a function registering a tiny model trained from the example data under a name.
    func home() throws -> (TempDir, (String) throws -> String) {
        let t = TempDir("ner-default-model")
        let train = t.write("train.txt", try String(contentsOfFile: TestTools.repoRoot + "/examples/data/train.txt", encoding: .utf8)
            .components(separatedBy: "\n").prefix(400).joined(separator: "\n") + "\n")
        let register = { (name: String) throws -> String in
            let job: JSON = ["schema": 1, "name": .string(name),
                             "spec": ["train": .string(train), "epochs": 1, "hidden_size": 8, "word_dim": 8, "char_dim": 4, "threads": 1]]
            let trained = try run("ner-train", ["--home", t.path, "-q"], stdin: job.compactString + "\n")
            try #require(trained.status == 0, "\(trained.stderr)")
            let packed = try run("ner-pack", ["--home", t.path, "-q"], stdin: trained.stdout)
            try #require(packed.status == 0, "\(packed.stderr)")
            let registered = try run("ner-register", ["--home", t.path, "-q"], stdin: packed.stdout)
            try #require(registered.status == 0, "\(registered.stderr)")
            return try #require(try JSON.parse(registered.stdout)["model_id"]?.stringValue)
        }
        return (t, register)
    }

    func infer(_ home: TempDir, env: [String: String] = [:]) throws -> RunResult {
        try run("ner-infer", ["--home", home.path], stdin: Self.text, env: env)
    }

    /// The model id ner-infer logs as the one it loaded.
    func loaded(_ r: RunResult) -> String? {
        r.stderr.range(of: #"model (\S+) \("#, options: .regularExpression).map {
            String(r.stderr[$0].dropFirst(6).dropLast(2))
        }
    }

    @Test func choosesTheEnvironmentsThenProductionsThenTheOnlyName() throws {
        let (t, register) = try home(); defer { t.remove() }

        // Nothing registered: a usage error that says how to choose.
        let empty = try infer(t)
        #expect(empty.status == 64)
        #expect(empty.stderr.contains("--model NAME, NER_MODEL=NAME, or `ner-register promote NAME`"), "\(empty.stderr)")
        #expect(empty.stdout.isEmpty)

        // One name: its latest version, and the text is tagged.
        _ = try register("alpha")
        let alpha2 = try register("alpha")
        let only = try infer(t)
        #expect(only.status == 0, "\(only.stderr)")
        #expect(loaded(only) == alpha2, "\(only.stderr)")
        #expect(try JSON.parse(only.stdout)["entities"]?.arrayValue != nil)

        // Two names and no production alias: the candidates are listed.
        let beta = try register("beta")
        let two = try infer(t)
        #expect(two.status == 64)
        #expect(two.stderr.contains("2 registered names (alpha, beta)"), "\(two.stderr)")
        #expect(two.stderr.split(separator: "\n").count == 1, "one line: \(two.stderr)")

        // The one name with a production alias wins.
        #expect(try run("ner-register", ["promote", beta, "--home", t.path, "-q"]).status == 0)
        let promoted = try infer(t)
        #expect(promoted.status == 0, "\(promoted.stderr)")
        #expect(loaded(promoted) == beta)

        // NER_MODEL over the registry, and --model over NER_MODEL.
        let fromEnvironment = try infer(t, env: ["NER_MODEL": "alpha:1"])
        #expect(fromEnvironment.status == 0, "\(fromEnvironment.stderr)")
        #expect(loaded(fromEnvironment)?.hasPrefix("alpha-") == true)
        #expect(loaded(fromEnvironment) != alpha2)
        let flag = try run("ner-infer", ["--home", t.path, "--model", "beta"], stdin: Self.text, env: ["NER_MODEL": "alpha"])
        #expect(loaded(flag) == beta)

        // Two production aliases: ambiguous again.
        #expect(try run("ner-register", ["promote", alpha2, "--home", t.path, "-q"]).status == 0)
        let ambiguous = try infer(t)
        #expect(ambiguous.status == 64)
        #expect(ambiguous.stderr.contains("2 names with a production alias (alpha, beta)"), "\(ambiguous.stderr)")

        // ner-serve chooses the same way.
        let serve = try run("ner-serve", ["--home", t.path, "--port", "0"])
        #expect(serve.status == 64)
        #expect(serve.stderr.contains("names with a production alias (alpha, beta)"), "\(serve.stderr)")
    }

    @Test func nerServeServesTheDefaultModel() throws {
        let (t, register) = try home(); defer { t.remove() }
        let id = try register("solo")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestTools.path("ner-serve"))
        p.arguments = ["--home", t.path, "--port", "0", "--poll-interval", "0"]
        let err = t.file("serve.err")
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: err)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate(); p.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(30)
        var log = ""
        while !log.contains("listening on") && p.isRunning && Date() < deadline {
            usleep(20_000)
            log = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        }
        #expect(log.contains("model \(id) (solo)"), "\(log)")
    }
}
