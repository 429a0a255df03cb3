import Foundation
import Logging
import NERCore
import NEREngine
import NERText
import NIOCore
import NIOHTTP1

/// One whole request as a connection read it.
struct IncomingRequest {
    var method: HTTPMethod
    /// The path without its query string.
    var path: String
    var headers: HTTPHeaders
    var body: ByteBuffer
}

/// A complete response, written by the connection that asked.
struct Reply: Sendable {
    var status: HTTPResponseStatus
    var contentType = "application/json"
    /// Headers beyond Content-Type, Content-Length, Date and Server.
    var headers: [(String, String)] = []
    var body: ByteBuffer
    /// Close the connection once this is written.
    var close = false
}

/// The state every request reads: the model slot, the batcher, the metrics and the readiness flags.
final class ServerState: @unchecked Sendable {
    let options: ServeOptions
    let slot: ModelSlot
    let batcher: Batcher
    let metrics: Metrics
    let log: Logger
    private let lock = NSLock()
    private var warm = false
    private var draining = false
    private var reloadError: JSON = .null

    init(options: ServeOptions, slot: ModelSlot, batcher: Batcher, metrics: Metrics, log: Logger) {
        self.options = options
        self.slot = slot
        self.batcher = batcher
        self.metrics = metrics
        self.log = log
    }

    /// Loaded, warmed up and not draining.
    var ready: Bool {
        lock.lock()
        defer { lock.unlock() }
        return warm && !draining
    }

    func markWarm() {
        lock.lock()
        warm = true
        lock.unlock()
    }

    func markDraining() {
        lock.lock()
        draining = true
        lock.unlock()
    }

    /// Why the last reload failed (`{"at", "error"}`), null when there was none since the last success.
    var lastReloadError: JSON {
        lock.lock()
        defer { lock.unlock() }
        return reloadError
    }

    func noteReload(error: String?) {
        lock.lock()
        reloadError = error.map { ["at": .string(Timestamp.now()), "error": .string($0)] } ?? .null
        lock.unlock()
    }
}

/// Answers every request: routing, authentication, content checks, and the `/ner` work itself
/// (`/sim`: Similarity.swift). Everything but `/ner` and `/sim` is answered on the calling thread;
/// they answer from the batch worker that ran them, which also encodes the JSON, so the event loops
/// only move bytes.
struct NERResponder: Sendable {
    let state: ServerState

    private static let routes: [String: HTTPMethod] = [
        "/ner": .POST, "/sim": .POST, "/healthz": .GET, "/readyz": .GET, "/metrics": .GET, "/v1/models": .GET,
    ]
    /// Probes from an orchestrator carry no token.
    private static let open: Set<String> = ["/healthz", "/readyz"]

    func respond(to request: IncomingRequest, reply: @escaping @Sendable (Reply) -> Void) {
        let path = request.path
        guard let method = NERResponder.routes[path] else {
            return reply(error(.notFound, "no such path: \(path) (try POST /ner)"))
        }
        guard request.method == method else {
            var r = error(.methodNotAllowed, "\(path) takes \(method.rawValue), not \(request.method.rawValue)")
            r.headers.append(("Allow", method.rawValue))
            return reply(r)
        }
        if let token = state.options.token, !NERResponder.open.contains(path),
           !authorized(request.headers.first(name: "authorization"), token: token) {
            var r = error(.unauthorized, "missing or wrong bearer token")
            r.headers.append(("WWW-Authenticate", "Bearer"))
            return reply(r)
        }
        switch path {
        case "/ner": ner(request, reply: reply)
        case "/sim": similarity(request, reply: reply)
        case "/healthz": reply(json(.ok, ["status": "ok"]))
        case "/readyz":
            let model = state.slot.current
            reply(state.ready
                ? json(.ok, ["status": "ready", "model": .string(model.id)])
                : json(.serviceUnavailable, ["status": "not ready"]))
        case "/metrics":
            let text = state.metrics.render(model: state.slot.current, queue: state.batcher.depth, ready: state.ready)
            reply(Reply(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: ByteBuffer(string: text)))
        default:
            reply(json(.ok, ["models": [state.slot.current.json], "last_reload_error": state.lastReloadError]))
        }
    }

    private func ner(_ request: IncomingRequest, reply: @escaping @Sendable (Reply) -> Void) {
        let kind: BodyKind
        switch BodyKind.of(request.headers.first(name: "content-type")) {
        case .success(let k): kind = k
        case .failure(let problem): return reply(error(.unsupportedMediaType, problem.message))
        }
        guard let text = request.body.withUnsafeReadableBytes({ String(validating: $0, as: UTF8.self) }) else {
            return reply(error(.badRequest, "the body is not valid UTF-8"))
        }
        let texts: [String]
        let many: Bool
        switch kind {
        case .text:
            (texts, many) = ([text], false)
        case .json:
            switch NERResponder.texts(inJSON: text) {
            case .success(let found): (texts, many) = found
            case .failure(let problem): return reply(error(.badRequest, problem.message))
            }
        }

        let (sentences, words) = Entities.tokenize(texts)
        do {
            try state.batcher.submit(words) { tagged in
                let found = Entities.locate(in: texts, sentences: sentences,
                                            predictions: tagged.predictions.map { ($0.tags, $0.scores) })
                var out: [UInt8] = []
                out.reserveCapacity(64 + 96 * found.reduce(0) { $0 + $1.count })
                if many {
                    out.append(UInt8(ascii: "["))
                    for (i, list) in found.enumerated() {
                        if i > 0 { out.append(UInt8(ascii: ",")) }
                        Entity.appendJSON(list, to: &out)
                    }
                    out.append(UInt8(ascii: "]"))
                } else {
                    Entity.appendJSON(found[0], to: &out)
                }
                reply(Reply(status: .ok, headers: [("X-Model-Id", tagged.modelId)], body: ByteBuffer(bytes: out)))
            }
        } catch {
            var r = self.error(.serviceUnavailable, "the server is busy; try again shortly")
            r.headers.append(("Retry-After", "1"))
            reply(r)
        }
    }

    /// The texts of a JSON body: `{"text": ...}` (one list back) or `{"texts": [...]}` (a list of lists).
    static func texts(inJSON body: String) -> Result<([String], Bool), BodyError> {
        let value: JSON
        do {
            value = try JSON.parse(body)
        } catch {
            return .failure(BodyError(message: "the body is \((error as? ToolError)?.message ?? "not valid JSON")"))
        }
        guard let object = value.objectValue else {
            return .failure(BodyError(message: "expected a JSON object with \"text\" or \"texts\""))
        }
        switch (object["text"], object["texts"]) {
        case (.some(.string(let s)), nil):
            return .success(([s], false))
        case (nil, .some(.array(let items))):
            var texts: [String] = []
            texts.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                guard let s = item.stringValue else {
                    return .failure(BodyError(message: "\"texts\"[\(i)] is not a string"))
                }
                texts.append(s)
            }
            return .success((texts, true))
        case (.some, .some):
            return .failure(BodyError(message: "give either \"text\" or \"texts\", not both"))
        case (.some, nil):
            return .failure(BodyError(message: "\"text\" must be a string"))
        case (nil, .some):
            return .failure(BodyError(message: "\"texts\" must be a list of strings"))
        case (nil, nil):
            return .failure(BodyError(message: "expected a JSON object with \"text\" or \"texts\""))
        }
    }

    private func authorized(_ header: String?, token: String) -> Bool {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        // Compare every byte whatever the first difference, so timing does not reveal the token.
        let given = Array(header.utf8.dropFirst(7)), wanted = Array(token.utf8)
        var diff = given.count ^ wanted.count
        for i in 0..<wanted.count { diff |= Int(wanted[i] ^ (i < given.count ? given[i] : 0)) }
        return diff == 0
    }

    /// A body over `limit`: the rest is not worth reading, so the connection is closed after this.
    func tooLarge(_ limit: Int) -> Reply {
        var r = error(.payloadTooLarge, "the body is larger than the limit of \(limit) bytes (--max-body)")
        r.close = true
        return r
    }

    func error(_ status: HTTPResponseStatus, _ message: String) -> Reply {
        json(status, ["error": .string(message)])
    }

    func json(_ status: HTTPResponseStatus, _ value: JSON) -> Reply {
        var out: [UInt8] = []
        value.append(to: &out)
        return Reply(status: status, body: ByteBuffer(bytes: out))
    }
}

struct BodyError: Error {
    var message: String
}

/// How to read a `/ner` body, from its `Content-Type`.
enum BodyKind {
    case text, json

    /// No `Content-Type` means plain text; a charset other than UTF-8 (or its subset ASCII) is refused
    /// rather than misread.
    static func of(_ header: String?) -> Result<BodyKind, BodyError> {
        guard let header else { return .success(.text) }
        if header == "text/plain" { return .success(.text) }
        if header == "application/json" { return .success(.json) }
        let parts = header.lowercased().split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        let kind: BodyKind
        switch parts.first ?? "" {
        case "text/plain": kind = .text
        case "application/json": kind = .json
        default:
            return .failure(BodyError(message: "unsupported Content-Type '\(header)': send text/plain or application/json"))
        }
        for p in parts.dropFirst() where p.hasPrefix("charset=") {
            let charset = p.dropFirst("charset=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if !["utf-8", "utf8", "us-ascii"].contains(charset) {
                return .failure(BodyError(message: "unsupported charset '\(charset)': send UTF-8"))
            }
        }
        return .success(kind)
    }
}
