import Foundation
import NERCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A full disk must never leave a half-written job: every queued file parses, nothing is left in
/// tmp/, and the tool says what went wrong in one line. Needs root to mount a tiny tmpfs.
@Suite(.enabled(if: Mounts.canMount, "needs root (CAP_SYS_ADMIN) to mount a tiny tmpfs as a full disk"))
struct DiskFullTests {
    @Test func queueOnAFullDiskWritesWholeJobsOrNothing() throws {
        let t = TempDir("ner-full"); defer { t.remove() }
        let mountPoint = t.file("fs")
        try Mounts.tmpfs(mountPoint, size: "96k")
        defer { Mounts.unmount(mountPoint) }
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let line = #"{"name":"full","train":"\#(train)"}"#
        var failures: [RunResult] = []
        for _ in 0..<60 {
            let r = try run("ner-queue", ["--home", mountPoint, "--quiet"],
                            stdin: Array(repeating: line, count: 10).joined(separator: "\n") + "\n")
            if r.status != 0 { failures.append(r) }
            if failures.count >= 3 { break }
        }
        #expect(!failures.isEmpty, "the disk never filled up")
        for f in failures {
            #expect(f.status == 1, "\(f.stderr)")
            #expect(f.stderr.split(separator: "\n").count == 1, "\(f.stderr)")
            #expect(f.stderr.contains("No space left on device"), "\(f.stderr)")
        }
        let newDir = mountPoint + "/spool/new"
        let queued = try FileManager.default.contentsOfDirectory(atPath: newDir)
        #expect(!queued.isEmpty)
        #expect(queued.count % 10 == 0, "a batch was half-queued: \(queued.count) jobs")
        for name in queued {
            let j = try JSON.parse(Data(contentsOf: URL(fileURLWithPath: newDir + "/" + name)))
            #expect(j["spec"]?["train"]?.stringValue == train)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: mountPoint + "/spool/tmp").isEmpty)
    }

    /// ner-train builds the model folder as a hidden `.NAME.partial` sibling and renames it at the
    /// end; a run that fills the disk removes it, so no half-written model is left to be packed.
    /// 3 MB hold the model files (1.5 MB of weights) but not the checkpoint (4.5 MB) after them.
    @Test func trainOnAFullDiskLeavesNoPartialModel() throws {
        let t = TempDir("ner-full-train"); defer { t.remove() }
        let mountPoint = t.file("fs")
        try Mounts.tmpfs(mountPoint, size: "3m")
        defer { Mounts.unmount(mountPoint) }
        let data = TestTools.repoRoot + "/examples/data"
        let r = try run("ner-train", ["--train", data + "/dev.txt", "--dev", data + "/test.txt", "--epochs", "2",
                                      "--output", mountPoint + "/model", "--quiet"],
                        stdin: "")
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("No space left on device"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: mountPoint) == [])
    }
}
