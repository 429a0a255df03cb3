import Foundation
import NERCore
import Testing
import TestSupport

/// Audits the system calls of the real tools (under strace): every file they create under
/// $NER_HOME is written under a temp name, made durable (fsync or syncfs) and renamed into place.
/// Append-only logs and SQLite's own files are the documented exceptions.
@Suite struct WriteAuditTests {
    static let haveStrace = FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")
    static let appendOnly = ["/logs/", "/spool/events/", "/spool/run/", "dispatch.lock", "registry.sqlite"]

    struct Violation: CustomStringConvertible {
        var path: String
        var problem: String
        var description: String { "\(path): \(problem)" }
    }

    /// Replays an strace log (`-f -e trace=openat,rename,renameat,renameat2,link,linkat,fsync,fdatasync,syncfs`).
    static func audit(_ log: String, home: String) -> (created: Int, violations: [Violation]) {
        var fds: [String: String] = [:]          // "pid:fd" -> path
        var synced = Set<String>()
        var createdBy: [String: String] = [:]    // path -> pid
        var renamedFrom: [String: String] = [:]  // temp path -> final path
        let q = "\""
        func quoted(_ s: Substring) -> [String] {
            s.components(separatedBy: q).enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        }
        for raw in log.split(separator: "\n") {
            let parts = raw.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let pid = String(parts[0]), call = parts[1]
            guard let result = call.components(separatedBy: " = ").last.flatMap({ Int($0.split(separator: " ")[0]) }),
                  result >= 0 else { continue }
            if call.hasPrefix("openat(") && call.contains("O_CREAT") {
                guard let path = quoted(call).first, path.hasPrefix(home) else { continue }
                fds["\(pid):\(result)"] = path
                createdBy[path] = pid
            } else if call.hasPrefix("fsync(") || call.hasPrefix("fdatasync(") {
                let fd = call.dropFirst(call.hasPrefix("fsync(") ? 6 : 10).prefix { $0.isNumber }
                if let p = fds["\(pid):\(fd)"] { synced.insert(p) }
            } else if call.hasPrefix("syncfs(") {
                for (p, owner) in createdBy where owner == pid { synced.insert(p) }
            } else if call.hasPrefix("rename") || call.hasPrefix("link(") || call.hasPrefix("linkat(") {
                // link + unlink is the no-overwrite form of rename.
                let paths = quoted(call)
                guard paths.count == 2 else { continue }
                renamedFrom[paths[0]] = paths[1]
                if !synced.contains(paths[0]) && createdBy[paths[0]] != nil {
                    renamedFrom[paths[0]] = "UNSYNCED"
                }
            }
        }
        var violations: [Violation] = []
        let created = createdBy.keys.filter { p in !appendOnly.contains { p.contains($0) } }
        for path in created.sorted() {
            // A file written inside a temp folder that is then renamed as a whole counts as renamed.
            let renamedDir = renamedFrom.keys.contains { path.hasPrefix($0 + "/") }
            if renamedFrom[path] == "UNSYNCED" {
                violations.append(Violation(path: path, problem: "renamed without fsync"))
            } else if renamedFrom[path] == nil && !renamedDir {
                violations.append(Violation(path: path, problem: "written in place (never renamed)"))
            } else if !synced.contains(path) {
                violations.append(Violation(path: path, problem: "never fsynced"))
            }
        }
        return (created.count, violations)
    }

    func traced(_ t: TempDir, _ tool: String, _ args: [String], stdin: String = "") throws -> RunResult {
        let log = t.file("strace-\(tool)-\(UUID().uuidString.prefix(6)).txt")
        let r = try run("/usr/bin/strace", ["-f", "-qq", "-o", log,
                                           "-e", "trace=openat,rename,renameat,renameat2,link,linkat,fsync,fdatasync,syncfs",
                                           TestTools.path(tool)] + args, stdin: stdin)
        let found = Self.audit(try String(contentsOfFile: log, encoding: .utf8), home: t.path + "/home")
        #expect(found.violations.isEmpty, "\(tool): \(found.violations)")
        return r
    }

    @Test(.enabled(if: Self.haveStrace, "strace is not installed (make deps installs it for make test)"))
    func queueAndDispatchWriteEveryFileAtomically() throws {
        let t = TempDir("ner-audit"); defer { t.remove() }
        let home = t.path + "/home"
        let train = t.write("train.txt", "EU I-ORG\n\n")
        let q = try traced(t, "ner-queue", ["--home", home], stdin: #"{"name":"a","train":"\#(train)"}"# + "\n")
        #expect(q.status == 0, "\(q.stderr)")
        let d = try traced(t, "ner-dispatch", ["--home", home, "--once", "--command", #"cat; echo '{"status":"x"}' >&2"#])
        #expect(d.status == 0, "\(d.stderr)")
        let c = try traced(t, "ner-queue", ["--home", home, "--purge"])
        #expect(c.status == 0)
    }

    @Test(.enabled(if: Self.haveStrace, "strace is not installed (make deps installs it for make test)"))
    func trainPackRegisterInferWriteEveryFileAtomically() throws {
        let t = TempDir("ner-audit2"); defer { t.remove() }
        let home = t.path + "/home"
        let data = TestTools.repoRoot + "/examples/data"
        let job = #"{"name":"audit","spec":{"train":"\#(data)/dev.txt","dev":"\#(data)/test.txt","epochs":1,"hidden_size":16,"word_dim":16,"char_dim":8}}"#
        let trained = try traced(t, "ner-train", ["--home", home], stdin: job + "\n")
        #expect(trained.status == 0, "\(trained.stderr)")
        let packed = try traced(t, "ner-pack", ["--home", home], stdin: trained.stdout)
        #expect(packed.status == 0, "\(packed.stderr)")
        let registered = try traced(t, "ner-register", ["--home", home], stdin: packed.stdout)
        #expect(registered.status == 0, "\(registered.stderr)")
        let inferred = try traced(t, "ner-infer", ["--home", home, "--model", "audit"], stdin: "Peter went to Paris.\n")
        #expect(inferred.status == 0, "\(inferred.stderr)")
    }

    @Test func auditCatchesAnInPlaceWrite() {
        let log = """
            10 openat(AT_FDCWD, "/h/spool/new/x.json", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3
            10 openat(AT_FDCWD, "/h/spool/tmp/.y.tmp", O_WRONLY|O_CREAT|O_EXCL, 0644) = 4
            10 fsync(4) = 0
            10 rename("/h/spool/tmp/.y.tmp", "/h/spool/new/y.json") = 0
            10 openat(AT_FDCWD, "/h/spool/tmp/.z.tmp", O_WRONLY|O_CREAT|O_EXCL, 0644) = 5
            10 rename("/h/spool/tmp/.z.tmp", "/h/spool/new/z.json") = 0
            """
        let found = Self.audit(log, home: "/h")
        #expect(found.created == 3)
        #expect(found.violations.map(\.description) == [
            "/h/spool/new/x.json: written in place (never renamed)",
            "/h/spool/tmp/.z.tmp: renamed without fsync",
        ])
    }
}
