import Foundation
import NERCore
import NEREngine
import NERModelStore
import NERText

/// The models "Try it" has opened, most recently used last; at most `capacity` stay loaded. A
/// model is memory-mapped, so opening one takes milliseconds and an evicted one costs little.
final class ModelCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(key: String, model: NERModel)] = []
    private let capacity: Int
    private let locator: ModelLocator

    init(home: Home, capacity: Int) {
        self.capacity = max(1, capacity)
        locator = ModelLocator(home: home)
    }

    /// The model `spec` names (NAME, NAME@ALIAS, NAME:VERSION or a model id), loaded or reused.
    func model(_ spec: String) throws -> (model: NERModel, located: ModelLocator.Located) {
        // Only registry references: a folder or tarball path typed into a web form must not open files.
        if spec.hasPrefix("/") || spec.hasPrefix(".") || spec.contains("/") {
            throw ToolError.usage("a model is NAME, NAME@ALIAS, NAME:VERSION or a model id, not a path")
        }
        let located = try locator.locate(spec)
        let key = located.directory
        if let hit = lock.withLock({ () -> NERModel? in
            guard let i = entries.firstIndex(where: { $0.key == key }) else { return nil }
            let e = entries.remove(at: i)
            entries.append(e)
            return e.model
        }) { return (hit, located) }
        let model = try NERModel.load(key)
        model.threads = 1
        lock.withLock {
            entries.append((key, model))
            if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
        }
        return (model, located)
    }

    /// `POST /api/ner`: the entities of `text` exactly as `POST /ner` of ner-serve gives them.
    func tag(_ text: String, model spec: String) throws -> (json: [UInt8], modelId: String, labels: [String]) {
        let (model, located) = try model(spec)
        let found = Entities.find(in: [text]) { sentences in model.predict(sentences).map { ($0.tags, $0.scores) } }
        var out: [UInt8] = []
        Entity.appendJSON(found[0], to: &out)
        return (out, located.modelId ?? model.id, model.labels)
    }
}
