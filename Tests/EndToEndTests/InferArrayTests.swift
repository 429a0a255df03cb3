import Foundation
import NERCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// examples/slurm/infer-array.sbatch: inputs in the three formats ner-infer reads, a small model
/// that finds entities, and the script run as a user runs it.
enum InferArray {
    static let script = TestTools.repoRoot + "/examples/slurm/infer-array.sbatch"

    /// Trains, packs and registers a model under `name` in `home` (a few seconds): enough epochs
    /// that it tags entities, so the outputs carry scores.
    static func registerModel(_ home: String, name: String) throws {
        let data = TestTools.repoRoot + "/examples/data"
        let job = #"{"name":"\#(name)","spec":{"train":"\#(data)/train.txt","epochs":8,"hidden_size":16,"word_dim":16,"char_dim":8,"threads":2}}"#
        let trained = try run("ner-train", ["--home", home, "--quiet"], stdin: job + "\n")
        #expect(trained.status == 0, "\(trained.stderr)")
        let packed = try run("ner-pack", ["--home", home, "--quiet"], stdin: trained.stdout)
        #expect(packed.status == 0, "\(packed.stderr)")
        let registered = try run("ner-register", ["--home", home, "--quiet"], stdin: packed.stdout)
        #expect(registered.status == 0, "\(registered.stderr)")
    }

    /// The sentences of examples/data/test.txt as text.
    static let sentences: [String] = {
        let conll = (try? String(contentsOfFile: TestTools.repoRoot + "/examples/data/test.txt", encoding: .utf8)) ?? ""
        var out: [String] = [], words: [String] = []
        for line in conll.split(separator: "\n", omittingEmptySubsequences: false) {
            let token = line.split(separator: " ").first.map(String.init)
            if let token, token != "-DOCSTART-" { words.append(token); continue }
            if !words.isEmpty { out.append(words.joined(separator: " ")); words = [] }
        }
        return out
    }()

    /// An input per format, `copies` times over: text with empty lines and text outside ASCII, JSON
    /// lines with blank lines between, and examples/data/test.txt's CoNLL (-DOCSTART- lines
    /// included). The text and JSON inputs end without a newline.
    static func inputs(_ dir: TempDir, copies: Int) -> [(format: String, path: String)] {
        var text: [String] = [], json: [String] = []
        for copy in 0..<copies {
            for (i, s) in sentences.enumerated() {
                text.append(i % 17 == 0 ? "" : s)
                json.append(#"{"id":"\#(copy)-\#(i)","text":\#(JSON.string(s).compactString)}"#)
                if i % 23 == 0 { json.append("") }
            }
            text.append("Angela Merkel flew from Zürich to Tokyo; Peter Blackburn reported for Reuters.")
        }
        let conll = (try? String(contentsOfFile: TestTools.repoRoot + "/examples/data/test.txt", encoding: .utf8)) ?? ""
        return [("text", dir.write("in.txt", text.joined(separator: "\n"))),
                ("json", dir.write("in.ndjson", json.joined(separator: "\n"))),
                ("conll", dir.write("in.conll", String(repeating: conll, count: copies)))]
    }

    /// Runs the script in `cwd` (where Slurm writes its logs) with the tools on PATH.
    static func submit(_ cwd: String, _ args: [String], env: [String: String]) throws -> RunResult {
        var environment = env
        environment["PATH"] = (env["PATH"] ?? TestTools.productsDir + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"))
        return try run("/bin/bash", ["-c", #"cd "$1" && shift && exec "$@""#, "-", cwd, script] + args, env: environment)
    }

    /// What one ner-infer over the whole input writes.
    static func oneRun(_ home: String, _ model: String, _ format: String, _ input: String) throws -> String {
        let r = try run("ner-infer", ["--home", home, "--model", model, "--format", format, "--input", input, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout
    }
}

/// The script's splitting, pinning and merging, with a stand-in `sbatch` that runs each job at
/// once (array tasks one after the other, with SLURM_ARRAY_TASK_ID set), so it needs no cluster.
@Suite struct InferArrayTests {
    /// A stand-in sbatch: records its arguments, runs the script, prints a job id.
    func fakeSbatch(_ t: TempDir) -> String {
        t.write("bin/sbatch", #"""
            #!/bin/bash
            echo "$*" >> "$(dirname "$0")/sbatch.args"
            array=
            while [[ ${1:-} == -* ]]; do case $1 in --array=*) array=${1#--array=} ;; esac; shift; done
            script=$1; shift
            if [ -n "$array" ]; then
              for ((i = ${array%-*}; i <= ${array#*-}; i++)); do
                SLURM_ARRAY_TASK_ID=$i SLURM_CPUS_PER_TASK=1 bash "$script" "$@" >&2 || exit 1
              done
            else
              bash "$script" "$@" >&2 || exit 1
            fi
            echo "$RANDOM;cluster"
            """#)
        chmod(t.file("bin/sbatch"), 0o755)
        return t.file("bin") + ":" + TestTools.productsDir + ":/usr/bin:/bin"
    }

    @Test func shardsMergeToWhatOneRunWrites() throws {
        let t = TempDir("ner-infer-array"); defer { t.remove() }
        try InferArray.registerModel(t.path, name: "arr")
        let path = fakeSbatch(t)
        for (format, input) in InferArray.inputs(t, copies: 2) {
            let expected = try InferArray.oneRun(t.path, "arr", format, input)
            #expect(expected.contains(format == "conll" ? "B-" : "\"tag\""), "the model tags nothing")
            let output = t.file("out.\(format)")
            let r = try InferArray.submit(t.path, ["3", input, output, "--model", "arr", "--format", format],
                                          env: ["PATH": path, "NER_HOME": t.path])
            #expect(r.status == 0, "\(format): \(r.stderr)")
            #expect(try String(contentsOfFile: output, encoding: .utf8) == expected, "\(format)")
            #expect(!FileManager.default.fileExists(atPath: output + ".parts"))
        }
        // The model name was pinned to its id before the array was submitted.
        let submitted = try String(contentsOfFile: t.file("bin/sbatch.args"), encoding: .utf8)
        let modelId = try JSON.parse(try run("ner-register", ["show", "arr", "--home", t.path]).stdout)["model_id"]!.stringValue!
        #expect(submitted.contains("--model=\(modelId)"), "\(submitted)")
        #expect(!submitted.contains("--model=arr "))
    }

    @Test func conllShardsStartAtASentence() throws {
        let t = TempDir("ner-infer-array-cut"); defer { t.remove() }
        // No sbatch that runs anything: the shards stay in OUTPUT.parts to be looked at.
        t.write("bin/sbatch", "#!/bin/sh\necho 7\n")
        chmod(t.file("bin/sbatch"), 0o755)
        let input = t.write("in.conll", "-DOCSTART- O\n\nEU B-ORG\nrejects O\n\nGerman B-MISC\n \t\nPeter B-PER\n-DOCSTART- O\nX O\nY O\n\n\nZ O")
        let r = try InferArray.submit(t.path, ["3", input, t.file("out"), "--model", t.path, "--format=conll"],
                                      env: ["PATH": t.file("bin") + ":/usr/bin:/bin"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "7\n")
        #expect(r.stderr.contains("5 records in 3 shards"), "\(r.stderr)")
        let shards = try (0..<3).map { try String(contentsOfFile: t.file("out.parts/in.0000\($0)"), encoding: .utf8) }
        #expect(shards == ["-DOCSTART- O\n\nEU B-ORG\nrejects O\n\nGerman B-MISC\n \t\n",
                           "Peter B-PER\n-DOCSTART- O\nX O\nY O\n\n\n",
                           "Z O\n"])

        // More shards than sentences: one sentence each.
        let many = try InferArray.submit(t.path, ["100", input, t.file("out"), "--model", t.path, "--format=conll"],
                                         env: ["PATH": t.file("bin") + ":/usr/bin:/bin"])
        #expect(many.stderr.contains("5 records in 5 shards"), "\(many.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: t.file("out.parts")).sorted() == (0..<5).map { "in.0000\($0)" })

        // CRLF lines: a blank line is "\r", as ner-infer reads it.
        let crlf = t.write("crlf.conll", "-DOCSTART-\r\n\r\nEU B-ORG\r\n\r\nGerman B-MISC\r\n\r\nPeter B-PER\r\n")
        let cut = try InferArray.submit(t.path, ["2", crlf, t.file("out"), "--model", t.path, "--format", "conll"],
                                        env: ["PATH": t.file("bin") + ":/usr/bin:/bin"])
        #expect(cut.stderr.contains("3 records in 2 shards"), "\(cut.stderr)")
        #expect(try String(contentsOfFile: t.file("out.parts/in.00001"), encoding: .utf8) == "Peter B-PER\r\n")
    }

    @Test func whatCannotBeShardedIsRefused() throws {
        let t = TempDir("ner-infer-array-refuse"); defer { t.remove() }
        let input = t.write("in.conll", "EU B-ORG\n")
        let env = ["PATH": "/usr/bin:/bin"]
        for (args, message) in [(["--format", "conll", "--eval"], "--eval does not add up over shards"),
                                (["--input", input], "the input is INPUT, not --input"),
                                (["--format", "xml"], "--format xml: expected text, json or conll")] {
            let r = try InferArray.submit(t.path, ["2", input, t.file("out")] + args, env: env)
            #expect(r.status == 64, "\(args)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        let missing = try InferArray.submit(t.path, ["2", t.file("nothing"), t.file("out")], env: env)
        #expect(missing.status == 64 && missing.stderr.contains("no such file"), "\(missing.stderr)")
        let badCount = try InferArray.submit(t.path, ["0", input, t.file("out")], env: env)
        #expect(badCount.status == 64 && badCount.stderr.contains("SHARDS must be"), "\(badCount.stderr)")
    }
}
