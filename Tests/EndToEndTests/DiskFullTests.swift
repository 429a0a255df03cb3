import Foundation
import NERCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A full disk must never leave a half-written job: every queued file parses, nothing is left in
/// tmp/, and the tool says what went wrong in one line. Needs root to mount a tiny tmpfs.
@Suite struct DiskFullTests {
    @Test func queueOnAFullDiskWritesWholeJobsOrNothing() throws {
        let t = TempDir("ner-full"); defer { t.remove() }
        let mountPoint = t.file("fs")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        guard mount("tmpfs", mountPoint, "tmpfs", 0, "size=96k") == 0 else {
            print("skipping: cannot mount a tmpfs here (\(errnoString())); run as root to test a full disk")
            return
        }
        defer { umount2(mountPoint, Int32(MNT_DETACH)) }
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
}
