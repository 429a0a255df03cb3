import Foundation
import NERCore
import NERRegistry
import Testing
import TestSupport

/// The console's JSON API (docs/console.md) as curl sees it: sign-in, roles, CSRF, the same job
/// validation and spool files as ner-queue, uploads, and bad requests.
@Suite(.serialized) struct ConsoleTests {
    static let data = TestTools.repoRoot + "/examples/data"

    @Test func rolesCSRFAndQueueing() throws {
        let dir = TempDir("ner-console")
        defer { dir.remove() }
        let home = dir.path
        let opToken = try addUser(home, "ops", role: "operator")
        let viewerToken = try addUser(home, "vic", role: "viewer")
        let console = try ConsoleProcess(home: home, args: ["--data-root", Self.data])
        defer { console.stop() }
        #expect(!console.stderr.contains("/signin?token="), "users exist: no first admin")

        var anonymous = Client(base: console.base, dir: home)
        #expect(try anonymous.request("GET", "/api/jobs").status == 401)
        #expect(try anonymous.signIn("not-a-token").status == 403)

        var viewer = Client(base: console.base, dir: home)
        #expect(try viewer.signIn(viewerToken).status == 200)
        #expect(try viewer.request("GET", "/api/me").json?["role"] == "viewer")
        // A token works once.
        var again = Client(base: console.base, dir: home)
        #expect(try again.signIn(viewerToken).status == 403)
        // A viewer's well-formed POST, CSRF token and all, is refused for its role.
        let job = #"{"name":"t1","spec":{"train":"\#(Self.data)/train.txt","dev":"\#(Self.data)/dev.txt","epochs":2}}"#
        #expect(try viewer.request("POST", "/api/jobs", body: job).status == 403)
        #expect(try viewer.request("POST", "/api/models/x/promote", body: #"{"model":"x:1"}"#).status == 403)

        var ops = Client(base: console.base, dir: home)
        #expect(try ops.signIn(opToken).status == 200)
        // No CSRF token, or a wrong one: 403 whatever the role.
        #expect(try ops.request("POST", "/api/jobs", body: job, csrf: "").status == 403)
        #expect(try ops.request("POST", "/api/jobs", body: job, csrf: String(repeating: "0", count: 64)).status == 403)
        // The same validation as ner-queue, the field named for the form.
        let bad = try ops.request("POST", "/api/jobs", body: #"{"name":"t1","spec":{"train":"\#(Self.data)/train.txt","epochs":-2}}"#)
        #expect(bad.status == 400)
        #expect(bad.json?["field"] == "epochs")
        #expect(bad.json?["error"]?.stringValue?.contains("epochs must be between 1 and 10000") == true)
        let typo = try ops.request("POST", "/api/jobs", body: #"{"name":"t1","spec":{"train":"\#(Self.data)/train.txt","epoch":2}}"#)
        #expect(typo.status == 400)
        #expect(typo.json?["error"]?.stringValue?.contains("did you mean 'spec.epochs'") == true)
        // Nothing outside the data roots.
        let outside = try ops.request("POST", "/api/jobs", body: #"{"name":"t1","spec":{"train":"/etc/passwd"}}"#)
        #expect(outside.status == 400)
        #expect(outside.json?["field"] == "train")
        let climbing = try ops.request("POST", "/api/jobs", body: #"{"name":"t1","spec":{"train":"\#(Self.data)/../../Package.swift"}}"#)
        #expect(climbing.status == 400)
        #expect(try ops.request("POST", "/api/jobs", body: "{not json").status == 400)

        let queued = try ops.request("POST", "/api/jobs", body: job)
        #expect(queued.status == 200, "\(queued.body)")
        let jobId = try #require(queued.json?["job_id"]?.stringValue)
        // The spool file ner-queue would have written, and the registry's queued row.
        let spooled = try FileManager.default.contentsOfDirectory(atPath: home + "/spool/new")
        #expect(spooled.count == 1 && spooled[0].contains(jobId))
        let record = try JSON.parse(try String(contentsOfFile: home + "/spool/new/" + spooled[0], encoding: .utf8))
        #expect(record["spec"]?["epochs"] == 2)
        #expect(record["spec"]?["train"]?.stringValue == Self.data + "/train.txt")
        let listed = try viewer.request("GET", "/api/jobs?status=queued")
        #expect(listed.json?["total"] == 1)
        #expect(listed.json?["jobs"]?.arrayValue?.first?["job_id"]?.stringValue == jobId)
        #expect(try viewer.request("GET", "/api/jobs?name=zz").json?["total"] == 0)
        let shown = try viewer.request("GET", "/api/jobs/" + jobId)
        #expect(shown.json?["spool_state"] == "queued")
        #expect(shown.json?["transitions"]?.arrayValue?.first?["status"] == "queued")

        // Cancel, recorded under the user's name in the audit.
        #expect(try viewer.request("POST", "/api/jobs/\(jobId)/cancel", body: "{}").status == 403)
        let cancelled = try ops.request("POST", "/api/jobs/\(jobId)/cancel", body: "{}")
        #expect(cancelled.status == 200)
        #expect(try viewer.request("GET", "/api/jobs/" + jobId).json?["status"] == "cancelled")
        let audit = try viewer.request("GET", "/api/audit").json?["audit"]?.arrayValue ?? []
        #expect(audit.contains { $0["who"] == "ops" && $0["action"] == "job.queue" && $0["target"]?.stringValue == jobId })
        #expect(audit.contains { $0["who"] == "ops" && $0["action"] == "job.cancel" })

        // A sweep's trials counted before it is queued.
        let sweep = #"{"name":"sw","base":{"train":"\#(Self.data)/train.txt","epochs":1},"grid":{"learning_rate":[0.001,0.002],"hidden_size":[16,32,64]}}"#
        #expect(try ops.request("POST", "/api/sweeps?dry_run=1", body: sweep).json?["trials"] == 6)
        // A Bayesian sweep queues its first `parallel` trials now; the rest come as they finish.
        let bayes = #"{"name":"bo","method":"bayes","trials":9,"parallel":3,"base":{"train":"\#(Self.data)/train.txt","epochs":1},"space":{"learning_rate":{"log_uniform":[0.001,0.01]}}}"#
        #expect(try ops.request("POST", "/api/sweeps?dry_run=1", body: bayes).json?["trials"] == 9)
        let started = try ops.request("POST", "/api/sweeps", body: bayes)
        #expect(started.status == 200, "\(started.body)")
        #expect(started.json?["jobs"]?.arrayValue?.count == 3)
        #expect(started.json?["trials"] == 9)

        // Users: admin only; tokens are stored as digests.
        #expect(try ops.request("GET", "/api/users").status == 403)
        let db = try Data(contentsOf: URL(fileURLWithPath: home + "/registry.sqlite"))
        #expect(db.range(of: Data(opToken.utf8)) == nil && db.range(of: Data(viewerToken.utf8)) == nil)
        let users = try run("ner-console", ["user", "list", "--home", home])
        #expect(users.status == 0 && users.lines.count == 2)
        #expect(!users.stdout.contains(opToken))

        // Signing out ends the session.
        #expect(try ops.request("POST", "/api/signout", body: "{}").status == 200)
        #expect(try ops.request("GET", "/api/me").status == 401)
        // SIGTERM ends it, with an open event stream too.
        let stream = Process()
        stream.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        stream.arguments = ["-s", "-N", "-b", viewer.jar, console.base + "/api/events"]
        stream.standardOutput = FileHandle.nullDevice
        try stream.run()
        usleep(300_000)
        #expect(console.stop(), "ner-console did not stop on SIGTERM")
        #expect(console.process.terminationStatus == 0)
        stream.waitUntilExit()
    }

    @Test func uploadsAreCheckedAsCoNLL() throws {
        let dir = TempDir("ner-console")
        defer { dir.remove() }
        let token = try addUser(dir.path, "ops", role: "operator")
        let console = try ConsoleProcess(home: dir.path, args: ["--max-upload", "1"])
        defer { console.stop() }
        var ops = Client(base: console.base, dir: dir.path)
        _ = try ops.signIn(token)
        let junk = dir.write("junk.txt", "just one column\nand another\n\nthird line here too many columns a b c d e\n")
        let refused = try ops.request("POST", "/api/uploads?name=junk.txt", contentType: "application/octet-stream", bodyFile: junk)
        #expect(refused.status == 400, "\(refused.body)")
        let ok = try ops.request("POST", "/api/uploads?name=%3Cimg%20src%3Dx%3E.txt", contentType: "application/octet-stream",
                                 bodyFile: Self.data + "/dev.txt")
        #expect(ok.status == 200, "\(ok.body)")
        let path = try #require(ok.json?["path"]?.stringValue)
        #expect(path.hasPrefix(dir.path + "/uploads/") && !path.contains("<"))
        // An uploaded file is allowed data.
        let job = try ops.request("POST", "/api/jobs", body: #"{"name":"up","spec":{"train":"\#(path)","epochs":1}}"#)
        #expect(job.status == 200, "\(job.body)")
        // Over --max-upload: 413, and the server carries on.
        let big = dir.write("big.txt", String(repeating: "EU B-ORG\n", count: 200_000))
        #expect(try ops.request("POST", "/api/uploads?name=big.txt", contentType: "application/octet-stream", bodyFile: big).status == 413)
        #expect(try ops.request("GET", "/healthz").status == 200)
    }

    @Test func badRequestsGet4xxAndNeverCrash() throws {
        let dir = TempDir("ner-console")
        defer { dir.remove() }
        let token = try addUser(dir.path, "root", role: "admin")
        let console = try ConsoleProcess(home: dir.path)
        defer { console.stop() }
        var admin = Client(base: console.base, dir: dir.path)
        _ = try admin.signIn(token)
        for (method, path, body) in [("GET", "/api/nowhere", nil), ("GET", "/api/jobs/%00%ff", nil), ("GET", "/api/jobs/..%2f..%2fetc/log", nil),
                                     ("GET", "/api/model/%2e%2e", nil),
                                     ("POST", "/api/ner", "[1,2]"), ("POST", "/api/ner", #"{"model":"/etc","text":"x"}"#),
                                     ("POST", "/api/ner", #"{"model":"nothing","text":"x"}"#), ("POST", "/api/users", #"{"name":"<b>"}"#),
                                     ("POST", "/api/models/a/promote", #"{"model":"a:1"}"#), ("POST", "/api/sweeps", #"{"grid":1}"#),
                                     ("PUT", "/api/jobs", "{}"), ("POST", "/api/retrain", "{}")] as [(String, String, String?)] {
            let r = try admin.request(method, path, body: body)
            #expect((400..<500).contains(r.status), "\(method) \(path) -> \(r.status) \(r.body)")
        }
        // Random paths, methods and bodies, with the session and its CSRF token: never a 5xx, never a crash.
        var g = SystemRandomNumberGenerator()
        let methods = ["GET", "POST", "DELETE", "PATCH"]
        let prefixes = ["/api/jobs/", "/api/models/", "/api/model/", "/api/sweeps/", "/api/users/", "/api/", "/"]
        let garbage = dir.file("garbage")
        for _ in 0..<60 {
            let bytes = (0..<Int.random(in: 0...40, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            let segment = bytes.map { String(format: "%%%02X", $0) }.joined()
            let suffix = ["", "/cancel", "/promote", "/rollback", "/log?offset=\(Int.random(in: -9...99, using: &g))", "/reset"].randomElement(using: &g)!
            try Data((0..<Int.random(in: 0...300, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }).write(to: URL(fileURLWithPath: garbage))
            let r = try admin.request(methods.randomElement(using: &g)!, prefixes.randomElement(using: &g)! + segment + suffix, bodyFile: garbage)
            #expect(r.status > 0 && r.status < 500, "\(r.status) \(r.body)")
        }
        #expect(console.process.isRunning)
        // Odd but harmless values are read leniently.
        #expect(try admin.request("GET", "/api/jobs?limit=abc&offset=-1").json?["offset"] == 0)
        #expect(try admin.request("GET", "/api/jobs/x/log?offset=-7").json?["exists"] == false)
        #expect(try admin.request("GET", "/healthz").status == 200)
        // Users through the API: the token is shown once.
        let added = try admin.request("POST", "/api/users", body: #"{"name":"eve","role":"viewer"}"#)
        #expect(added.status == 200)
        #expect(added.json?["signin"]?.stringValue?.hasPrefix("/signin?token=") == true)
        #expect(try admin.request("POST", "/api/users/root/remove", body: "{}").status == 400)
    }

    /// With a certificate and key the console speaks HTTPS itself, on any address; plain HTTP gets
    /// no page, and broken or missing PEM files are refused before anything listens.
    @Test func tlsServesHTTPSOnAnyAddress() throws {
        let dir = TempDir("ner-console-tls")
        defer { dir.remove() }
        let cert = dir.file("cert.pem"), key = dir.file("key.pem")
        let made = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                                                "-days", "1", "-subj", "/CN=127.0.0.1"])
        try #require(made.status == 0, "openssl: \(made.stderr)")
        let console = try ConsoleProcess(home: dir.path, args: ["--host", "0.0.0.0", "--tls-cert", cert, "--tls-key", key])
        defer { console.stop() }
        #expect(console.scheme == "https", "\(console.stderr)")
        #expect(try console.firstSignInLink().hasPrefix("https://"))
        let secure = try run("/usr/bin/curl", ["-s", "-k", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                                               "https://127.0.0.1:\(console.port)/healthz"])
        #expect(secure.stdout == "200", "\(secure.stderr)")
        let plain = try run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                                              "http://127.0.0.1:\(console.port)/healthz"])
        #expect(plain.stdout != "200")

        let garbage = dir.write("garbage.pem", "not a certificate\n")
        let bad = try run("ner-console", ["--home", dir.path, "--port", "0", "--tls-cert", garbage, "--tls-key", key])
        #expect(bad.status == 65, "\(bad.stderr)")
        let missing = try run("ner-console", ["--home", dir.path, "--port", "0", "--tls-cert", dir.file("nope.pem"), "--tls-key", key])
        #expect(missing.status == 66, "\(missing.stderr)")
        let half = try run("ner-console", ["--home", dir.path, "--port", "0", "--tls-cert", cert])
        #expect(half.status == 64, "\(half.stderr)")
    }

    @Test func otherAddressesNeedInsecureHTTP() throws {
        let dir = TempDir("ner-console")
        defer { dir.remove() }
        let r = try run("ner-console", ["--home", dir.path, "--host", "0.0.0.0", "--port", "0"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--insecure-http"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test func firstStartPrintsAnAdminLink() throws {
        let dir = TempDir("ner-console")
        defer { dir.remove() }
        let console = try ConsoleProcess(home: dir.path)
        defer { console.stop() }
        let link = try console.firstSignInLink()
        #expect(link.hasPrefix(console.base + "/signin?token="))
        let users = try Registry(path: dir.path + "/registry.sqlite", readOnly: true).users()
        #expect(users.map(\.name) == ["admin"] && users[0].role == "admin" && users[0].pendingToken)
        // Following the link sets an HttpOnly, SameSite=Strict cookie and spends the token.
        let headers = try run("/usr/bin/curl", ["-s", "-D", "-", "-o", "/dev/null", link])
        #expect(headers.stdout.contains("303"))
        #expect(headers.stdout.contains("HttpOnly") && headers.stdout.contains("SameSite=Strict"))
        let second = try run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", link])
        #expect(second.stdout == "403")
    }

    @Test func promoteRollBackAndSweepsAreTheRegistrysRows() throws {
        let dir = TempDir("ner-console")
        defer { dir.remove() }
        let home = dir.path
        // One tiny model, registered twice as two trials of one sweep.
        let job = #"{"name":"tiny","spec":{"train":"\#(Self.data)/train.txt","dev":"\#(Self.data)/dev.txt","epochs":2,"#
            + #""hidden_size":16,"word_dim":16,"char_dim":8,"threads":1}}"#
        let trained = try run("ner-train", ["--output", dir.file("model"), "--home", home, "--quiet"], stdin: job + "\n")
        try #require(trained.status == 0, "\(trained.stderr)")
        for (id, lr) in [("tiny-a", 0.001), ("tiny-b", 0.002)] {
            let packed = try run("ner-pack", [dir.file("model"), "--name", "tiny", "--model-id", id, "--home", home, "--quiet"])
            try #require(packed.status == 0, "\(packed.stderr)")
            var record = try JSON.parse(packed.stdout)
            record["metrics"] = try JSON.parse(try String(contentsOfFile: dir.file("model/metrics.json"), encoding: .utf8))
            record["spec"] = try JSON.parse(job)["spec"]
            record["sweep_id"] = "sw-1"
            record["sweep_params"] = ["learning_rate": .double(lr)]
            let registered = try run("ner-register", ["--home", home, "--quiet"], stdin: record.compactString + "\n")
            try #require(registered.status == 0, "\(registered.stderr)")
        }
        let token = try addUser(home, "ops", role: "operator")
        let console = try ConsoleProcess(home: home)
        defer { console.stop() }
        var ops = Client(base: console.base, dir: home)
        _ = try ops.signIn(token)

        let name = try ops.request("GET", "/api/models/tiny")
        #expect(name.json?["versions"]?.arrayValue?.map { $0["model_id"] } == ["tiny-b", "tiny-a"])
        let detail = try ops.request("GET", "/api/model/tiny:1")
        #expect(detail.json?["history"]?.arrayValue?.count == 2, "one history line per epoch")
        #expect(detail.json?["metrics"]?["dev"]?["per_type"] != nil)

        #expect(try ops.request("POST", "/api/models/tiny/promote", body: #"{"model":"tiny:1"}"#).status == 200)
        #expect(try ops.request("POST", "/api/models/tiny/promote", body: #"{"model":"tiny-b"}"#).status == 200)
        // A model of another name is refused.
        #expect(try ops.request("POST", "/api/models/other/promote", body: #"{"model":"tiny-b"}"#).status == 404)
        let back = try ops.request("POST", "/api/models/tiny/rollback", body: #"{"alias":"production"}"#)
        #expect(back.json?["model_id"] == "tiny-a")
        // What ner-register reads: the same rows, with the console user as who.
        let history = try run("ner-register", ["history", "tiny", "--home", home])
        let moves = history.lines.compactMap { try? JSON.parse($0) }
        #expect(moves.map { $0["action"] } == ["promote", "promote", "rollback"])
        #expect(moves.allSatisfy { $0["who"] == "ops" })
        #expect(try run("ner-register", ["show", "tiny", "--home", home]).stdout.contains("tiny-a"))

        // The sweep: its trials ranked, and its best promoted.
        let sweep = try ops.request("GET", "/api/sweeps/sw-1")
        #expect(sweep.json?["trials"]?.arrayValue?.count == 2)
        #expect(sweep.json?["trials"]?.arrayValue?.first?["sweep_params"]?["learning_rate"] != nil)
        #expect(try ops.request("POST", "/api/sweeps/sw-1/promote-best", body: #"{"by":"dev.f1"}"#).status == 200)

        // Retraining, as ner-queue --from: the model's own spec with the overrides, and its parent.
        let retrain = try ops.request("POST", "/api/retrain", body: #"{"from":"tiny:1","epochs":3}"#)
        #expect(retrain.status == 200, "\(retrain.body)")
        #expect(retrain.json?["parent_id"] == "tiny-a" && retrain.json?["spec"]?["epochs"] == 3)
        #expect(retrain.json?["spec"]?["hidden_size"] == 16)
        #expect(try ops.request("POST", "/api/retrain", body: #"{"from":"tiny:1","train":"/etc/passwd"}"#).status == 400)

        // Try it answers what ner-serve's POST /ner would: ner-infer's entities for the same text.
        let text = "Angela Merkel visited Paris with the European Union delegation ."
        let tagged = try ops.request("POST", "/api/ner", body: JSON.object(["model": "tiny:1", "text": .string(text)]).compactString)
        #expect(tagged.status == 200, "\(tagged.body)")
        let inferred = try run("ner-infer", ["--model", "tiny:1", "--home", home], stdin: text + "\n")
        #expect(try JSON.parse(inferred.lines.first ?? "{}")["entities"] == tagged.json)
    }

    @Test func sessionsExpire() throws {
        let dir = TempDir("ner-console")
        defer { dir.remove() }
        let token = try addUser(dir.path, "ops", role: "operator")
        let console = try ConsoleProcess(home: dir.path, args: ["--session-hours", "0.0005"])
        defer { console.stop() }
        var ops = Client(base: console.base, dir: dir.path)
        #expect(try ops.signIn(token).status == 200)
        #expect(try ops.request("GET", "/api/me").status == 200)
        sleep(3)
        #expect(try ops.request("GET", "/api/me").status == 401, "a session of 1.8 s is over after 3 s")
    }
}
