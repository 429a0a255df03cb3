import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NERCore
import TestSupport

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A running `ner-console` on a free port, its stderr in a file.
final class ConsoleProcess: @unchecked Sendable {
    let process = Process()
    let home: String
    let errFile: String
    private(set) var port = 0
    /// http, or https when started with --tls-cert.
    private(set) var scheme = "http"
    var base: String { "\(scheme)://127.0.0.1:\(port)" }
    var stderr: String { (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? "" }

    init(home: String, args: [String] = []) throws {
        self.home = home
        errFile = home + "/console.stderr"
        _ = FileManager.default.createFile(atPath: errFile, contents: nil)
        process.executableURL = URL(fileURLWithPath: TestTools.path("ner-console"))
        process.arguments = ["--home", home, "--port", "0"] + args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: errFile)
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let r = stderr.range(of: #"listening on https?://[^ ]+:[0-9]+"#, options: .regularExpression) {
                let address = stderr[r].dropFirst("listening on ".count)
                scheme = address.hasPrefix("https") ? "https" : "http"
                if let p = Int(address.split(separator: ":").last ?? "") { port = p; break }
            }
            if !process.isRunning { throw Failure("ner-console exited: \(stderr)") }
            usleep(50_000)
        }
        guard port > 0 else { throw Failure("ner-console did not listen: \(stderr)") }
    }

    /// The one-time link a first start printed.
    func firstSignInLink() throws -> String {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let line = stderr.split(separator: "\n").first(where: { $0.contains("/signin?token=") }) {
                return line.trimmingCharacters(in: .whitespaces)
            }
            usleep(50_000)
        }
        throw Failure("no sign-in link on stderr: \(stderr)")
    }

    /// SIGTERM, as a service manager stops it; it must be gone within ten seconds.
    @discardableResult
    func stop() -> Bool {
        guard process.isRunning else { return true }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return false
        }
        return true
    }

    deinit { stop() }
}

/// One HTTP exchange through curl: the status and the body.
struct HTTPResult {
    var status: Int
    var body: String
    var json: JSON? { try? JSON.parse(body) }
}

/// A curl client with its own cookie jar (one signed-in browser, as far as the server knows).
struct Client {
    let base: String
    let jar: String
    var csrf: String?

    init(base: String, dir: String) {
        self.base = base
        jar = dir + "/jar-\(UUID().uuidString.prefix(8))"
    }

    func request(_ method: String, _ path: String, body: String? = nil, contentType: String = "application/json",
                 csrf: String? = nil, bodyFile: String? = nil) throws -> HTTPResult {
        let out = jar + ".out"
        var args = ["-s", "-S", "--max-time", "60", "-o", out, "-w", "%{http_code}", "-X", method, "-b", jar, "-c", jar]
        if let body {
            args += ["-H", "Content-Type: \(contentType)", "--data-binary", body]
        } else if let bodyFile {
            args += ["-H", "Content-Type: \(contentType)", "--data-binary", "@" + bodyFile]
        }
        if let token = csrf ?? self.csrf { args += ["-H", "X-CSRF-Token: \(token)"] }
        let r = try run("/usr/bin/curl", args + [base + path])
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        return HTTPResult(status: Int(r.stdout) ?? -1, body: text)
    }

    /// Signs in with a one-time token; keeps the session cookie and the CSRF token.
    mutating func signIn(_ token: String) throws -> HTTPResult {
        let r = try request("POST", "/api/signin", body: #"{"token":"\#(token)"}"#)
        csrf = r.json?["csrf"]?.stringValue
        return r
    }
}

/// `ner-console user add NAME --role ROLE` and its token.
func addUser(_ home: String, _ name: String, role: String) throws -> String {
    let r = try run("ner-console", ["user", "add", name, "--role", role, "--home", home, "--quiet"])
    guard r.status == 0, let token = (try? JSON.parse(r.stdout))?["token"]?.stringValue else {
        throw Failure("user add: \(r.status) \(r.stderr)")
    }
    return token
}

/// A port nobody listens on now.
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}
