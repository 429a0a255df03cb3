import Dispatch
import Foundation
import NEREngine

/// Gathers the sentences of concurrent requests into batches, so one forward pass serves many
/// connections. Each served model has its own lane (queue and admission limit), and a batch holds
/// one lane's sentences only. Each worker is a plain thread (the model's `predict` blocks for the
/// whole pass, which must not happen on an event loop). A worker takes the lanes in turn, so one
/// model's burst delays another model's request by at most one batch rather than by its whole
/// backlog; in its lane it takes the oldest waiting piece, waits at most `maxDelay` from that
/// piece's arrival for more to fill the batch, takes its share of what is queued (idle workers
/// split it), and runs the batch on whatever model the piece's slot holds at that moment, so a
/// reload never stalls it.
final class Batcher: @unchecked Sendable {
    struct Limits: Sendable {
        /// Sentences per forward pass.
        var maxBatchSize: Int
        /// Seconds a batch may wait for more sentences after its first one arrived.
        var maxDelay: Double
        /// Requests admitted at once per lane (waiting or being tagged); more are refused.
        var maxQueue: Int
        var workers: Int
    }

    /// The queue is full: the caller should answer 503 with `Retry-After`.
    struct Full: Error {}

    /// One model's queue. Guarded by the batcher's lock.
    final class Lane: @unchecked Sendable {
        fileprivate var queue: [Piece] = []
        fileprivate var head = 0
        fileprivate var queuedSentences = 0
        fileprivate var admitted = 0

        fileprivate var hasWork: Bool { head < queue.count }
    }

    let limits: Limits
    private let metrics: Metrics
    private let condition = NSCondition()
    private var lanes: [Lane] = []
    /// The lane the next batch is looked for in first.
    private var turn = 0
    /// Whole requests run as they are (`run`), ahead of the batches, with the lane they count against.
    private var tasks: [(lane: Lane, work: @Sendable () -> Void)] = []
    private var stopping = false
    /// Set when the server drains: what is queued runs at once instead of waiting out the batch delay.
    private var flushing = false
    private var threads: [Thread] = []
    private var running = 0
    /// Workers not running a batch (waiting for one to fill, or for work).
    private var idle = 0
    private let stopped = DispatchSemaphore(value: 0)

    init(limits: Limits, metrics: Metrics) {
        self.limits = limits
        self.metrics = metrics
    }

    /// A new lane, for one served model.
    func addLane() -> Lane {
        let lane = Lane()
        condition.withLock { lanes.append(lane) }
        return lane
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

    /// Requests admitted and not yet answered, in every lane.
    var depth: Int {
        condition.withLock { lanes.reduce(0) { $0 + $1.admitted } }
    }

    /// Requests admitted to `lane` and not yet answered.
    func depth(of lane: Lane) -> Int {
        condition.withLock { lane.admitted }
    }

    /// What a request gets back: one prediction per sentence, in order, and the id of the model
    /// that tagged the last piece.
    typealias Tagged = (predictions: [Prediction], modelId: String)

    /// Queues `sentences` in `lane` (split into pieces of at most `maxBatchSize` that may go to
    /// different batches), to be tagged by the model `slot` holds, and calls `done` on a worker
    /// thread once all are tagged; throws `Full`, without calling `done`, when the lane holds
    /// `maxQueue` requests already.
    func submit(_ sentences: [[String]], to lane: Lane, slot: ModelSlot, done: @escaping @Sendable (Tagged) -> Void) throws {
        let now = DispatchTime.now().uptimeNanoseconds
        let admittedNow = condition.withLock {
            if lane.admitted >= limits.maxQueue || stopping { return false }
            lane.admitted += 1
            if sentences.isEmpty { return true }
            let job = Job(count: sentences.count) { [self] tagged in
                condition.withLock { lane.admitted -= 1 }
                done(tagged)
            }
            var offset = 0
            while offset < sentences.count {
                let end = min(offset + limits.maxBatchSize, sentences.count)
                lane.queue.append(Piece(job: job, slot: slot, offset: offset, sentences: Array(sentences[offset..<end]),
                                        arrived: now))
                lane.queuedSentences += end - offset
                offset = end
            }
            condition.signal()
            return true
        }
        guard admittedNow else { throw Full() }
        if sentences.isEmpty {
            condition.withLock { lane.admitted -= 1 }
            done(([], slot.current.id))
        }
    }

    /// Admits `work` as one request of `lane`, as `submit` does (throwing `Full` when the lane is
    /// full), and runs it on a worker thread ahead of the queued batches.
    func run(in lane: Lane, _ work: @escaping @Sendable () -> Void) throws {
        let admittedNow = condition.withLock {
            if lane.admitted >= limits.maxQueue || stopping { return false }
            lane.admitted += 1
            tasks.append((lane, work))
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
                task.work()
                condition.withLock { task.lane.admitted -= 1 }
            }
            if batch.isEmpty { continue }
            let model = batch[0].slot.current
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

    private func nextTask() -> (lane: Lane, work: @Sendable () -> Void)? {
        condition.withLock { tasks.isEmpty ? nil : tasks.removeFirst() }
    }

    /// Blocks until a task is queued (then returns no pieces, for the caller to take it) or a batch
    /// is due (full, or its oldest piece has waited `maxDelay`) and takes it off its lane; nil once
    /// stopping and every lane and the tasks are empty.
    private func nextBatch() -> [Piece]? {
        condition.lock()
        idle += 1
        defer {
            idle -= 1
            condition.unlock()
        }
        var found = tasks.isEmpty ? nextLane() : nil
        while found == nil && tasks.isEmpty {
            if stopping { return nil }
            condition.wait()
            found = tasks.isEmpty ? nextLane() : nil
        }
        if !tasks.isEmpty {
            if tasks.count > 1 || lanes.contains(where: \.hasWork) { condition.signal() }
            return []
        }
        let lane = found!
        let deadline = lane.queue[lane.head].arrived + UInt64(limits.maxDelay * 1e9)
        while lane.queuedSentences < limits.maxBatchSize && !stopping && !flushing && lane.hasWork {
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= deadline { break }
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(deadline - now) / 1e9))
        }
        // Another worker may have taken everything while this one waited.
        if !lane.hasWork { return [] }
        // Idle workers split what is queued, so one worker does not take all of it while the others'
        // cores sit idle; a busy server still fills whole batches, as its workers are rarely idle.
        let share = min(limits.maxBatchSize, (lane.queuedSentences + idle - 1) / idle)
        var batch: [Piece] = []
        var size = 0
        // A batch runs on one model: it stops where a piece was admitted for another load of it.
        while lane.hasWork, batch.isEmpty
                || (size + lane.queue[lane.head].sentences.count <= share && lane.queue[lane.head].slot === batch[0].slot) {
            size += lane.queue[lane.head].sentences.count
            batch.append(lane.queue[lane.head])
            lane.head += 1
        }
        lane.queuedSentences -= size
        if !lane.hasWork {
            lane.queue.removeAll(keepingCapacity: true)
            lane.head = 0
        } else if lane.head > 1024 {
            lane.queue.removeFirst(lane.head)
            lane.head = 0
        }
        // Wake another worker for what is left.
        if lanes.contains(where: \.hasWork) { condition.signal() }
        return batch
    }

    /// The first lane with work from `turn` on, which moves past it so the next batch comes from
    /// the lanes after it.
    private func nextLane() -> Lane? {
        for step in 0..<lanes.count {
            let i = (turn + step) % lanes.count
            if lanes[i].hasWork {
                turn = (i + 1) % lanes.count
                return lanes[i]
            }
        }
        return nil
    }
}

/// A slice of one request's sentences.
private struct Piece {
    let job: Job
    /// The model this piece was admitted for; it stays loaded until the piece is tagged.
    let slot: ModelSlot
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
