import Dispatch
import Foundation
import Logging
import NERCore
import NERRegistry

/// Swaps in a new model while requests keep flowing: on SIGHUP (every loaded model), and whenever
/// polling finds that a loaded model named by a registry entry now points at another model. The new
/// model is loaded and warmed up beside the old one, then put in the slot in one step; batches
/// already running finish on the old one, which is released after the last of them. A model not
/// loaded needs nothing: its first request loads what its name points at then.
final class Reloader: @unchecked Sendable {
    private let state: ServerState
    private let queue = DispatchQueue(label: "ner-serve.reload")
    private var sources: [DispatchSourceProtocol] = []
    private var registry: Registry?
    /// The last poll problem reported per served model, so a registry that stays broken is logged
    /// once, not every poll.
    private var lastProblem: [String: String] = [:]
    /// Per served model, the registry model whose load failed last: polling does not retry it (SIGHUP does).
    private var failedModelId: [String: String] = [:]

    init(state: ServerState) {
        self.state = state
    }

    func start() {
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        hangup.setEventHandler { [self] in
            for (model, slot) in state.models.loaded { reload(model, slot, because: "SIGHUP", evenIfSame: true) }
        }
        hangup.resume()
        sources.append(hangup)
        let interval = state.options.pollInterval
        if state.models.models.contains(where: \.fromRegistry) && interval > 0 {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(50))
            timer.setEventHandler { [self] in
                for (model, slot) in state.models.loaded where model.fromRegistry { poll(model, slot) }
            }
            timer.resume()
            sources.append(timer)
        }
    }

    func stop() {
        queue.sync {
            for s in sources { s.cancel() }
            sources = []
        }
    }

    private func poll(_ model: ServedModel, _ slot: ModelSlot) {
        let spec = model.spec
        do {
            if registry == nil { registry = try Registry(path: state.options.home.registry, readOnly: true) }
            guard let row = try registry!.resolve(spec) else {
                report(model, "\(spec) no longer names a model in \(state.options.home.registry); still serving \(slot.current.id)")
                return
            }
            lastProblem[spec] = nil
            if row.modelId != slot.current.id && row.modelId != failedModelId[spec] {
                reload(model, slot, because: "\(spec) now names \(row.modelId)", evenIfSame: false, target: row.modelId)
            }
        } catch {
            report(model, "cannot read the registry: \((error as? ToolError)?.message ?? "\(error)")")
        }
    }

    /// Loads what `model`'s spec names now into `slot`. A reload that fails leaves the old model
    /// serving; its cause is logged, counted, and shown in `/v1/models` until a reload succeeds.
    private func reload(_ model: ServedModel, _ slot: ModelSlot, because reason: String, evenIfSame: Bool,
                        target: String? = nil) {
        let current = slot.current
        do {
            let (new, _) = try LoadedModel.load(model.spec, home: state.options.home, device: current.model.device)
            if new.id == current.id && !evenIfSame { return }
            new.warmUp()
            let old = slot.replace(with: new)
            state.metrics.observeReload(succeeded: true)
            state.models.noteReload(of: model, error: nil)
            failedModelId[model.spec] = nil
            lastProblem[model.spec] = nil
            state.log.info("switched from model \(old.id) to \(new.id) (\(reason))")
        } catch {
            let cause = (error as? ToolError)?.message ?? "\(error)"
            state.metrics.observeReload(succeeded: false)
            state.models.noteReload(of: model, error: cause)
            if let target { failedModelId[model.spec] = target }
            report(model, "reload (\(reason)) failed, still serving \(current.id): \(cause)")
        }
    }

    private func report(_ model: ServedModel, _ problem: String) {
        if problem != lastProblem[model.spec] { state.log.warning("\(problem)") }
        lastProblem[model.spec] = problem
    }
}
