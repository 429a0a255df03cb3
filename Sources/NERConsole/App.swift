import Foundation
import Logging
import NERCore
import NERDispatch
import NERModelStore
import NERQueue
import NERRegistry
import NERText
#if canImport(Glibc)
import Glibc
#endif

/// What `ner-console` is started with (docs/console.md).
public struct ConsoleOptions: Sendable {
    public var home: Home
    /// Folders whose files a job may name as data; uploads go to `$NER_HOME/uploads`, always allowed.
    public var dataRoots: [String] = []
    /// Largest request body (an uploaded CoNLL file), in bytes.
    public var maxUpload = 64 << 20
    /// Session lifetime, seconds.
    public var sessionSeconds: Double = 12 * 3600
    /// Models kept loaded for "Try it".
    public var modelCache = 4
    /// Mark the session cookie `Secure` (behind a TLS proxy).
    public var secureCookies = false

    public init(home: Home) { self.home = home }
}

/// A handler's failure, answered as `{"error": message, "field": field}` with `status`.
struct HTTPError: Error {
    var status: Int
    var message: String
    var field: String?
}

/// The console's application: routing, sessions, roles and CSRF, and every JSON endpoint
/// (docs/console.md, "JSON API"). Runs on the work queue; anything thrown is a 4xx/5xx answer,
/// never a crash.
public final class ConsoleApp: @unchecked Sendable {
    let options: ConsoleOptions
    let registry: Registry
    let queue: JobQueue
    let events = EventHub()
    let models: ConsoleModelCacheBox
    let log: Logger
    var maxBody: Int { options.maxUpload }
    /// The registry's change stamp last seen by the event poller, and the last transition sent.
    private var stamp = ""
    private var lastTransition: Int64 = 0
    private var idleTicks = 0

    static let cookieName = "ner_session"

    public init(options: ConsoleOptions, log: Logger) throws {
        self.options = options
        self.log = log
        queue = try JobQueue(home: options.home)
        registry = try Registry(path: options.home.registry)
        models = ConsoleModelCacheBox(ModelCache(home: options.home, capacity: options.modelCache))
        try makeDirectory(uploadsDir)
        stamp = (try? registry.changeStamp()) ?? ""
        lastTransition = (try? registry.lastTransitionId()) ?? 0
    }

    var uploadsDir: String { options.home.root + "/uploads" }

    // MARK: - Events

    /// Called once a second by the poller: sends what changed to every open event stream.
    func poll() {
        guard let now = try? registry.changeStamp() else { return }
        if now != stamp {
            stamp = now
            idleTicks = 0
            let moved = (try? registry.transitions(after: lastTransition, limit: 200)) ?? []
            if let l = moved.last { lastTransition = l.id }
            let payload: JSON = ["stamp": .string(now), "transitions": .array(moved.map(\.json))]
            events.broadcast("event: change\ndata: \(payload.compactString)\n\n")
        } else {
            idleTicks += 1
            if idleTicks % 25 == 0 { events.broadcast(": idle\n\n") }
        }
    }

    // MARK: - Routing

    static let securityHeaders: [(String, String)] = [
        ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ]

    public func handle(_ request: Request) -> Response {
        do {
            return try route(request)
        } catch let e as HTTPError {
            var o: [String: JSON] = ["error": .string(e.message)]
            if let f = e.field { o["field"] = .string(f) }
            return ConsoleApp.json(e.status, .object(o))
        } catch let e as ToolError {
            return ConsoleApp.toolError(e)
        } catch {
            return ConsoleApp.error(500, "\(error)")
        }
    }

    static func toolError(_ e: ToolError) -> Response {
        let status: Int
        switch e.status {
        case .usage, .dataError: status = 400
        case .noInput: status = 404
        case .unavailable, .tempFail: status = 503
        default: status = 409
        }
        var o: [String: JSON] = ["error": .string(e.message)]
        if let f = guessField(e.message) { o["field"] = .string(f) }
        return json(status, .object(o))
    }

    /// The form field a validation message is about: the first spec field named in it.
    static func guessField(_ message: String) -> String? {
        let fields = ["name", "priority"] + JobSpec.fieldNames + Resources.fieldNames
        let words = message.split(whereSeparator: { !($0.isLetter || $0 == "_" || $0 == ".") }).map {
            String($0).replacingOccurrences(of: "spec.", with: "").replacingOccurrences(of: "resources.", with: "")
        }
        for w in words where fields.contains(w) { return w }
        return nil
    }

    func route(_ r: Request) throws -> Response {
        let segments = r.path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }
        // Static files and sign-in need no session.
        if r.method == "GET" || r.method == "HEAD" {
            switch r.path {
            case "/", "/index.html": return Response(status: 200, contentType: "text/html; charset=utf-8", body: Array(Assets.html.utf8))
            case "/app.js": return Response(status: 200, contentType: "text/javascript; charset=utf-8", body: Array(Assets.js.utf8))
            case "/app.css": return Response(status: 200, contentType: "text/css; charset=utf-8", body: Array(Assets.css.utf8))
            case "/favicon.ico": return Response(status: 204, contentType: "image/x-icon", body: [])
            case "/signin": return try signInLink(r)
            case "/healthz": return ConsoleApp.json(200, ["status": "ok"])
            default: break
            }
        }
        if r.method == "POST" && r.path == "/api/signin" { return try signIn(r) }
        guard segments.first == "api" else { throw HTTPError(status: 404, message: "no such path: \(clipped(r.path))") }

        guard let session = try currentSession(r) else {
            throw HTTPError(status: 401, message: "not signed in (open the sign-in link ner-console printed, or POST /api/signin)")
        }
        let user = session.user
        let api = Array(segments.dropFirst())
        if r.method == "GET" {
            return try get(api, r, user: user, session: session)
        }
        guard r.method == "POST" else { throw HTTPError(status: 405, message: "\(r.path) takes GET or POST, not \(clipped(r.method))") }
        // Every state-changing request carries the session's CSRF token.
        guard let given = r.header("x-csrf-token"), Secrets.equal(given, session.csrf) else {
            throw HTTPError(status: 403, message: "missing or wrong X-CSRF-Token header (GET /api/me gives it)")
        }
        return try post(api, r, user: user, session: session)
    }

    func require(_ user: UserRow, _ role: String) throws {
        let rank = ["viewer": 0, "operator": 1, "admin": 2]
        guard (rank[user.role] ?? -1) >= (rank[role] ?? 9) else {
            throw HTTPError(status: 403, message: "\(user.name) is a \(user.role); this needs the \(role) role")
        }
    }

    func get(_ api: [String], _ r: Request, user: UserRow, session: SessionRow) throws -> Response {
        switch api.count {
        case 1:
            switch api[0] {
            case "me":
                return ConsoleApp.json(200, ["user": .string(user.name), "role": .string(user.role), "csrf": .string(session.csrf),
                                             "expires_at": .string(session.expiresAt), "data_roots": .array(options.dataRoots.map(JSON.string)),
                                             "defaults": try JSON.from(JobSpec()), "statuses": .array(Registry.jobStatuses.map(JSON.string))])
            case "jobs": return try jobs(r)
            case "models": return try modelList()
            case "events":
                var resp = Response(status: 200, contentType: "text/event-stream", headers: [("X-Accel-Buffering", "no")],
                                    body: Array("retry: 2000\n: open\n\n".utf8))
                resp.stream = true
                return resp
            case "users":
                try require(user, "admin")
                return ConsoleApp.json(200, ["users": .array(try registry.users().map(\.json))])
            case "audit":
                let limit = min(max(Int(r.query["limit"] ?? "") ?? 200, 1), 5000)
                return ConsoleApp.json(200, ["audit": .array(try registry.auditLog(limit: limit).map(\.json))])
            default: break
            }
        case 2:
            switch api[0] {
            case "jobs": return try job(api[1])
            case "models": return try modelName(api[1])
            case "model": return try modelDetail(api[1])
            case "sweeps": return try sweep(api[1], by: r.query["by"] ?? "dev.f1")
            default: break
            }
        case 3 where api[0] == "jobs" && api[2] == "log":
            return try logTail(api[1], offset: Int(r.query["offset"] ?? "") ?? -1)
        default: break
        }
        throw HTTPError(status: 404, message: "no such path: GET \(clipped(r.path))")
    }

    func post(_ api: [String], _ r: Request, user: UserRow, session: SessionRow) throws -> Response {
        switch (api.count, api.first ?? "") {
        case (1, "signout"):
            if let id = r.cookie(ConsoleApp.cookieName) { try registry.deleteSession(idHash: Secrets.hash(id)) }
            return ConsoleApp.json(200, ["signed_out": true], headers: [("Set-Cookie", clearCookie)])
        case (1, "ner"):
            let body = try ConsoleApp.jsonBody(r)
            guard let text = body["text"]?.stringValue else { throw HTTPError(status: 400, message: "expected {\"model\": ..., \"text\": \"...\"}", field: "text") }
            guard let spec = body["model"]?.stringValue, !spec.isEmpty else { throw HTTPError(status: 400, message: "choose a model", field: "model") }
            // The body is byte for byte what `POST /ner` of ner-serve answers for the same text.
            let tagged = try models.cache.tag(text, model: spec)
            return Response(status: 200, headers: [("X-Model-Id", tagged.modelId),
                                                   ("X-Model-Labels", tagged.labels.joined(separator: ","))], body: tagged.json)
        case (1, "jobs"):
            try require(user, "operator")
            return try queueJob(r, user: user)
        case (1, "sweeps"):
            try require(user, "operator")
            return try queueSweep(r, user: user)
        case (1, "retrain"):
            try require(user, "operator")
            return try retrain(r, user: user)
        case (1, "uploads"):
            try require(user, "operator")
            return try upload(r, user: user)
        case (3, "jobs") where api[2] == "cancel":
            try require(user, "operator")
            let was = try queue.cancel(api[1])
            if was != .queued { _ = SlurmBackend.cancel(jobId: api[1], spool: queue.spool) }
            try registry.audit(who: user.name, action: "job.cancel", target: api[1], detail: was.rawValue)
            return ConsoleApp.json(200, ["job_id": .string(api[1]), "cancelled": true, "was": .string(was.rawValue)])
        case (3, "models") where api[2] == "promote":
            try require(user, "operator")
            let body = try ConsoleApp.jsonBody(r)
            let alias = body["alias"]?.stringValue ?? "production"
            guard let spec = body["model"]?.stringValue, let m = try registry.resolve(spec), m.name == api[1] else {
                throw HTTPError(status: 404, message: "no model \(clipped(body["model"]?.stringValue ?? "")) of \(clipped(api[1]))", field: "model")
            }
            let move = try registry.promote(modelId: m.modelId, alias: alias, who: user.name)
            return ConsoleApp.json(200, move?.json ?? ["changed": false, "model_id": .string(m.modelId)])
        case (3, "models") where api[2] == "rollback":
            try require(user, "operator")
            let body = try ConsoleApp.jsonBody(r)
            let alias = body["alias"]?.stringValue ?? "production"
            let m = try registry.rollback(name: api[1], alias: alias, who: user.name)
            return ConsoleApp.json(200, ["name": .string(api[1]), "alias": .string(alias), "model_id": .string(m.modelId),
                                         "version": .int(Int64(m.version))])
        case (3, "sweeps") where api[2] == "promote-best":
            try require(user, "operator")
            let body = (try? ConsoleApp.jsonBody(r)) ?? [:]
            let by = body["by"]?.stringValue ?? "dev.f1"
            let best = try registry.best(sweep: api[1], by: by)
            let move = try registry.promote(modelId: best.model.modelId, alias: body["alias"]?.stringValue ?? "production", who: user.name)
            return ConsoleApp.json(200, move?.json ?? ["changed": false, "model_id": .string(best.model.modelId)])
        case (1, "users"):
            try require(user, "admin")
            let body = try ConsoleApp.jsonBody(r)
            guard let name = body["name"]?.stringValue else { throw HTTPError(status: 400, message: "name is required", field: "name") }
            let token = try UserAdmin.add(registry, name: name, role: body["role"]?.stringValue ?? "viewer", by: user.name)
            return ConsoleApp.json(200, ["name": .string(name), "token": .string(token), "signin": .string("/signin?token=" + token)])
        case (3, "users") where api[2] == "reset":
            try require(user, "admin")
            let token = try UserAdmin.reset(registry, name: api[1], by: user.name)
            return ConsoleApp.json(200, ["name": .string(api[1]), "token": .string(token), "signin": .string("/signin?token=" + token)])
        case (3, "users") where api[2] == "remove":
            try require(user, "admin")
            if api[1] == user.name { throw HTTPError(status: 400, message: "you cannot remove yourself") }
            try registry.removeUser(name: api[1], by: user.name)
            return ConsoleApp.json(200, ["name": .string(api[1]), "removed": true])
        default:
            throw HTTPError(status: 404, message: "no such path: POST \(clipped(r.path))")
        }
    }

    // MARK: - Sessions

    var clearCookie: String { "\(ConsoleApp.cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" }

    func currentSession(_ r: Request) throws -> SessionRow? {
        guard let id = r.cookie(ConsoleApp.cookieName), !id.isEmpty, id.count <= 128 else { return nil }
        return try registry.session(idHash: Secrets.hash(id))
    }

    /// Spends a token and opens a session: the cookie header and the session's CSRF token.
    func openSession(token: String, secure: Bool) throws -> (cookie: String, csrf: String, user: UserRow)? {
        guard !token.isEmpty, token.count <= 128, let user = try registry.redeemToken(hash: Secrets.hash(token)) else { return nil }
        let id = Secrets.random(), csrf = Secrets.random()
        try registry.createSession(idHash: Secrets.hash(id), user: user.name, csrf: csrf,
                                   expiresAt: Date().addingTimeInterval(options.sessionSeconds))
        var cookie = "\(ConsoleApp.cookieName)=\(id); Path=/; Max-Age=\(Int(options.sessionSeconds)); HttpOnly; SameSite=Strict"
        if secure { cookie += "; Secure" }
        return (cookie, csrf, user)
    }

    func secure(_ r: Request) -> Bool {
        options.secureCookies || r.header("x-forwarded-proto")?.lowercased() == "https"
    }

    /// `GET /signin?token=T`: the link ner-console prints; sets the cookie and goes to the jobs page.
    func signInLink(_ r: Request) throws -> Response {
        guard let s = try openSession(token: r.query["token"] ?? "", secure: secure(r)) else {
            return Response(status: 403, contentType: "text/html; charset=utf-8",
                            body: Array("<!doctype html><title>ner-console</title><p>This sign-in link is not valid (each link works once; ask an admin for a new one: ner-console user reset NAME).</p>".utf8))
        }
        return Response(status: 303, contentType: "text/plain", headers: [("Set-Cookie", s.cookie), ("Location", "/#/jobs")],
                        body: Array("signed in as \(s.user.name)\n".utf8))
    }

    /// `POST /api/signin {"token": T}`: the same for curl; answers the CSRF token.
    func signIn(_ r: Request) throws -> Response {
        let body = try ConsoleApp.jsonBody(r)
        guard let s = try openSession(token: body["token"]?.stringValue ?? "", secure: secure(r)) else {
            throw HTTPError(status: 403, message: "unknown or already used sign-in token")
        }
        return ConsoleApp.json(200, ["user": .string(s.user.name), "role": .string(s.user.role), "csrf": .string(s.csrf)],
                               headers: [("Set-Cookie", s.cookie)])
    }

    // MARK: - Jobs

    func jobs(_ r: Request) throws -> Response {
        let limit = min(max(Int(r.query["limit"] ?? "") ?? 50, 1), 500)
        let offset = max(Int(r.query["offset"] ?? "") ?? 0, 0)
        let page = try registry.jobsPage(name: r.query["name"], status: r.query["status"], sweep: r.query["sweep"],
                                         limit: limit, offset: offset)
        let rows: [JSON] = page.jobs.map { j in
            var o = j.json
            o["created_at"] = j.record?["created_at"] ?? .null
            o["sweep_id"] = j.record?["sweep_id"] ?? .null
            return o
        }
        return ConsoleApp.json(200, ["jobs": .array(rows), "total": .int(Int64(page.total)),
                                     "limit": .int(Int64(limit)), "offset": .int(Int64(offset))])
    }

    func job(_ id: String) throws -> Response {
        let row = try registry.job(id)
        let entry = queue.spool.find(id)
        guard row != nil || entry != nil else { throw HTTPError(status: 404, message: "no job \(clipped(id))") }
        var o: [String: JSON] = [:]
        if let row { o = row.json.objectValue ?? [:] }
        o["job_id"] = .string(id)
        if let entry {
            o["spool_state"] = .string(entry.state.rawValue)
            if let owner = entry.owner { o["owner"] = .string(owner.description) }
            if let record = try? queue.spool.read(entry.path) { o["record"] = record }
        }
        if o["record"] == nil, let rec = row?.record { o["record"] = rec }
        let transitions = (try? registry.transitions(jobId: id)) ?? []
        o["transitions"] = .array(transitions.map(\.json))
        // The run's length: from its first `running` to its last transition once it ended.
        if let start = transitions.first(where: { $0.status == "running" }).flatMap({ Timestamp.parse($0.at) }) {
            let ended = ["registered", "done", "failed", "cancelled"].contains(row?.status ?? "")
            let end = ended ? transitions.last.flatMap { Timestamp.parse($0.at) } ?? Date() : Date()
            o["seconds"] = .double((end.timeIntervalSince(start) * 10).rounded() / 10)
        }
        return ConsoleApp.json(200, .object(o))
    }

    /// The end of a job's log (`$NER_HOME/logs/JOB_ID.log`) from `offset` (-1: its last 64 KiB).
    func logTail(_ id: String, offset: Int) throws -> Response {
        // Job ids are NAME-UUID (docs/records.md): nothing here can leave the logs folder.
        guard !id.isEmpty, id.count <= 200, !id.hasPrefix("."), id.utf8.allSatisfy({
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
        }) else { throw HTTPError(status: 400, message: "not a job id: \(clipped(id))") }
        let path = options.home.logs + "/" + id + ".log"
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return ConsoleApp.json(200, ["text": "", "offset": 0, "size": 0, "exists": false])
        }
        defer { try? handle.close() }
        let size = Int((try? handle.seekToEnd()) ?? 0)
        let from = offset < 0 || offset > size ? max(0, size - 65536) : offset
        try handle.seek(toOffset: UInt64(from))
        let data = try handle.read(upToCount: min(size - from, 1 << 20)) ?? Data()
        return ConsoleApp.json(200, ["text": .string(String(decoding: data, as: UTF8.self)), "offset": .int(Int64(from + data.count)),
                                     "size": .int(Int64(size)), "exists": true])
    }

    /// The data paths a job may name: under a `--data-root` or the uploads folder, links resolved.
    /// Relative paths are read against the first data root.
    func checkPaths(_ request: inout [String: JSON]) throws {
        var spec = request["spec"]?.objectValue
        for key in ["train", "dev", "test", "embeddings"] {
            let value = spec?[key] ?? request[key]
            guard let v = value?.stringValue else { continue }
            if key == "embeddings" && v == "none" { continue }
            if v.utf8.contains(0) { throw HTTPError(status: 400, message: "\(key) path contains a NUL byte", field: key) }
            let base = options.dataRoots.first ?? uploadsDir
            let path = absolute(v, relativeTo: base)
            let resolved = canonical(path) ?? path
            let roots = (options.dataRoots + [uploadsDir]).map { canonical($0) ?? $0 }
            guard roots.contains(where: { resolved == $0 || resolved.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) else {
                throw HTTPError(status: 400, message: "\(key) file \(clipped(v)) is outside the data roots this console allows "
                                + "(\((options.dataRoots + [uploadsDir]).joined(separator: ", ")))", field: key)
            }
            if spec?[key] != nil { spec?[key] = .string(path) } else { request[key] = .string(path) }
        }
        if let spec { request["spec"] = .object(spec) }
    }

    func canonical(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// `POST /api/jobs`: one request as ner-queue reads it on stdin, through the same validation and
    /// the same spool write.
    func queueJob(_ r: Request, user: UserRow) throws -> Response {
        var request = try ConsoleApp.jsonBody(r)
        try checkPaths(&request)
        let job = try JobRequest.make(from: .object(request), context: nil)
        let record = try JSON.from(job)
        try submit([record], user: user, action: "job.queue")
        return ConsoleApp.json(200, record)
    }

    /// `POST /api/sweeps` (`?dry_run=1` counts the trials): a sweep file's JSON, as `ner-queue --sweep`.
    func queueSweep(_ r: Request, user: UserRow) throws -> Response {
        let spec = JSON.object(try ConsoleApp.jsonBody(r))
        let sweep = try Sweep(spec, defaults: [:], file: "sweep", maxTrials: Sweep.defaultMaxTrials)
        if let plan = sweep.bayes {
            if r.query["dry_run"] == "1" {
                return ConsoleApp.json(200, ["name": .string(sweep.name), "trials": .int(Int64(plan.trials)), "method": "bayes"])
            }
            var checked = sweep
            try checkPaths(&checked.base)
            // Its first trials are queued now; ner-dispatch makes the rest as they finish.
            let progress = try BayesSweep(queue: queue).start(checked, file: "sweep", folder: options.dataRoots.first, log: log)
            for record in progress.queued {
                try? registry.audit(who: user.name, action: "sweep.queue", target: record["job_id"]?.stringValue,
                                    detail: progress.sweepId)
            }
            return ConsoleApp.json(200, ["sweep_id": .string(progress.sweepId), "trials": .int(Int64(plan.trials)), "method": "bayes",
                                         "jobs": .array(progress.queued.compactMap { $0["job_id"] })])
        }
        if r.query["dry_run"] == "1" {
            return ConsoleApp.json(200, ["name": .string(sweep.name), "trials": .int(Int64(sweep.trials.count))])
        }
        var checked = sweep
        for i in checked.trials.indices {
            var req = checked.trials[i].request
            try checkPaths(&req)
            checked.trials[i].request = req
        }
        let (records, _) = try JobQueue.trials(of: checked, file: "sweep", base: options.dataRoots.first)
        try submit(records, user: user, action: "sweep.queue")
        return ConsoleApp.json(200, ["sweep_id": records.first?["sweep_id"] ?? .null, "trials": .int(Int64(records.count)),
                                     "jobs": .array(records.compactMap { $0["job_id"] })])
    }

    /// `POST /api/retrain {"from": MODEL, ...spec overrides}`: as `ner-queue --from`.
    func retrain(_ r: Request, user: UserRow) throws -> Response {
        var body = try ConsoleApp.jsonBody(r)
        guard let from = body.removeValue(forKey: "from")?.stringValue, !from.isEmpty else {
            throw HTTPError(status: 400, message: "from is required (NAME, NAME@ALIAS, NAME:VERSION or a model id)", field: "from")
        }
        try checkPaths(&body)
        let (record, _) = try Retraining.job(from: from, overrides: body, registry: registry)
        try submit([record], user: user, action: "job.retrain")
        return ConsoleApp.json(200, record)
    }

    func submit(_ records: [JSON], user: UserRow, action: String) throws {
        try SlurmBackend.checkPartitions(records, contexts: [], warn: { [log] in log.warning("\($0)") })
        try queue.submit(records, log: log)
        for record in records {
            try? registry.audit(who: user.name, action: action, target: record["job_id"]?.stringValue,
                                detail: record["sweep_id"]?.stringValue)
        }
    }

    /// `POST /api/uploads?name=FILE`: a CoNLL file, checked, kept under `$NER_HOME/uploads/ID/FILE`.
    func upload(_ r: Request, user: UserRow) throws -> Response {
        let given = r.query["name"] ?? "data.txt"
        var name = String(given.unicodeScalars.map { s -> Character in
            CharacterSet.alphanumerics.contains(s) && s.isASCII || s == "." || s == "-" || s == "_" ? Character(s) : "_"
        }).trimmingCharacters(in: CharacterSet(charactersIn: "."))
        if name.isEmpty { name = "data.txt" }
        name = String(name.prefix(100))
        guard !r.body.isEmpty else { throw HTTPError(status: 400, message: "the uploaded file is empty", field: "file") }
        let dir = uploadsDir + "/" + UUID().uuidString.lowercased()
        try makeDirectory(dir)
        let path = dir + "/" + name
        try AtomicFile.write(Data(r.body), to: path)
        let sentences: [Sentence]
        do {
            sentences = try CoNLL.read(path: path)
        } catch let e as ToolError {
            try? FileManager.default.removeItem(atPath: dir)
            throw HTTPError(status: 400, message: "\(given) is not a CoNLL file: \(e.message.replacingOccurrences(of: path, with: given))", field: "file")
        }
        if sentences.isEmpty {
            try? FileManager.default.removeItem(atPath: dir)
            throw HTTPError(status: 400, message: "\(clipped(given)) holds no sentences", field: "file")
        }
        try registry.audit(who: user.name, action: "upload", target: path, detail: "\(r.body.count) bytes")
        return ConsoleApp.json(200, ["path": .string(path), "name": .string(given), "sentences": .int(Int64(sentences.count)),
                                     "bytes": .int(Int64(r.body.count))])
    }

    // MARK: - Models

    func modelList() throws -> Response {
        let names = try registry.modelNames()
        var aliases: [String: [String: JSON]] = [:]
        for a in try registry.allAliases() { aliases[a.name, default: [:]][a.alias] = .string(a.modelId) }
        var out: [JSON] = []
        for n in names {
            var o: [String: JSON] = ["name": .string(n.name), "versions": .int(Int64(n.versions)), "latest": .int(Int64(n.latest)),
                                     "registered_at": .string(n.updated), "aliases": .object(aliases[n.name] ?? [:])]
            let prod = aliases[n.name]?["production"]?.stringValue
            if let m = try (prod.flatMap { try registry.model($0) }) ?? registry.resolve("\(n.name)@latest") {
                o["production_version"] = prod == nil ? .null : .int(Int64(m.version))
                o["dev_f1"] = m.metrics?["dev"]?["f1"] ?? .null
            }
            out.append(.object(o))
        }
        return ConsoleApp.json(200, ["models": .array(out)])
    }

    static func summary(_ m: ModelRow) -> JSON {
        var o = m.json.objectValue ?? [:]
        o["sweep_params"] = m.record["sweep_params"] ?? .null
        o["spec"] = m.record["spec"] ?? .null
        return .object(o)
    }

    func modelName(_ name: String) throws -> Response {
        let versions = try registry.versionTable(name: name)
        guard !versions.isEmpty else { throw HTTPError(status: 404, message: "no model named \(clipped(name))") }
        var aliases: [String: JSON] = [:]
        for (k, v) in try registry.aliases(name: name) { aliases[k] = .string(v) }
        // Who queued each version's job, from the console's audit, when it was queued there.
        let by = try registry.queuedBy(jobIds: versions.compactMap { $0["job_id"]?.stringValue })
        let rows: [JSON] = versions.map { v in
            var o = v
            if let job = v["job_id"]?.stringValue, let who = by[job] { o["created_by"] = .string(who) }
            return o
        }
        return ConsoleApp.json(200, ["name": .string(name), "versions": .array(rows), "aliases": .object(aliases),
                                     "history": .array(try registry.aliasHistory(name: name).reversed().map(\.json))])
    }

    /// One version: its row, its learning curve (`history.ndjson`) and per-type scores.
    func modelDetail(_ spec: String) throws -> Response {
        guard let m = try registry.resolve(spec) else { throw HTTPError(status: 404, message: "no model \(clipped(spec))") }
        var o = ConsoleApp.summary(m).objectValue ?? [:]
        var history: [JSON] = []
        var dirs: [String] = []
        if let d = m.record["model_dir"]?.stringValue { dirs.append(d) }
        if m.status == "registered", let located = try? ModelLocator(home: options.home).locate(m.modelId) {
            dirs.append(located.directory)
        }
        for d in dirs {
            if let text = try? String(contentsOfFile: d + "/history.ndjson", encoding: .utf8) {
                history = text.split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
                break
            }
        }
        o["history"] = .array(history)
        o["record"] = m.record
        return ConsoleApp.json(200, .object(o))
    }

    func sweep(_ id: String, by metric: String) throws -> Response {
        let ranked = try registry.sweepModels(id, by: metric)
        let jobs = try registry.jobsPage(name: nil, status: nil, sweep: id, limit: 10000, offset: 0)
        return ConsoleApp.json(200, ["sweep_id": .string(id), "by": .string(metric),
                                     "trials": .array(ranked.map { t in
                                         var o = ConsoleApp.summary(t.model).objectValue ?? [:]
                                         o["score"] = t.score.map(JSON.double) ?? .null
                                         return .object(o)
                                     }),
                                     "jobs": .array(jobs.jobs.map(\.json)), "total_jobs": .int(Int64(jobs.total))])
    }

    // MARK: - Answers

    static func json(_ status: Int, _ value: JSON, headers: [(String, String)] = []) -> Response {
        var out: [UInt8] = []
        value.append(to: &out)
        return Response(status: status, headers: headers, body: out)
    }

    static func error(_ status: Int, _ message: String) -> Response {
        json(status, ["error": .string(message)])
    }

    static func jsonBody(_ r: Request) throws -> [String: JSON] {
        guard !r.body.isEmpty else { throw HTTPError(status: 400, message: "expected a JSON object in the body") }
        let value: JSON
        do { value = try JSON.parse(Data(r.body)) } catch {
            throw HTTPError(status: 400, message: "the body is not valid JSON: \((error as? ToolError)?.message ?? "\(error)")")
        }
        guard let o = value.objectValue else { throw HTTPError(status: 400, message: "expected a JSON object in the body") }
        return o
    }
}

/// Holds the model cache (a separate type so the app's stored properties stay simple).
final class ConsoleModelCacheBox: @unchecked Sendable {
    let cache: ModelCache
    init(_ cache: ModelCache) { self.cache = cache }
}
