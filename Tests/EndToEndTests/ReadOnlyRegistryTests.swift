import Foundation
import NERCore
import Testing
import TestSupport

/// The commands that only read the registry work where nobody may write it: on a read-only mount,
/// or with the file made immutable. Root writes through permission bits, so those would prove
/// nothing here.
@Suite struct ReadOnlyRegistryTests {
    /// Reading commands answer; a writing one still fails, with 69.
    func checkReadsWork(home: String) throws {
        let list = try run("ner-register", ["list", "--home", home])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(try list.lines.map { try JSON.parse($0)["name"]?.stringValue } == [ModelHome.modelName])
        let jobs = try run("ner-register", ["jobs", "--home", home])
        #expect(jobs.status == 0, "\(jobs.stderr)")
        #expect(!jobs.lines.isEmpty)
        let show = try run("ner-register", ["show", ModelHome.modelName, "--home", home])
        #expect(show.status == 0, "\(show.stderr)")
        let infer = try run("ner-infer", ["--home", home, "--model", ModelHome.modelName, "--quiet"], stdin: "Paris\n")
        #expect(infer.status == 0, "\(infer.stderr)")
        #expect(infer.lines.count == 1)
        let promote = try run("ner-register", ["promote", ModelHome.modelName + ":1", "--home", home])
        #expect(promote.status == 69, "\(promote.stderr)")
    }

    @Test(.enabled(if: Mounts.canMount, "needs root (CAP_SYS_ADMIN) to mount a read-only file system"))
    func onAReadOnlyMount() throws {
        let t = TempDir("ner-ro"); defer { t.remove() }
        let home = t.file("home")
        try Mounts.tmpfs(home, size: "64m")
        defer { Mounts.unmount(home) }
        try ModelHome.fill(home)
        // ner-infer unpacks the artifact into the home's cache once, while it still may.
        #expect(try run("ner-infer", ["--home", home, "--model", ModelHome.modelName], stdin: "x\n").status == 0)
        try Mounts.remountReadOnly(home)
        #expect(!FileManager.default.isWritableFile(atPath: home + "/registry.sqlite"))
        try checkReadsWork(home: home)
    }

    @Test(.enabled(if: ReadOnlyRegistryTests.canChattr, "needs chattr and a file system with the immutable attribute"))
    func withAnImmutableRegistryAndFolder() throws {
        let t = TempDir("ner-immutable"); defer { t.remove() }
        let home = t.file("home")
        try ModelHome.fill(home)
        #expect(try run("ner-infer", ["--home", home, "--model", ModelHome.modelName], stdin: "x\n").status == 0)
        // The file and its folder: with only the file immutable, SQLite can still make its -shm
        // file beside it and read without help.
        let registry = home + "/registry.sqlite"
        #expect(try run("/usr/bin/chattr", ["+i", registry, home]).status == 0)
        defer { _ = try? run("/usr/bin/chattr", ["-i", registry, home]) }
        try checkReadsWork(home: home)
    }

    static let canChattr: Bool = {
        let t = TempDir("chattr-probe"); defer { t.remove() }
        let f = t.write("f", "x")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chattr"),
              (try? run("/usr/bin/chattr", ["+i", f]))?.status == 0 else { return false }
        _ = try? run("/usr/bin/chattr", ["-i", f])
        return true
    }()
}
