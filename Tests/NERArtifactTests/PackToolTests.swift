import Foundation
import NERArtifact
import NERCore
import TestSupport
import Testing

/// `ner-pack` driven as users drive it: records in on stdin, records out on stdout.
@Suite struct PackToolTests {
    @Test func recordsPassThroughWithUnknownFieldsKept() throws {
        let tmp = TempDir("ner-pack-tool")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 10_000)
        let home = tmp.file("home")
        let trained: JSON = ["schema": 1, "job_id": "conll-1", "name": "conll", "model_dir": .string(dir),
                             "status": "trained", "metrics": ["dev": ["f1": 0.91]], "custom": ["keep": [1, 2, 3]]]
        let unrelated: JSON = ["job_id": "other", "note": "no model here"]
        let failed: JSON = ["job_id": "bad", "status": "failed", "model_dir": "/nonexistent/model", "error": "diverged"]
        let stdin = [trained, unrelated, failed].map(\.compactString).joined(separator: "\n") + "\n"

        let r = try run("ner-pack", ["--home", home], stdin: stdin)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.lines.count == 3)
        let out = try JSON.parse(r.lines[0])
        var expected = trained
        for key in ["artifact", "sha256", "bytes", "model_id"] { expected[key] = out[key] }
        expected["status"] = "packed"
        #expect(out == expected)
        let artifact = try #require(out["artifact"]?.stringValue)
        #expect(artifact.hasPrefix(home + "/artifacts/conll-"))
        #expect(out["sha256"]?.stringValue == (try Artifact.sha256(ofFile: artifact)))
        #expect(out["bytes"]?.intValue == (try FileManager.default.attributesOfItem(atPath: artifact)[.size] as? NSNumber)?.intValue)
        let modelId = try #require(out["model_id"]?.stringValue)
        #expect(modelId.hasPrefix("conll-") && modelId.count == "conll-".count + 36)
        #expect(try Artifact.verify(path: artifact).modelId == modelId)
        #expect(try JSON.parse(r.lines[1]) == unrelated)
        #expect(try JSON.parse(r.lines[2]) == failed)
    }

    @Test func modelIdComesFromTheRecordThenModelJSON() throws {
        let tmp = TempDir("ner-pack-tool")
        defer { tmp.remove() }
        let a = makeModelDir(tmp, "a", weightsBytes: 100, modelJSON: #"{"id":"from-model-json-1","name":"x"}"#)
        let b = makeModelDir(tmp, "b", weightsBytes: 100)
        let stdin = #"{"model_dir":"\#(a)"}"# + "\n" + #"{"model_dir":"\#(b)","model_id":"given-7"}"# + "\n"
        let r = try run("ner-pack", ["--home", tmp.file("home"), "--compression", "gzip"], stdin: stdin)
        #expect(r.status == 0, "\(r.stderr)")
        let ids = try r.lines.map { try JSON.parse($0)["model_id"]?.stringValue }
        #expect(ids == ["from-model-json-1", "given-7"])
        #expect(listing(tmp.file("home/artifacts")) == ["from-model-json-1.tar.gz", "given-7.tar.gz"])
    }

    @Test func brokenJSONLineExits65AndWritesNothing() throws {
        let tmp = TempDir("ner-pack-tool")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 100)
        let home = tmp.file("home")
        let r = try run("ner-pack", ["--home", home], stdin: #"{"model_dir":"\#(dir)"}"# + "\n{\"model_dir\": \n")
        #expect(r.status == 65)
        #expect(r.stdout.isEmpty)
        let errLines = r.stderr.split(separator: "\n")
        #expect(errLines.count == 1)
        #expect(errLines.first?.hasPrefix("ner-pack: error: stdin:2: ") == true, "\(r.stderr)")
        #expect(listing(home + "/artifacts") == [])
    }

    @Test func missingModelDirExits66() throws {
        let tmp = TempDir("ner-pack-tool")
        defer { tmp.remove() }
        let r = try run("ner-pack", ["--home", tmp.file("home")], stdin: #"{"model_dir":"\#(tmp.file("gone"))"}"# + "\n")
        #expect(r.status == 66)
        #expect(r.stderr.contains("stdin:1: model_dir \(tmp.file("gone")): no such folder"))
    }

    @Test func packVerifyAndUnpackAFolderDirectly() throws {
        let tmp = TempDir("ner-pack-tool")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 20_000)
        let r = try run("ner-pack", [dir, "--name", "direct", "--model-id", "direct-1", "--home", tmp.file("home")])
        #expect(r.status == 0, "\(r.stderr)")
        let rec = try JSON.parse(try #require(r.lines.first))
        #expect(rec["model_id"]?.stringValue == "direct-1")
        #expect(rec["status"]?.stringValue == "packed")
        #expect(rec["name"]?.stringValue == "direct")
        let artifact = try #require(rec["artifact"]?.stringValue)

        let v = try run("ner-pack", ["--verify", artifact])
        #expect(v.status == 0, "\(v.stderr)")
        let vr = try JSON.parse(try #require(v.lines.first))
        #expect(vr["ok"]?.boolValue == true)
        #expect(vr["model_id"]?.stringValue == "direct-1")
        #expect(vr["files"]?.intValue == 3)
        #expect(vr["sha256"] == rec["sha256"])

        let dest = tmp.file("unpacked")
        let u = try run("ner-pack", ["--unpack", artifact, "--into", dest])
        #expect(u.status == 0, "\(u.stderr)")
        #expect(FileManager.default.contentsEqual(atPath: dir + "/weights.bin", andPath: dest + "/weights.bin"))
    }

    @Test func verifyOfATamperedTarballExits65NamingTheFile() throws {
        let tmp = TempDir("ner-pack-tool")
        defer { tmp.remove() }
        let dir = makeModelDir(tmp, weightsBytes: 5000)
        let manifest = try Artifact.pack(modelDir: dir, modelId: "t-1", name: nil, into: tmp.file("a")).manifest
        let path = tmp.file("tampered.tar.gz")
        craftTarball(path, try entries(of: dir, manifest: manifest, change: ["weights.bin": { Data($0.reversed()) }]))
        let r = try run("ner-pack", ["--verify", path])
        #expect(r.status == 65)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == "ner-pack: error: \(path): weights.bin: sha256 mismatch\n")
    }

    @Test func usageErrorsExit64AndHelpReadsLikeAManPage() throws {
        #expect(try run("ner-pack", ["--compression", "lz4"]).status == 64)
        #expect(try run("ner-pack", ["--into", "/tmp/x"]).status == 64)
        #expect(try run("ner-pack", ["--verify", "a", "--unpack", "b"]).status == 64)
        let help = try run("ner-pack", ["--help"])
        #expect(help.status == 0)
        for needle in ["EXIT STATUS", "ner-train --job job.json | ner-pack | ner-register", "--compression", "65"] {
            #expect(help.stdout.contains(needle), "\(needle)")
        }
    }
}
