import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif
import NERArtifact
import NERCore
import TestSupport

/// One tiny model, trained once for the whole suite with the real ner-train, and a home where it is
/// registered twice (as `tiny-a` and `tiny-b`, name `tiny`) for the reload tests.
final class Fixture: @unchecked Sendable {
    static let shared = Fixture()

    let root = TempDir("ner-serve-test")
    /// The trained model folder.
    let modelDir: String
    let problem: String?

    private init() {
        modelDir = root.file("tiny")
        let data = TestTools.repoRoot + "/examples/data"
        let job = """
        {"name": "tiny", "spec": {"train": "\(data)/train.txt", "dev": "\(data)/dev.txt", "epochs": 3, \
        "hidden_size": 32, "word_dim": 32, "char_dim": 16, "threads": 1}}
        """
        let r = try? run("ner-train", ["--output", modelDir, "--home", root.file("train-home"), "--quiet"], stdin: job + "\n")
        problem = r?.status == 0 ? nil : "ner-train failed: \(r?.stderr ?? "did not run")"
        atexit { Fixture.shared.root.remove() }
    }

    /// A fresh home with the model registered as `tiny-a` (version 1, production) and `tiny-b`.
    func registryHome() throws -> String {
        let home = TempDir("ner-serve-home").path
        for id in ["tiny-a", "tiny-b"] {
            let packed = try run("ner-pack", [modelDir, "--name", "tiny", "--model-id", id, "--home", home, "--quiet"])
            guard packed.status == 0 else { throw Failure("ner-pack: \(packed.stderr)") }
            let registered = try run("ner-register", ["--home", home, "--quiet"], stdin: packed.stdout)
            guard registered.status == 0 else { throw Failure("ner-register: \(registered.stderr)") }
        }
        let promoted = try run("ner-register", ["promote", "tiny-a", "--home", home, "--quiet"])
        guard promoted.status == 0 else { throw Failure("ner-register promote: \(promoted.stderr)") }
        return home
    }

    /// Registers in `home` a model `tiny-broken` (name `tiny`) whose model.json is out of range
    /// (max_word_chars -5 made the server abort while loading it). ner-pack refuses such a folder,
    /// so it is packed by the library, as another writer might.
    func registerBrokenModel(in home: String) throws {
        let broken = home + "/broken-model"
        try FileManager.default.copyItem(atPath: modelDir, toPath: broken)
        var json = try JSON.parse(FileManager.default.contents(atPath: broken + "/model.json") ?? Data())
        var config = json["config"] ?? .null
        config["max_word_chars"] = -5
        json["config"] = config
        try json.prettyEncoded().write(to: URL(fileURLWithPath: broken + "/model.json"))
        let packed = try Artifact.pack(modelDir: broken, modelId: "tiny-broken", name: "tiny", into: home + "/artifacts")
        let record: JSON = ["schema": 1, "status": "packed", "name": "tiny", "artifact": .string(packed.path),
                            "sha256": .string(packed.sha256), "model_id": "tiny-broken"]
        let registered = try run("ner-register", ["--home", home, "--quiet"], stdin: record.compactString + "\n")
        guard registered.status == 0 else { throw Failure("ner-register: \(registered.stderr)") }
    }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A running `ner-serve` process on a free port, its stderr collected.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private let log = LogBuffer()
    private(set) var port = 0

    var base: String { "http://127.0.0.1:\(port)" }

    /// What the server wrote to stderr; once it has exited, all of it (the reader may lag behind the exit).
    var stderr: String {
        if !process.isRunning { log.waitForEnd(timeout: 5) }
        return log.text
    }

    /// Starts `ner-serve ARGS --port 0` and waits until it listens and `/readyz` says ready.
    init(_ args: [String], env: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: TestTools.path("ner-serve"))
        process.arguments = args + ["--port", "0"]
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "NER_SERVE_TOKEN")
        for (k, v) in env { environment[k] = v }
        process.environment = environment
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let reader = pipe.fileHandleForReading
        // The reader holds only the buffer, so a test that throws before stop() still releases this
        // object, and deinit kills the server.
        Thread.detachNewThread { [log] in
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                log.append(chunk)
            }
            log.end()
        }
        let deadline = Date().addingTimeInterval(30)
        while port == 0 {
            if let range = stderr.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(stderr[range].split(separator: ":").last!)!
            } else if !process.isRunning || Date() > deadline {
                throw Failure("ner-serve did not start: \(stderr)")
            } else {
                usleep(10_000)
            }
        }
        while (try? get("/readyz").status) != 200 {
            if Date() > deadline { throw Failure("ner-serve never became ready: \(stderr)") }
            usleep(10_000)
        }
    }

    func get(_ path: String, headers: [String: String] = [:]) throws -> Reply {
        try request("GET", path, headers: headers)
    }

    func post(_ path: String, _ body: Data, type: String?, headers: [String: String] = [:]) throws -> Reply {
        var h = headers
        if let type { h["Content-Type"] = type }
        return try request("POST", path, body: body, headers: h)
    }

    func request(_ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:]) throws -> Reply {
        try HTTP.send(method, base + path, body: body, headers: headers)
    }

    /// Sends `sig` and waits for the exit status.
    func stop(_ sig: Int32 = SIGTERM) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, sig) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

final class LogBuffer: @unchecked Sendable {
    private let condition = NSCondition()
    private var data = Data()
    private var ended = false

    func append(_ chunk: Data) {
        condition.withLock { data.append(chunk) }
    }

    /// The writer closed its end: nothing more will come.
    func end() {
        condition.withLock {
            ended = true
            condition.broadcast()
        }
    }

    func waitForEnd(timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        condition.withLock {
            while !ended && condition.wait(until: deadline) {}
        }
    }

    var text: String {
        condition.withLock { String(decoding: data, as: UTF8.self) }
    }
}

struct Reply {
    var status: Int
    var headers: [String: String]
    var body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSON? { try? JSON.parse(body) }
    /// The `error` string of a JSON error body.
    var error: String? { json?["error"]?.stringValue }
}

/// A synchronous HTTP client on URLSession (libcurl underneath on Linux).
enum HTTP {
    static let session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = 30
        c.httpMaximumConnectionsPerHost = 16
        return URLSession(configuration: c)
    }()

    static func send(_ method: String, _ url: String, body: Data? = nil, headers: [String: String] = [:]) throws -> Reply {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.httpBody = body
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let done = DispatchSemaphore(value: 0)
        let box = ReplyBox()
        session.dataTask(with: request) { data, response, error in
            if let http = response as? HTTPURLResponse {
                var h: [String: String] = [:]
                for (k, v) in http.allHeaderFields { h[String(describing: k).lowercased()] = String(describing: v) }
                box.result = .success(Reply(status: http.statusCode, headers: h, body: data ?? Data()))
            } else {
                box.result = .failure(error ?? Failure("no response"))
            }
            done.signal()
        }.resume()
        done.wait()
        return try box.result!.get()
    }
}

private final class ReplyBox: @unchecked Sendable {
    var result: Result<Reply, Error>?
}

/// `curl` itself, for requests exactly as the documentation shows them. Its output goes to files
/// rather than pipes, so no reader thread is needed, and it is spawned and reaped with posix_spawn
/// and waitpid: Foundation's `Process.waitUntilExit` on Linux can miss a child's exit while many
/// children come and go, and then waits until another one ends (once, ten minutes in a test that
/// held eight requests that long). `--max-time` bounds a request the server never answers.
func curl(_ args: [String], maxTime: Int = 120) throws -> (status: Int, body: String) {
    let out = Fixture.shared.root.file("curl-\(UUID().uuidString)")
    let code = Fixture.shared.root.file("code-\(UUID().uuidString)")
    defer {
        try? FileManager.default.removeItem(atPath: out)
        try? FileManager.default.removeItem(atPath: code)
    }
    let argv = ["curl", "-s", "--max-time", String(maxTime), "-o", out, "-w", "%{http_code}"] + args
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, code, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var cArgs = argv.map { strdup($0) } + [nil]
    defer { for a in cArgs { free(a) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/usr/bin/curl", &actions, nil, &cArgs, environ)
    if rc != 0 { throw Failure("cannot start curl: errno \(rc)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    let http = Int((try? String(contentsOfFile: code, encoding: .utf8)) ?? "") ?? 0
    return (http, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
}

/// A raw TCP connection to the server, for clients no HTTP library would imitate.
final class RawConnection {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 { throw Failure("connect failed: errno \(errno)") }
    }

    func send(_ s: String) {
        _ = s.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until the server closes the connection or `timeout` seconds pass; returns what came and
    /// whether the connection was closed.
    func readUntilClosed(timeout: Double) -> (data: String, closed: Bool) {
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 { return (String(decoding: out, as: UTF8.self), true) }
            if n > 0 { out += buf[0..<n] } else if errno != EAGAIN && errno != EWOULDBLOCK { return (String(decoding: out, as: UTF8.self), true) }
        }
        return (String(decoding: out, as: UTF8.self), false)
    }

    deinit { close(fd) }
}
