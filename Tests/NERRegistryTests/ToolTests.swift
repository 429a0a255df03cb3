import Foundation
import GRDB
import NERCore
import NERRegistry
import Testing
import TestSupport

/// `ner-register` driven as users drive it: records on stdin, NDJSON on stdout, exit codes.
@Suite struct ToolTests {
    let tool = "ner-register"

    @Test func registersPackedRecordsAndPassesTheOthersThrough() throws {
        let home = TempDir("reg-tool")
        defer { home.remove() }
        let a = try realPacked(name: "conll", in: home, artifactsDir: home.file("artifacts"))
        let b = try realPacked(name: "conll", in: home, artifactsDir: home.file("artifacts"))
        let failed: JSON = ["job_id": "conll-x", "name": "conll", "status": "failed", "error": "diverged"]
        let trained: JSON = ["job_id": "conll-y", "name": "conll", "status": "trained", "model_dir": "/tmp/m"]
        let input = ndjson([a, failed, b, trained])

        let first = try run(tool, ["--home", home.path], stdin: input)
        #expect(first.status == 0, "\(first.stderr)")
        let out = try parseLines(first.stdout)
        try #require(out.count == 4)
        #expect(out[1] == failed && out[3] == trained, "records not consumed pass through unchanged")
        for (i, packed) in [(0, a), (2, b)] {
            #expect(out[i]["status"] == "registered")
            #expect(out[i]["untouched"] == packed["untouched"])
            #expect(out[i]["sha256"] == packed["sha256"])
            #expect(out[i]["model_id"]?.stringValue?.hasPrefix("conll-") == true)
        }
        #expect(out[0]["version"] == 1 && out[2]["version"] == 2)

        // A second run registers nothing new and prints the same ids and versions.
        let second = try run(tool, ["--home", home.path], stdin: input)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try parseLines(second.stdout) == out)
        let listed = try parseLines(try run(tool, ["list", "--home", home.path]).stdout)
        #expect(listed.map { $0["version"] } == [1, 2])
        #expect(listed.map { $0["model_id"] } == [out[0]["model_id"], out[2]["model_id"]])
    }

    /// Shared options go before or after the subcommand, as git and kubectl users type them.
    @Test func sharedOptionsComeBeforeOrAfterTheSubcommand() throws {
        let home = TempDir("reg-tool-options")
        defer { home.remove() }
        let packed = try realPacked(name: "conll", in: home, artifactsDir: home.file("artifacts"))
        // The pipeline stage (the default subcommand) with the options first.
        let registered = try run(tool, ["--home", home.path, "--quiet"], stdin: ndjson([packed]))
        #expect(registered.status == 0, "\(registered.stderr)")
        #expect(registered.stderr.isEmpty, "--quiet: \(registered.stderr)")
        let id = try #require(try parseLines(registered.stdout).first?["model_id"]?.stringValue)
        for args in [["--home", home.path, "list"], ["list", "--home", home.path],
                     ["--home", home.path, "--log-format", "json", "list", "conll"], ["-q", "list", "--home", home.path]] {
            let r = try run(tool, args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            #expect(try parseLines(r.stdout).map { $0["model_id"]?.stringValue } == [id], "\(args)")
        }
        let second = try realPacked(name: "conll", in: home, artifactsDir: home.file("artifacts"))
        let logged = try run(tool, ["--home", home.path, "--log-format", "json", "register"], stdin: ndjson([second]))
        #expect(logged.status == 0, "\(logged.stderr)")
        // The log line is JSON, so --log-format before the subcommand reached it.
        let logLine = try #require(logged.stderr.split(separator: "\n").first.map(String.init), "no log line")
        #expect((try? JSON.parse(logLine)) != nil, "\(logLine)")
        // Elsewhere (another home) the same subcommand sees nothing: --home was not ignored.
        let other = TempDir("reg-tool-options-other")
        defer { other.remove() }
        #expect(try run(tool, ["--home", other.path, "list"]).stdout.isEmpty)
    }

    @Test func aTamperedOrMissingArtifactRegistersNothing() throws {
        let home = TempDir("reg-tamper")
        defer { home.remove() }
        let good = try realPacked(name: "conll", in: home, artifactsDir: home.file("artifacts"))
        let path = try #require(good["artifact"]?.stringValue)

        var wrongSha = good
        wrongSha["sha256"] = .string(String(repeating: "0", count: 64))
        let r1 = try run(tool, ["--home", home.path], stdin: ndjson([wrongSha]))
        #expect(r1.status == 65)
        #expect(r1.stderr.contains("stdin:1:") && r1.stderr.contains("sha256"), "\(r1.stderr)")

        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for i in stride(from: bytes.count / 3, to: bytes.count / 3 + 16, by: 1) { bytes[i] ^= 0xFF }
        try bytes.write(to: URL(fileURLWithPath: path))
        let r2 = try run(tool, ["--home", home.path], stdin: ndjson([good]))
        #expect(r2.status == 65, "\(r2.stderr)")

        var missing = good
        missing["artifact"] = .string(home.file("artifacts/gone.tar.gz"))
        let r3 = try run(tool, ["--home", home.path], stdin: "\n" + ndjson([missing]))
        #expect(r3.status == 66)
        #expect(r3.stderr.contains("stdin:2:"), "\(r3.stderr)")

        for r in [r1, r2, r3] { #expect(r.stdout.isEmpty) }
        let listed = try run(tool, ["list", "--all", "--home", home.path])
        #expect(listed.status == 0 && listed.stdout.isEmpty)
    }

    @Test func badJSONNamesTheLineAndUnknownModelsAre66() throws {
        let home = TempDir("reg-bad")
        defer { home.remove() }
        let bad = try run(tool, ["--home", home.path], stdin: "{\"status\":\"trained\"}\n{not json\n")
        #expect(bad.status == 65)
        #expect(bad.stderr.hasPrefix("ner-register: error: stdin:2:"), "\(bad.stderr)")
        #expect(bad.stdout == "{\"status\":\"trained\"}\n")

        let show = try run(tool, ["show", "conll@production", "--home", home.path])
        #expect(show.status == 66)
        #expect(show.stderr == "ner-register: error: unknown model conll@production\n")
        let job = try run(tool, ["job", "conll-nope", "--home", home.path])
        #expect(job.status == 66)
        let flag = try run(tool, ["gc", "--home", home.path])
        #expect(flag.status == 64, "gc without --keep is a usage error")
    }

    @Test func subcommandsListShowPromoteRollbackAndCollect() throws {
        let f = try Fixture("reg-cli")
        defer { f.remove() }
        let m = try (1...3).map { _ in try f.registerFake(name: "conll", metrics: ["dev": ["f1": 0.8]]) }
        let h = ["--home", f.home]

        let promote = try run(tool, ["promote", "conll:2"] + h)
        #expect(promote.status == 0, "\(promote.stderr)")
        #expect(try JSON.parse(promote.stdout)["to_model"]?.stringValue == m[1].modelId)
        let show = try JSON.parse(try run(tool, ["show", "conll"] + h).stdout)
        #expect(show["model_id"]?.stringValue == m[1].modelId)
        #expect(show["aliases"] == ["production"])
        #expect(show["record"]?["extra"] == ["kept": true])

        #expect(try run(tool, ["alias", "conll", "best", "conll:3"] + h).status == 0)
        #expect(try run(tool, ["promote", m[2].modelId] + h).status == 0)
        let back = try run(tool, ["promote", "conll", "--rollback"] + h)
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try JSON.parse(back.stdout)["to_model"]?.stringValue == m[1].modelId)
        let history = try parseLines(try run(tool, ["history", "conll", "--alias", "production"] + h).stdout)
        #expect(history.map { $0["action"] } == ["promote", "promote", "rollback"])
        let at = try run(tool, ["history", "conll", "--at", Timestamp.now()] + h)
        #expect(try JSON.parse(at.stdout)["model_id"]?.stringValue == m[1].modelId)

        let refused = try run(tool, ["rm", "conll:2"] + h)
        #expect(refused.status == 1 && refused.stderr.contains("production"))
        let gc = try run(tool, ["gc", "--keep", "0"] + h)
        #expect(gc.status == 0)
        #expect(try parseLines(gc.stdout).map { $0["model_id"]?.stringValue } == [m[0].modelId])
        #expect(try parseLines(try run(tool, ["list"] + h).stdout).count == 2)
        #expect(try parseLines(try run(tool, ["list", "--all"] + h).stdout).count == 3)
        let table = try run(tool, ["list", "--table"] + h)
        #expect(table.lines.first?.hasPrefix("NAME") == true && table.lines.count == 3)
        #expect(table.stdout.contains("0.8000"))

        try f.registry.recordTransition(jobId: "conll-j", name: "conll", status: "running", attempt: 1)
        try f.registry.recordTransition(jobId: "conll-j", name: "conll", status: "failed", attempt: 1, error: "oom")
        let jobs = try parseLines(try run(tool, ["jobs", "--status", "failed"] + h).stdout)
        #expect(jobs.map { $0["error"] } == ["oom"])
        let transitions = try parseLines(try run(tool, ["job", "conll-j"] + h).stdout)
        #expect(transitions.map { $0["status"] } == ["running", "failed"])
    }

    /// `show --table` is for people: the fields as lines, the training figures as `metrics.KEY`
    /// lines, and the scores as one table (docs/records.md), a row of all entities before the types.
    @Test func showTableListsTheFiguresThenTheScoresAsATable() throws {
        let f = try Fixture("reg-show-table")
        defer { f.remove() }
        func scores(_ p: Double, _ r: Double, _ f1: Double, gold: Int, _ perType: [String: JSON]) -> JSON {
            ["precision": .double(p), "recall": .double(r), "f1": .double(f1), "gold_count": .int(Int64(gold)),
             "predicted_count": 10, "correct_count": 7, "per_type": .object(perType)]
        }
        let type: (Double, Int) -> JSON = { ["precision": .double($0), "recall": .double($0), "f1": .double($0), "support": .int(Int64($1))] }
        let metrics: JSON = ["epochs_run": 17, "best_epoch": 12, "train_seconds": 41.5,
                             "dev": scores(0.7, 0.8, 0.74667, gold: 12, ["PER": type(0.9, 5), "LOC": type(0.5, 7)]),
                             "test": scores(0.75, 0.5, 0.6, gold: 9, ["ORG": type(0.25, 9)])]
        let m = try f.registerFake(name: "conll", metrics: metrics)
        let r = try run(tool, ["show", "conll", "--table", "--home", f.home])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).dropLast()
        #expect(lines.contains("model_id: \(m.modelId)") && lines.contains("version: 1"))
        #expect(!r.stdout.contains("\"per_type\"") && !lines.contains { $0.hasPrefix("record") })
        #expect(lines.contains("metrics.best_epoch: 12") && lines.contains("metrics.epochs_run: 17")
                && lines.contains("metrics.train_seconds: 41.5"))
        let header = try #require(lines.firstIndex { $0.hasPrefix("SET") })
        #expect(lines[header - 1] == "", "a blank line before the table")
        let rows = lines[(header + 1)...].map { $0.split(separator: " ").map(String.init) }
        #expect(lines[header].split(separator: " ") == ["SET", "TYPE", "PRECISION", "RECALL", "F1", "SUPPORT"])
        #expect(rows == [["dev", "all", "0.7000", "0.8000", "0.7467", "12"],
                         ["dev", "LOC", "0.5000", "0.5000", "0.5000", "7"],
                         ["dev", "PER", "0.9000", "0.9000", "0.9000", "5"],
                         ["test", "all", "0.7500", "0.5000", "0.6000", "9"],
                         ["test", "ORG", "0.2500", "0.2500", "0.2500", "9"]])

        // A model registered without metrics shows no table.
        _ = try f.registerFake(name: "bare")
        let bare = try run(tool, ["show", "bare", "--table", "--home", f.home])
        #expect(bare.status == 0 && !bare.stdout.contains("SET") && !bare.stdout.contains("metrics"), "\(bare.stdout)")
    }

    @Test func aRegistryLockedPastTheTimeoutIs69() throws {
        let f = try Fixture("reg-locked")
        defer { f.remove() }
        _ = try f.registerFake(name: "conll")
        let holder = try DatabaseQueue(path: f.dir.file("registry.sqlite"))
        try holder.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            defer { try? db.execute(sql: "ROLLBACK") }
            let r = try run(tool, ["promote", "conll:1", "--busy-timeout", "0.3", "--home", f.home])
            #expect(r.status == 69)
            #expect(r.stderr.contains("locked"), "\(r.stderr)")
        }
    }

    @Test func helpReadsLikeAManPageForEverySubcommand() throws {
        for sub in [[], ["register"], ["list"], ["show"], ["history"], ["alias"], ["promote"], ["rm"], ["gc"], ["jobs"], ["job"]] {
            let r = try run(tool, sub + ["--help"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("EXIT STATUS") && r.stdout.contains("69") && r.stdout.contains("EXAMPLES"),
                    "\(sub) --help")
        }
        #expect(try run(tool, ["--version"]).stdout == Toolchain.version + "\n")
    }

    /// Regression: a process reading the migration table while another created it failed with
    /// "no such table: grdb_migrations" (exit 1) instead of retrying.
    @Test func processesOpeningOneFreshRegistryAtOnceAllSucceed() throws {
        for round in 0..<8 {
            let home = TempDir("reg-open-race")
            defer { home.remove() }
            let procs = try (0..<8).map { i -> (Process, String) in
                let p = Process()
                p.executableURL = URL(fileURLWithPath: TestTools.path(tool))
                p.arguments = ["list", "--home", home.path, "--quiet"]
                let err = home.write("err-\(i)", "")
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle(forWritingAtPath: err)
                try p.run()
                return (p, err)
            }
            for (p, err) in procs {
                p.waitUntilExit()
                let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
                #expect(p.terminationStatus == 0, "round \(round): \(stderr)")
            }
            #expect(try Registry(path: home.file("registry.sqlite")).appliedMigrations() == Registry.schemaVersions)
        }
    }

    /// Many writers at once on a fresh file: the migration race, the version race and the busy
    /// timeout all at once; in WAL mode (8 processes x 200 records) and with the rollback journal
    /// a network file system needs (a smaller run).
    @Test(arguments: [("wal", 8, 200), ("delete", 4, 50)])
    func concurrentProcessesRegisterEveryRecord(journal: String, processes: Int, perProcess: Int) throws {
        let home = TempDir("reg-race")
        defer { home.remove() }
        let names = ["alpha", "beta", "gamma"]
        // Packing fsyncs every tarball; eight threads let those waits overlap.
        let inputs = (0..<processes).map { home.file("in-\($0).ndjson") }
        let failures = Failures()
        let done = DispatchGroup()
        for p in 0..<processes {
            done.enter()
            Thread {
                defer { done.leave() }
                do {
                    let records = try (0..<perProcess).map { i in
                        try realPacked(name: names[(p + i) % names.count], in: home,
                                       artifactsDir: home.file("artifacts"), index: p * perProcess + i)
                    }
                    try ndjson(records).write(toFile: inputs[p], atomically: true, encoding: .utf8)
                } catch {
                    failures.add("\(error)")
                }
            }.start()
        }
        done.wait()
        try #require(failures.all.isEmpty, "\(failures.all)")

        var running: [(Process, String, String)] = []
        for (p, input) in inputs.enumerated() {
            let proc = Process()
            proc.executableURL = URL(fileURLWithPath: TestTools.path(tool))
            proc.arguments = ["--home", home.path, "--quiet"]
            var env = ProcessInfo.processInfo.environment
            env[Registry.JournalMode.environmentKey] = journal
            proc.environment = env
            let out = home.file("out-\(p).ndjson"), err = home.file("err-\(p).txt")
            FileManager.default.createFile(atPath: out, contents: nil)
            FileManager.default.createFile(atPath: err, contents: nil)
            proc.standardInput = FileHandle(forReadingAtPath: input)
            proc.standardOutput = FileHandle(forWritingAtPath: out)
            proc.standardError = FileHandle(forWritingAtPath: err)
            running.append((proc, out, err))
        }
        for (proc, _, _) in running { try proc.run() }
        for (proc, out, err) in running {
            proc.waitUntilExit()
            let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            #expect(proc.terminationStatus == 0, "\(stderr)")
            let lines = try parseLines(try String(contentsOfFile: out, encoding: .utf8))
            #expect(lines.count == perProcess)
            #expect(lines.allSatisfy { $0["status"] == "registered" && $0["version"]?.intValue != nil })
        }

        let registry = try Registry(path: home.file("registry.sqlite"), journalMode: Registry.JournalMode(rawValue: journal))
        #expect(!fileExists(home.file("registry.sqlite-wal")) == (journal == "delete"))
        let all = try registry.models()
        #expect(all.count == processes * perProcess)
        #expect(Set(all.map(\.modelId)).count == all.count)
        for name in names {
            let versions = all.filter { $0.name == name }.map(\.version)
            #expect(versions == Array(1...versions.count), "\(name): versions unique and without gaps")
        }
    }
}

/// Errors collected from helper threads.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
