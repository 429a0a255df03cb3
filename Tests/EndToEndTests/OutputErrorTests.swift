import Foundation
import NERCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A home with one queued job and one registered model (a tiny network trained for one epoch),
/// for the tests of the commands that print results.
enum ModelHome {
    static let modelName = "tiny"

    /// Fills `home`: queues a job, then trains, packs and registers a model.
    static func fill(_ home: String) throws {
        let data = TestTools.repoRoot + "/examples/data"
        let q = try run("ner-queue", ["--home", home, "--name", "queued", "--train", data + "/dev.txt"])
        #expect(q.status == 0, "\(q.stderr)")
        let job = #"{"name":"\#(modelName)","spec":{"train":"\#(data)/dev.txt","epochs":1,"hidden_size":8,"word_dim":8,"char_dim":4,"threads":1}}"#
        let trained = try run("ner-train", ["--home", home, "--quiet"], stdin: job + "\n")
        #expect(trained.status == 0, "\(trained.stderr)")
        let packed = try run("ner-pack", ["--home", home, "--quiet"], stdin: trained.stdout)
        #expect(packed.status == 0, "\(packed.stderr)")
        let registered = try run("ner-register", ["--home", home, "--quiet"], stdin: packed.stdout)
        #expect(registered.status == 0, "\(registered.stderr)")
    }

    /// The commands that print results, each with the input it reads.
    static func commands(_ home: String) -> [(tool: String, args: [String], stdin: String)] {
        let data = TestTools.repoRoot + "/examples/data"
        let job = #"{"spec":{"train":"\#(data)/dev.txt","epochs":1,"hidden_size":8,"word_dim":8,"char_dim":4,"threads":1}}"#
        return [
            ("ner-infer", ["--home", home, "--model", modelName, "--quiet"], "George Washington went to Paris.\n"),
            ("ner-queue", ["--home", home, "--list"], ""),
            ("ner-register", ["list", "--home", home], ""),
            ("ner-register", ["jobs", "--home", home], ""),
            ("ner-train", ["--output", home + "/out-\(UUID().uuidString)", "--quiet"], job + "\n"),
        ]
    }
}

/// Results written to stdout are never lost silently: a write error (a full disk, here /dev/full)
/// is exit 74 with one line naming the output; only a closed pipe (`| head`) ends quietly with 0.
@Suite struct OutputErrorTests {
    @Test func aWriteErrorOnStdoutIsExit74NamingIt() throws {
        let home = TempDir("ner-output"); defer { home.remove() }
        try ModelHome.fill(home.path)
        for (tool, args, stdin) in ModelHome.commands(home.path) {
            let input = home.write("input-\(UUID().uuidString).txt", stdin)
            // The command does print something when stdout works.
            #expect(try run(tool, args, stdin: stdin).stdout.isEmpty == false, "\(tool) \(args) prints nothing")
            let r = try runWithStdout(tool, args, input: input, stdout: .file("/dev/full"))
            #expect(r.status == 74, "\(tool) \(args): \(r.stderr)")
            #expect(r.stderr == "\(tool): error: stdout (/dev/full): write failed: No space left on device\n",
                    "\(tool) \(args): \(r.stderr)")
        }
    }

    @Test func aClosedPipeEndsQuietlyWith0() throws {
        let home = TempDir("ner-output"); defer { home.remove() }
        try ModelHome.fill(home.path)
        for (tool, args, stdin) in ModelHome.commands(home.path) {
            let input = home.write("input-\(UUID().uuidString).txt", stdin)
            let r = try runWithStdout(tool, args, input: input, stdout: .closedPipe)
            #expect(r.status == 0, "\(tool) \(args): \(r.stderr)")
            #expect(r.stderr.isEmpty, "\(tool) \(args): \(r.stderr)")
        }
    }
}
