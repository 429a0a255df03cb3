import Dispatch
import Foundation
import Logging
import NERCore
import NERRegistry

/// Swaps in a new model while requests keep flowing: on SIGHUP, and (when `--model` named a registry
/// entry) whenever polling finds that the name or alias now points at another model. The new model is
/// loaded and warmed up beside the old one, then put in the slot in one step; batches already running
/// finish on the old one, which is released after the last of them.
final class Reloader: @unchecked Sendable {
    private let state: ServerState
    private let fromRegistry: Bool
    private let queue = DispatchQueue(label: "ner-serve.reload")
    private var sources: [DispatchSourceProtocol] = []
    private var registry: Registry?
    /// The last poll problem reported, so a registry that stays broken is logged once, not every poll.
    private var lastProblem: String?
    /// The registry model whose load failed last: polling does not retry it (SIGHUP does).
    private var failedModelId: String?

    init(state: ServerState, fromRegistry: Bool) {
        self.state = state
        self.fromRegistry = fromRegistry
    }

    func start() {
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        hangup.setEventHandler { [self] in reload(because: "SIGHUP", evenIfSame: true) }
        hangup.resume()
        sources.append(hangup)
        let interval = state.options.pollInterval
        if fromRegistry && interval > 0 {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(50))
            timer.setEventHandler { [self] in poll() }
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

    private func poll() {
        let spec = state.options.model
        do {
            if registry == nil { registry = try Registry(path: state.options.home.registry, readOnly: true) }
            guard let row = try registry!.resolve(spec) else {
                report("\(spec) no longer names a model in \(state.options.home.registry); still serving \(state.slot.current.id)")
                return
            }
            lastProblem = nil
            if row.modelId != state.slot.current.id && row.modelId != failedModelId {
                reload(because: "\(spec) now names \(row.modelId)", evenIfSame: false, target: row.modelId)
            }
        } catch {
            report("cannot read the registry: \((error as? ToolError)?.message ?? "\(error)")")
        }
    }

    /// Loads what `--model` names now. A reload that fails leaves the old model serving; its cause
    /// is logged, counted, and shown in `/v1/models` until a reload succeeds.
    private func reload(because reason: String, evenIfSame: Bool, target: String? = nil) {
        let current = state.slot.current
        do {
            let (new, _) = try LoadedModel.load(state.options.model, home: state.options.home, device: current.model.device)
            if new.id == current.id && !evenIfSame { return }
            new.warmUp()
            let old = state.slot.replace(with: new)
            state.metrics.observeReload(succeeded: true)
            state.noteReload(error: nil)
            failedModelId = nil
            lastProblem = nil
            state.log.info("switched from model \(old.id) to \(new.id) (\(reason))")
        } catch {
            let cause = (error as? ToolError)?.message ?? "\(error)"
            state.metrics.observeReload(succeeded: false)
            state.noteReload(error: cause)
            if let target { failedModelId = target }
            report("reload (\(reason)) failed, still serving \(current.id): \(cause)")
        }
    }

    private func report(_ problem: String) {
        if problem != lastProblem { state.log.warning("\(problem)") }
        lastProblem = problem
    }
}
