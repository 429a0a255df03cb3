import Foundation
import NERCore
import NEREngine
import NERModelStore

/// A model loaded for serving, with what `/v1/models` and the metrics say about it.
final class LoadedModel: Sendable {
    let model: NERModel
    /// The registry's model id when the model came from the registry, else the model file's own id.
    let id: String
    let name: String
    let version: Int?
    let directory: String
    let loadedAt: String

    init(model: NERModel, id: String, name: String, version: Int?, directory: String) {
        self.model = model
        self.id = id
        self.name = name
        self.version = version
        self.directory = directory
        loadedAt = Timestamp.now()
    }

    /// Finds and loads (maps) the model `spec` names; `warmUp` runs it before it serves.
    /// Parallelism comes from the batch workers, one `predict` per worker, so each call stays on
    /// its own thread.
    static func load(_ spec: String, home: Home, device: ComputeDevice) throws -> (LoadedModel, fromRegistry: Bool) {
        let located = try ModelLocator(home: home).locate(spec)
        let model = try NERModel.load(located.directory, device: device)
        model.threads = 1
        let loaded = LoadedModel(model: model, id: located.modelId ?? model.id, name: located.name ?? model.name,
                                 version: located.version, directory: located.directory)
        return (loaded, located.modelId != nil)
    }

    /// Runs a few sentences through the model so the first real request does not pay for page faults
    /// on the mapped weights and first-use allocations.
    func warmUp() {
        let sentences = [
            ["George", "Washington", "was", "president", "of", "the", "United", "States", "."],
            ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
        ]
        for _ in 0..<3 { _ = model.predict(sentences) }
    }

    var json: JSON {
        var o: [String: JSON] = ["id": .string(id), "name": .string(name), "directory": .string(directory),
                                 "labels": .array(model.labels.map { .string($0) }), "loaded_at": .string(loadedAt)]
        o["version"] = version.map { .int(Int64($0)) } ?? .null
        return .object(o)
    }
}

/// The model being served. Readers take a reference for the length of one batch; a reload swaps in a
/// new one atomically, and the old one is released when the last batch using it ends.
final class ModelSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var model: LoadedModel

    init(_ model: LoadedModel) {
        self.model = model
    }

    var current: LoadedModel {
        lock.lock()
        defer { lock.unlock() }
        return model
    }

    /// Puts `new` in place and returns the model it replaced.
    @discardableResult
    func replace(with new: LoadedModel) -> LoadedModel {
        lock.lock()
        defer { lock.unlock() }
        let old = model
        model = new
        return old
    }
}
