import Foundation
import NERCore
import NERRegistry
import Testing
import TestSupport

/// The whole toolchain on the shipped example data: queue → dispatch (ner-train | ner-pack |
/// ner-register) → promote → infer, through the real executables. The model is trained long
/// enough to find entities, so inference is checked on real answers.
@Suite struct PipelineTests {
    @Test func queueDispatchTrainPackRegisterInfer() throws {
        let t = TempDir("ner-pipeline"); defer { t.remove() }
        let data = TestTools.repoRoot + "/examples/data"
        let q = try run("ner-queue", ["--home", t.path, "--name", "wiki", "--train", data + "/train.txt",
                                      "--dev", data + "/dev.txt", "--test", data + "/test.txt", "--epochs", "6",
                                      "--hidden-size", "32", "--word-dim", "32", "--char-dim", "16", "--threads", "2"])
        #expect(q.status == 0, "\(q.stderr)")
        let jobId = try JSON.parse(q.stdout)["job_id"]!.stringValue!

        let d = try run("ner-dispatch", ["--home", t.path, "--drain", "--poll", "0.05"])
        #expect(d.status == 0, "\(d.stderr)\n\((try? String(contentsOfFile: "\(t.path)/logs/\(jobId).log", encoding: .utf8)) ?? "")")
        let statuses = try d.lines.map { try JSON.parse($0)["status"]!.stringValue! }
        #expect(statuses == ["running", "trained", "packed", "registered"])

        let registry = try Registry(path: t.path + "/registry.sqlite")
        #expect(try registry.transitions(jobId: jobId).map(\.status) == ["queued", "running", "trained", "packed", "registered"])
        let job = try #require(try registry.job(jobId))
        #expect(job.status == "registered")
        let model = try #require(try registry.resolve("wiki"))
        #expect(model.version == 1)
        #expect(job.modelId == model.modelId)
        #expect(model.metrics?["dev"]?["f1"]?.doubleValue ?? 0 > 0.1, "\(String(describing: model.metrics))")
        #expect(fileExists(model.artifact))
        #expect(try run("ner-pack", ["--verify", model.artifact]).status == 0)

        // The final record in spool/done holds every stage's fields.
        let done = try FileManager.default.contentsOfDirectory(atPath: t.path + "/spool/done")
        let record = try JSON.parse(Data(contentsOf: URL(fileURLWithPath: t.path + "/spool/done/" + done[0])))
        for field in ["job_id", "spec", "model_dir", "metrics", "artifact", "sha256", "bytes", "model_id", "version"] {
            #expect(record[field] != nil, "missing \(field)")
        }
        #expect(record["status"] == "registered")

        let promoted = try run("ner-register", ["promote", model.modelId, "--alias", "production", "--home", t.path])
        #expect(promoted.status == 0, "\(promoted.stderr)")
        let text = "George Washington was president of the United States.\n\nPeter Blackburn reported from Brussels.\n"
        let inf = try run("ner-infer", ["--home", t.path, "--model", "wiki"], stdin: text)
        #expect(inf.status == 0, "\(inf.stderr)")
        let out = try inf.lines.map { try JSON.parse($0) }
        #expect(out.count == 3)
        // Six epochs on the example data are enough to find names in these sentences: a model that
        // finds none fails here rather than passing the checks below with nothing to check.
        let found = out.flatMap { $0["entities"]?.arrayValue ?? [] }.compactMap { $0["text"]?.stringValue }
        #expect(!Set(found).isDisjoint(with: ["George Washington", "United States", "Peter Blackburn", "Brussels"]),
                "entities found: \(found)")
        let inputs = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        for (line, result) in zip(inputs, out) {
            #expect(result["text"]?.stringValue == line)
            let scalars = Array(line.unicodeScalars)
            for e in result["entities"]?.arrayValue ?? [] {
                let start = e["start"]!.intValue!, end = e["end"]!.intValue!
                #expect(String(String.UnicodeScalarView(scalars[start..<end])) == e["text"]?.stringValue)
                #expect(["PER", "LOC", "ORG", "MISC"].contains(e["tag"]?.stringValue ?? ""))
            }
        }
    }
}
