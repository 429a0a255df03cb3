import Dispatch
import Foundation
import NEREngine

/// Gathers the sentences of concurrent requests into batches, so one forward pass serves many
/// connections. Each worker is a plain thread (the model's `predict` blocks for the whole pass, which
/// must not happen on an event loop). A worker takes the oldest waiting piece, waits at most
/// `maxDelay` from that piece's arrival for more to fill the batch, takes its share of what is queued
/// (idle workers split it), and runs the batch on whatever model the slot holds at that moment, so a
/// reload never stalls it.
final class Batcher: @unchecked Sendable {
    struct Limits: Sendable {
        /// Sentences per forward pass.
        var maxBatchSize: Int
        /// Seconds a batch may wait for more sentences after its first one arrived.
        var maxDelay: Double
        /// Requests admitted at once (waiting or being tagged); more are refused.
        var maxQueue: Int
        var workers: Int
    }

    /// The queue is full: the caller should answer 503 with `Retry-After`.
    struct Full: Error {}

    let limits: Limits
    private let slot: ModelSlot
    private let metrics: Metrics
    private let condition = NSCondition()
    private var queue: [Piece] = []
    /// Whole requests run as they are (`run`), ahead of the batches.
    private var tasks: [@Sendable () -> Void] = []
    private var head = 0
    private var queuedSentences = 0
    private var admitted = 0
    private var stopping = false
    /// Set when the server drains: what is queued runs at once instead of waiting out the batch delay.
    private var flushing = false
    private var threads: [Thread] = []
    private var running = 0
    /// Workers not running a batch (waiting for one to fill, or for work).
    private var idle = 0
    private let stopped = DispatchSemaphore(value: 0)

    init(slot: ModelSlot, limits: Limits, metrics: Metrics) {
        self.slot = slot
        self.limits = limits
        self.metrics = metrics
    }

    func start() {
        running = limits.workers
        for i in 0..<limits.workers {
            let t = Thread { [self] in work() }
            t.name = "ner-batch-\(i)"
            t.start()
            threads.append(t)
        }
    }

    /// From now on batches run as soon as a worker is free: a drain should not wait out the delay.
    func flush() {
        condition.lock()
        flushing = true
        condition.broadcast()
        condition.unlock()
    }

    /// Lets the workers finish what is queued, then stops them; returns once they are gone.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        for _ in 0..<running { stopped.wait() }
        running = 0
    }

    /// Requests admitted and not yet answered.
    var depth: Int {
        condition.lock()
        defer { condition.unlock() }
        return admitted
    }

    /// What a request gets back: one prediction per sentence, in order, and the id of the model
    /// that tagged the last piece.
    typealias Tagged = (predictions: [Prediction], modelId: String)

    /// Queues `sentences` (split into pieces of at most `maxBatchSize` that may go to different
    /// batches) and calls `done` on a worker thread once all are tagged; throws `Full`, without
    /// calling `done`, when the queue holds `maxQueue` requests already.
    func submit(_ sentences: [[String]], done: @escaping @Sendable (Tagged) -> Void) throws {
        let now = DispatchTime.now().uptimeNanoseconds
        let admittedNow = condition.withLock {
            if admitted >= limits.maxQueue || stopping { return false }
            admitted += 1
            if sentences.isEmpty { return true }
            let job = Job(count: sentences.count) { [self] tagged in
                condition.withLock { admitted -= 1 }
                done(tagged)
            }
            var offset = 0
            while offset < sentences.count {
                let end = min(offset + limits.maxBatchSize, sentences.count)
                queue.append(Piece(job: job, offset: offset, sentences: Array(sentences[offset..<end]), arrived: now))
                queuedSentences += end - offset
                offset = end
            }
            condition.signal()
            return true
        }
        guard admittedNow else { throw Full() }
        if sentences.isEmpty {
            condition.withLock { admitted -= 1 }
            done(([], slot.current.id))
        }
    }

    /// Admits `work` as one request, as `submit` does (throwing `Full` when the queue is full), and
    /// runs it on a worker thread ahead of the queued batches.
    func run(_ work: @escaping @Sendable () -> Void) throws {
        let admittedNow = condition.withLock {
            if admitted >= limits.maxQueue || stopping { return false }
            admitted += 1
            tasks.append(work)
            // Every worker: the one woken could be waiting out a batch delay, and go back to it.
            condition.broadcast()
            return true
        }
        guard admittedNow else { throw Full() }
    }

    private func work() {
        // Below the event loops in the scheduler's eyes (on Linux, `who` 0 is the calling thread):
        // when a core is contended, answering and reading requests come first.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 5)
        while let batch = nextBatch() {
            if let task = nextTask() {
                task()
                condition.withLock { admitted -= 1 }
            }
            if batch.isEmpty { continue }
            let model = slot.current
            let words = batch.count == 1 ? batch[0].sentences : batch.flatMap(\.sentences)
            let started = DispatchTime.now().uptimeNanoseconds
            let predictions = model.model.predict(words)
            metrics.observeBatch(sentences: words.count,
                                 seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
            var next = 0
            for piece in batch {
                let n = piece.sentences.count
                piece.job.deliver(predictions[next..<next + n], at: piece.offset, modelId: model.id)
                next += n
            }
        }
        stopped.signal()
    }

    private func nextTask() -> (@Sendable () -> Void)? {
        condition.withLock { tasks.isEmpty ? nil : tasks.removeFirst() }
    }

    /// Blocks until a task is queued (then returns no pieces, for the caller to take it) or a batch
    /// is due (full, or its oldest piece has waited `maxDelay`) and takes it off the queue; nil once
    /// stopping and both queues are empty.
    private func nextBatch() -> [Piece]? {
        condition.lock()
        idle += 1
        defer {
            idle -= 1
            condition.unlock()
        }
        while head == queue.count && tasks.isEmpty {
            if stopping { return nil }
            condition.wait()
        }
        if !tasks.isEmpty {
            if tasks.count > 1 || head < queue.count { condition.signal() }
            return []
        }
        let deadline = queue[head].arrived + UInt64(limits.maxDelay * 1e9)
        while queuedSentences < limits.maxBatchSize && !stopping && !flushing && head < queue.count {
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= deadline { break }
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(deadline - now) / 1e9))
        }
        // Another worker may have taken everything while this one waited.
        if head == queue.count { return [] }
        // Idle workers split what is queued, so one worker does not take all of it while the others'
        // cores sit idle; a busy server still fills whole batches, as its workers are rarely idle.
        let share = min(limits.maxBatchSize, (queuedSentences + idle - 1) / idle)
        var batch: [Piece] = []
        var size = 0
        while head < queue.count, batch.isEmpty || size + queue[head].sentences.count <= share {
            size += queue[head].sentences.count
            batch.append(queue[head])
            head += 1
        }
        queuedSentences -= size
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024 {
            queue.removeFirst(head)
            head = 0
        }
        // Wake another worker for what is left.
        if head < queue.count { condition.signal() }
        return batch
    }
}

/// A slice of one request's sentences.
private struct Piece {
    let job: Job
    let offset: Int
    let sentences: [[String]]
    let arrived: UInt64
}

/// One request's sentences on their way through the batches; the last piece to finish answers it.
private final class Job: @unchecked Sendable {
    private let lock = NSLock()
    private var predictions: [Prediction]
    private var remaining: Int
    private var modelId = ""
    private let done: (Batcher.Tagged) -> Void

    init(count: Int, done: @escaping (Batcher.Tagged) -> Void) {
        predictions = [Prediction](repeating: Prediction(tags: [], scores: []), count: count)
        remaining = count
        self.done = done
    }

    func deliver(_ part: ArraySlice<Prediction>, at offset: Int, modelId id: String) {
        lock.lock()
        predictions.replaceSubrange(offset..<offset + part.count, with: part)
        remaining -= part.count
        modelId = id
        let finished = remaining == 0
        lock.unlock()
        if finished { done((predictions, modelId)) }
    }
}
