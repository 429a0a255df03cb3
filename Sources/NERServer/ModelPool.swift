import Dispatch
import Foundation
import Logging
import NERCore
import NEREngine
import NERModelStore

/// One model named on the command line: the name requests use for it, its lane in the batcher, and
/// the slot holding it while it is loaded.
final class ServedModel: @unchecked Sendable {
    /// The model as given on the command line (`conll`, `conll@staging`, a folder).
    let spec: String
    /// The registry's name for it, when it comes from the registry.
    let registryName: String?
    /// Registry entries are polled for a moved alias; folders and tarballs are not.
    let fromRegistry: Bool
    let lane: Batcher.Lane
    // The pool's lock guards the rest.
    fileprivate var slot: ModelSlot?
    fileprivate var lastUsed: UInt64 = 0
    /// The requests waiting for a load in progress; nil when none is.
    fileprivate var waiters: [@Sendable (Result<ModelSlot, ModelPool.LoadFailure>) -> Void]?
    fileprivate var reloadError: JSON = .null

    fileprivate init(spec: String, registryName: String?, fromRegistry: Bool, lane: Batcher.Lane) {
        self.spec = spec
        self.registryName = registryName
        self.fromRegistry = fromRegistry
        self.lane = lane
    }
}

/// The models one server serves, the first of them the default. The default stays loaded; the
/// others are loaded on their first request, off the event loops, and at most `maxLoaded` are
/// loaded at once, the least recently used evicted first. An evicted model's memory is released
/// once the requests already admitted for it are answered (their pieces hold its slot).
final class ModelPool: @unchecked Sendable {
    struct LoadFailure: Error {
        var message: String
    }

    /// In command-line order; the first is the default.
    let models: [ServedModel]
    let maxLoaded: Int
    /// The default model's slot, the same for the server's life (a reload swaps what it holds), so
    /// requests for the default take no lock here.
    let defaultSlot: ModelSlot
    private let home: Home
    private let device: ComputeDevice
    private let metrics: Metrics
    private let log: Logger
    private let lock = NSLock()
    private var clock: UInt64 = 0

    /// Loads the first of `specs` (66 when it is missing, 65 when it is unreadable) and looks the
    /// others up (66 when one is missing), so a typo fails before anything listens.
    init(specs: [String], maxLoaded: Int, home: Home, device: ComputeDevice, batcher: Batcher, metrics: Metrics,
         log: Logger) throws {
        let (first, firstFromRegistry) = try LoadedModel.load(specs[0], home: home, device: device)
        let locator = ModelLocator(home: home)
        var models = [ServedModel(spec: specs[0], registryName: firstFromRegistry ? first.name : nil,
                                  fromRegistry: firstFromRegistry, lane: batcher.addLane())]
        let firstSlot = ModelSlot(first)
        models[0].slot = firstSlot
        for spec in specs.dropFirst() {
            let located = try locator.locate(spec)
            models.append(ServedModel(spec: spec, registryName: located.name, fromRegistry: located.modelId != nil,
                                      lane: batcher.addLane()))
        }
        self.models = models
        defaultSlot = firstSlot
        self.maxLoaded = maxLoaded
        self.home = home
        self.device = device
        self.metrics = metrics
        self.log = log
    }

    var defaultModel: ServedModel { models[0] }

    /// The model a request names: the default when it names none, else the one given on the command
    /// line as `name`, else the one whose registry name is `name` when exactly one is; nil otherwise.
    func model(named name: String?) -> ServedModel? {
        guard let name else { return defaultModel }
        if let exact = models.first(where: { $0.spec == name }) { return exact }
        let byName = models.filter { $0.registryName == name }
        return byName.count == 1 ? byName[0] : nil
    }

    /// Calls `body` with the model's slot: at once when it is loaded, else once a load (one for all
    /// the requests waiting for it) ends, from the loading thread.
    func withSlot(of model: ServedModel, _ body: @escaping @Sendable (Result<ModelSlot, LoadFailure>) -> Void) {
        if model === defaultModel { return body(.success(defaultSlot)) }
        lock.lock()
        if let slot = model.slot {
            clock += 1
            model.lastUsed = clock
            lock.unlock()
            return body(.success(slot))
        }
        let first = model.waiters == nil
        model.waiters = (model.waiters ?? []) + [body]
        lock.unlock()
        if first { DispatchQueue.global().async { self.load(model) } }
    }

    private func load(_ model: ServedModel) {
        let started = DispatchTime.now().uptimeNanoseconds
        let result: Result<ModelSlot, LoadFailure>
        do {
            result = .success(ModelSlot(try LoadedModel.load(model.spec, home: home, device: device).0))
        } catch {
            result = .failure(LoadFailure(message: (error as? ToolError)?.message ?? "\(error)"))
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        var evicted: [ServedModel] = []
        let waiters: [@Sendable (Result<ModelSlot, LoadFailure>) -> Void] = lock.withLock {
            if case .success(let slot) = result {
                clock += 1
                model.slot = slot
                model.lastUsed = clock
                evicted = evictBeyondLimit(keeping: model)
            }
            defer { model.waiters = nil }
            return model.waiters ?? []
        }
        metrics.observeLoad(model: model.spec, succeeded: (try? result.get()) != nil, seconds: seconds)
        for victim in evicted {
            metrics.observeEviction(model: victim.spec)
            log.info("unloaded model \(victim.spec), the least recently used (--max-models \(maxLoaded))")
        }
        switch result {
        case .success(let slot):
            log.info("loaded model \(model.spec) (\(slot.current.id)) in \(String(format: "%.0f", seconds * 1000)) ms")
        case .failure(let failure):
            log.warning("cannot load model \(model.spec): \(failure.message)")
        }
        for w in waiters { w(result) }
    }

    /// Unloads the least recently used models, never the default nor `kept`, until at most
    /// `maxLoaded` are loaded. Called with the lock held.
    private func evictBeyondLimit(keeping kept: ServedModel) -> [ServedModel] {
        var evicted: [ServedModel] = []
        while models.filter({ $0.slot != nil }).count > maxLoaded {
            let candidates = models.dropFirst().filter { $0.slot != nil && $0 !== kept }
            guard let victim = candidates.min(by: { $0.lastUsed < $1.lastUsed }) else { break }
            victim.slot = nil
            evicted.append(victim)
        }
        return evicted
    }

    /// The models loaded now, with their slots.
    var loaded: [(model: ServedModel, slot: ModelSlot)] {
        lock.withLock { models.compactMap { m in m.slot.map { (m, $0) } } }
    }

    /// Records the outcome of `model`'s last reload: the cause of a failure, nil for a success.
    func noteReload(of model: ServedModel, error: String?) {
        let value: JSON = error.map { ["at": .string(Timestamp.now()), "error": .string($0)] } ?? .null
        lock.withLock { model.reloadError = value }
    }

    /// Why `model`'s last reload failed (`{"at", "error"}`), null when there was none since the last success.
    func lastReloadError(of model: ServedModel) -> JSON {
        lock.withLock { model.reloadError }
    }

    /// What `/v1/models` lists for each model: a loaded one as `LoadedModel.json` describes it, every
    /// one with the name it is served as, whether it is loaded and its last reload error.
    var descriptions: [JSON] {
        lock.withLock {
            models.enumerated().map { i, m in
                var o = m.slot?.current.json ?? ["name": m.registryName.map { .string($0) } ?? .null, "version": .null]
                o["served_as"] = .string(m.spec)
                o["default"] = .bool(i == 0)
                o["loaded"] = .bool(m.slot != nil)
                o["last_reload_error"] = m.reloadError
                return o
            }
        }
    }

    /// What `/metrics` says about each model.
    func statuses(queueDepth: (Batcher.Lane) -> Int) -> [Metrics.ModelStatus] {
        let snapshot = lock.withLock { models.map { ($0.spec, $0.slot?.current, $0.lane) } }
        return snapshot.map { Metrics.ModelStatus(name: $0.0, loaded: $0.1, queue: queueDepth($0.2)) }
    }
}
