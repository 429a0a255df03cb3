import Dispatch
import Foundation
import Hummingbird
import HTTPTypes
import Logging
import NERCore
import NEREngine
import NERText
import NIOCore

/// What one request carries beyond the request itself: who sent it, for the access log.
struct ServeContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remote: String

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        if let address = source.channel.remoteAddress, let ip = address.ipAddress {
            remote = address.port.map { "\(ip):\($0)" } ?? ip
        } else {
            remote = "-"
        }
    }
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
}

/// Answers every request: routing, authentication, limits, and the `/ner` work itself.
struct NERResponder: HTTPResponder {
    typealias Context = ServeContext

    let state: ServerState

    private static let routes: [String: HTTPRequest.Method] = [
        "/ner": .post, "/healthz": .get, "/readyz": .get, "/metrics": .get, "/v1/models": .get,
    ]
    /// Probes from an orchestrator carry no token.
    private static let open: Set<String> = ["/healthz", "/readyz"]

    func respond(to request: Request, context: Context) async throws -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        let path = request.uri.path
        let outcome = await answer(request, path: path)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        state.metrics.observeRequest(path: path, status: Int(outcome.response.status.code), seconds: seconds)
        state.log.info("\(request.method) \(path) \(outcome.response.status.code)", metadata: [
            "remote": .string(context.remote),
            "ms": .string(String(format: "%.2f", seconds * 1000)),
            "bytes_in": .stringConvertible(outcome.bytesIn),
            "bytes_out": .stringConvertible(outcome.response.body.contentLength ?? 0),
        ])
        return outcome.response
    }

    private struct Outcome {
        var response: Response
        var bytesIn = 0
    }

    private func answer(_ request: Request, path: String) async -> Outcome {
        guard let method = NERResponder.routes[path] else {
            return Outcome(response: error(.notFound, "no such path: \(path) (try POST /ner)"))
        }
        guard request.method == method else {
            var r = error(.methodNotAllowed, "\(path) takes \(method), not \(request.method)")
            r.headers[.allow] = method.rawValue
            return Outcome(response: r)
        }
        if let token = state.options.token, !NERResponder.open.contains(path),
           !authorized(request.headers[.authorization], token: token) {
            var r = error(.unauthorized, "missing or wrong bearer token")
            r.headers[.wwwAuthenticate] = "Bearer"
            return Outcome(response: r)
        }
        switch path {
        case "/ner": return await ner(request)
        case "/healthz": return Outcome(response: json(.ok, ["status": "ok"]))
        case "/readyz":
            let model = state.slot.current
            return Outcome(response: state.ready
                ? json(.ok, ["status": "ready", "model": .string(model.id)])
                : json(.serviceUnavailable, ["status": "not ready"]))
        case "/metrics":
            let text = state.metrics.render(model: state.slot.current, queue: state.batcher.depth, ready: state.ready)
            return Outcome(response: Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                                              body: .init(byteBuffer: ByteBuffer(string: text))))
        default:
            return Outcome(response: json(.ok, ["models": [state.slot.current.json]]))
        }
    }

    private func ner(_ request: Request) async -> Outcome {
        let limit = state.options.maxBody
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            return Outcome(response: tooLarge(limit))
        }
        var body = ByteBuffer()
        do {
            for try await chunk in request.body {
                if body.readableBytes + chunk.readableBytes > limit { return Outcome(response: tooLarge(limit)) }
                body.writeImmutableBuffer(chunk)
            }
        } catch {
            return Outcome(response: self.error(.badRequest, "could not read the request body: \(error)"))
        }
        var outcome = Outcome(response: Response(status: .ok), bytesIn: body.readableBytes)

        let kind: BodyKind
        switch BodyKind.of(request.headers[.contentType]) {
        case .success(let k): kind = k
        case .failure(let problem):
            outcome.response = error(.unsupportedMediaType, problem.message)
            return outcome
        }
        guard let text = body.withUnsafeReadableBytes({ String(validating: $0, as: UTF8.self) }) else {
            outcome.response = error(.badRequest, "the body is not valid UTF-8")
            return outcome
        }
        let texts: [String]
        let many: Bool
        switch kind {
        case .text:
            (texts, many) = ([text], false)
        case .json:
            switch NERResponder.texts(inJSON: text) {
            case .success(let found): (texts, many) = found
            case .failure(let problem):
                outcome.response = error(.badRequest, problem.message)
                return outcome
            }
        }

        let (sentences, words) = Entities.tokenize(texts)
        let tagged: (predictions: [Prediction], modelId: String)
        do {
            tagged = try await state.batcher.predict(words)
        } catch {
            var r = self.error(.serviceUnavailable, "the server is busy; try again shortly")
            r.headers[.retryAfter] = "1"
            outcome.response = r
            return outcome
        }
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
        var headers: HTTPFields = [.contentType: "application/json"]
        headers[NERResponder.modelIdHeader] = tagged.modelId
        outcome.response = Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: out)))
        return outcome
    }

    /// Which model answered a `/ner` request; the body stays the plain list the cloud service returned.
    static let modelIdHeader = HTTPField.Name("X-Model-Id")!

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

    private func tooLarge(_ limit: Int) -> Response {
        var r = error(.contentTooLarge, "the body is larger than the limit of \(limit) bytes (--max-body)")
        // The rest of the body is not worth reading; ConnectionGuard closes the connection after this.
        r.headers[.connection] = "close"
        return r
    }

    private func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, ["error": .string(message)])
    }

    private func json(_ status: HTTPResponse.Status, _ value: JSON) -> Response {
        var out: [UInt8] = []
        value.append(to: &out)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: out)))
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
