import Foundation
import NERCore
import NEREngine
import NIOCore

/// A `POST /sim` body: `{"target": "...", "texts": ["...", ...]}` (docs/tools.md).
struct SimilarityRequest: Equatable {
    /// Texts one request may compare with its target.
    static let maxTexts = 1024

    var target: String
    var texts: [String]

    static func parse(_ body: String) -> Result<SimilarityRequest, BodyError> {
        func fail(_ message: String) -> Result<SimilarityRequest, BodyError> { .failure(BodyError(message: message)) }
        let value: JSON
        do {
            value = try JSON.parse(body)
        } catch {
            return fail("the body is \((error as? ToolError)?.message ?? "not valid JSON")")
        }
        guard let object = value.objectValue else { return fail(#"expected a JSON object with "target" and "texts""#) }
        guard let field = object["target"] else { return fail(#"missing "target" (a string)"#) }
        guard let target = field.stringValue else { return fail(#""target" must be a string"#) }
        guard let list = object["texts"] else { return fail(#"missing "texts" (a list of strings)"#) }
        guard let items = list.arrayValue else { return fail(#""texts" must be a list of strings"#) }
        if items.isEmpty { return fail(#""texts" is empty: give at least one text"#) }
        if items.count > maxTexts { return fail(#""texts" holds \#(items.count) texts; at most \#(maxTexts) are allowed"#) }
        var texts: [String] = []
        texts.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard let s = item.stringValue else { return fail(#""texts"[\#(i)] is not a string"#) }
            texts.append(s)
        }
        return .success(SimilarityRequest(target: target, texts: texts))
    }
}

extension NERResponder {
    /// The model `/sim` compares with: the default (first) model.
    var similarityModel: LoadedModel { state.models.defaultSlot.current }

    /// Answers `{"target", "texts", "sims"}`, the cosine of each text's vector with the target's, in
    /// the texts' order. The vectors are computed on a batch worker, admitted like a `/ner` request.
    func similarity(_ request: IncomingRequest, reply: @escaping @Sendable (Reply) -> Void) {
        let type = request.headers.first(name: "content-type")
        switch BodyKind.of(type) {
        case .success(.json): break
        case .failure(let problem) where type?.lowercased().hasPrefix("application/json") == true:
            return reply(error(.unsupportedMediaType, problem.message))
        default:
            let given = type.map { "'\($0)'" } ?? "a body without a Content-Type"
            return reply(error(.unsupportedMediaType, "/sim takes application/json, not \(given)"))
        }
        guard let body = request.body.withUnsafeReadableBytes({ String(validating: $0, as: UTF8.self) }) else {
            return reply(error(.badRequest, "the body is not valid UTF-8"))
        }
        let parsed: SimilarityRequest
        switch SimilarityRequest.parse(body) {
        case .success(let r): parsed = r
        case .failure(let problem): return reply(error(.badRequest, problem.message))
        }
        do {
            try state.batcher.run(in: state.models.defaultModel.lane) { [self] in
                let loaded = similarityModel
                let vectors = loaded.model.sentenceVectors([parsed.target] + parsed.texts)
                let sims = vectors.dropFirst().map { NERModel.cosine(vectors[0], $0) }
                let answer: JSON = [
                    "target": .string(parsed.target),
                    "texts": .array(parsed.texts.map { .string($0) }),
                    // Six decimals: float32 arithmetic carries no more.
                    "sims": .array(sims.map { .double((Double($0) * 1e6).rounded() / 1e6) }),
                ]
                var r = json(.ok, answer)
                r.headers.append(("X-Model-Id", loaded.id))
                reply(r)
            }
        } catch {
            var r = self.error(.serviceUnavailable, "the server is busy; try again shortly")
            r.headers.append(("Retry-After", "1"))
            reply(r)
        }
    }
}
