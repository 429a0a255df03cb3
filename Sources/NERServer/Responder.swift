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
    /// The served model the request was for, once it named one that is served.
    var model: String?
}

/// The state every request reads: the models, the batcher, the metrics and the readiness flags.
final class ServerState: @unchecked Sendable {
    let options: ServeOptions
    let models: ModelPool
    let batcher: Batcher
    let metrics: Metrics
    let log: Logger
    private let lock = NSLock()
    private var warm = false
    private var draining = false

    init(options: ServeOptions, models: ModelPool, batcher: Batcher, metrics: Metrics, log: Logger) {
        self.options = options
        self.models = models
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
        let (path, modelInPath) = NERResponder.route(of: request.path)
        guard let method = NERResponder.routes[path] else {
            return reply(error(.notFound, "no such path: \(request.path) (try POST /ner)"))
        }
        guard request.method == method else {
            var r = error(.methodNotAllowed, "\(request.path) takes \(method.rawValue), not \(request.method.rawValue)")
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
        case "/ner": ner(request, modelInPath: modelInPath, reply: reply)
        case "/sim": similarity(request, reply: reply)
        case "/healthz": reply(json(.ok, ["status": "ok"]))
        case "/readyz":
            let model = state.models.defaultSlot.current
            reply(state.ready
                ? json(.ok, ["status": "ready", "model": .string(model.id)])
                : json(.serviceUnavailable, ["status": "not ready"]))
        case "/metrics":
            let batcher = state.batcher
            let text = state.metrics.render(models: state.models.statuses { batcher.depth(of: $0) }, queue: batcher.depth,
                                            ready: state.ready)
            reply(Reply(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: ByteBuffer(string: text)))
        default:
            let pool = state.models
            reply(json(.ok, ["models": .array(pool.descriptions), "max_models": .int(Int64(pool.maxLoaded)),
                             "last_reload_error": pool.lastReloadError(of: pool.defaultModel)]))
        }
    }

    /// The route a path takes, and the model it names: `/v1/models/NAME/ner` is `/ner` for the model
    /// NAME (percent-decoded, so a folder's path can be given too).
    static func route(of path: String) -> (path: String, model: String?) {
        let prefix = "/v1/models/", suffix = "/ner"
        guard path.hasPrefix(prefix), path.hasSuffix(suffix), path.count > prefix.count + suffix.count else {
            return (path, nil)
        }
        let segment = path.dropFirst(prefix.count).dropLast(suffix.count)
        guard !segment.contains("/"), let name = String(segment).removingPercentEncoding, !name.isEmpty else {
            return (path, nil)
        }
        return ("/ner", name)
    }

    /// The served model a request names (in its path or its JSON body), or the reply refusing it.
    private func servedModel(inPath: String?, inBody: String?) -> Result<ServedModel, ReplyError> {
        if let inPath, let inBody, inPath != inBody {
            return .failure(ReplyError(error(.badRequest, "the path names model '\(inPath)' and the body '\(inBody)'")))
        }
        let name = inPath ?? inBody
        guard let model = state.models.model(named: name) else {
            let served = state.models.models.map(\.spec)
            let message = "no model '\(name ?? "")' is served here; served: \(served.joined(separator: ", "))"
            return .failure(ReplyError(json(.notFound, ["error": .string(message), "models": .array(served.map { .string($0) })])))
        }
        return .success(model)
    }

    private func ner(_ request: IncomingRequest, modelInPath: String?, reply: @escaping @Sendable (Reply) -> Void) {
        let kind: BodyKind
        switch BodyKind.of(request.headers.first(name: "content-type")) {
        case .success(let k): kind = k
        case .failure(let problem): return reply(error(.unsupportedMediaType, problem.message))
        }
        guard let text = request.body.withUnsafeReadableBytes({ String(validating: $0, as: UTF8.self) }) else {
            return reply(error(.badRequest, "the body is not valid UTF-8"))
        }
        let body: TagRequest
        switch kind {
        case .text:
            body = TagRequest(texts: [text], many: false, model: nil)
        case .json:
            switch NERResponder.tagRequest(inJSON: text) {
            case .success(let found): body = found
            case .failure(let problem): return reply(error(.badRequest, problem.message))
            }
        }
        let served: ServedModel
        switch servedModel(inPath: modelInPath, inBody: body.model) {
        case .success(let m): served = m
        case .failure(let refusal): return reply(refusal.reply)
        }
        let name = served.spec
        let labelled: @Sendable (Reply) -> Void = { r in
            var r = r
            r.model = name
            reply(r)
        }
        let (sentences, words) = Entities.tokenize(body.texts)
        let batcher = state.batcher
        state.models.withSlot(of: served) { loaded in
            switch loaded {
            case .success(let slot):
                NERResponder.tag(body, sentences: sentences, words: words, lane: served.lane, slot: slot, batcher: batcher,
                                 reply: labelled)
            case .failure(let failure):
                labelled(NERResponder.json(.serviceUnavailable,
                                           ["error": .string("model '\(name)' cannot be loaded: \(failure.message)")]))
            }
        }
    }

    /// Queues the request's sentences for `slot`'s model and answers from the worker that tags the last of them.
    private static func tag(_ request: TagRequest, sentences: [[[TextToken]]], words: [[String]], lane: Batcher.Lane,
                            slot: ModelSlot, batcher: Batcher, reply: @escaping @Sendable (Reply) -> Void) {
        do {
            try batcher.submit(words, to: lane, slot: slot) { tagged in
                let found = Entities.locate(in: request.texts, sentences: sentences,
                                            predictions: tagged.predictions.map { ($0.tags, $0.scores) })
                var out: [UInt8] = []
                out.reserveCapacity(64 + 96 * found.reduce(0) { $0 + $1.count })
                if request.many {
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
            var r = json(.serviceUnavailable, ["error": "the server is busy; try again shortly"])
            r.headers.append(("Retry-After", "1"))
            reply(r)
        }
    }

    /// A `/ner` body: `{"text": ...}` (one list back) or `{"texts": [...]}` (a list of lists), and
    /// the `model` it names, if any.
    static func tagRequest(inJSON body: String) -> Result<TagRequest, BodyError> {
        let value: JSON
        do {
            value = try JSON.parse(body)
        } catch {
            return .failure(BodyError(message: "the body is \((error as? ToolError)?.message ?? "not valid JSON")"))
        }
        guard let object = value.objectValue else {
            return .failure(BodyError(message: "expected a JSON object with \"text\" or \"texts\""))
        }
        var model: String?
        if let named = object["model"] {
            guard let s = named.stringValue else { return .failure(BodyError(message: "\"model\" must be a string")) }
            model = s
        }
        switch (object["text"], object["texts"]) {
        case (.some(.string(let s)), nil):
            return .success(TagRequest(texts: [s], many: false, model: model))
        case (nil, .some(.array(let items))):
            var texts: [String] = []
            texts.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                guard let s = item.stringValue else {
                    return .failure(BodyError(message: "\"texts\"[\(i)] is not a string"))
                }
                texts.append(s)
            }
            return .success(TagRequest(texts: texts, many: true, model: model))
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
        NERResponder.json(status, ["error": .string(message)])
    }

    func json(_ status: HTTPResponseStatus, _ value: JSON) -> Reply {
        NERResponder.json(status, value)
    }

    private static func json(_ status: HTTPResponseStatus, _ value: JSON) -> Reply {
        var out: [UInt8] = []
        value.append(to: &out)
        return Reply(status: status, body: ByteBuffer(bytes: out))
    }
}

struct BodyError: Error {
    var message: String
}

/// A refusal, as the reply that says so.
struct ReplyError: Error {
    var reply: Reply
    init(_ reply: Reply) { self.reply = reply }
}

/// What a `/ner` request asks for.
struct TagRequest {
    var texts: [String]
    /// `texts` was given: the answer is a list of lists.
    var many: Bool
    /// The served model it names; nil for the default.
    var model: String?
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
