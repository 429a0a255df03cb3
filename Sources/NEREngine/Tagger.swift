import Foundation
import NERCore

/// Parameters plus everything needed to turn tokens into tags: the network, the tag set and the
/// token encoder. Shared by training (dev evaluation) and `NERModel`.
final class Tagger: @unchecked Sendable {
    let params: Parameters
    let tagSet: TagSet
    let encoder: Encoder
    private let lock = NSLock()
    private var pool: [Workspace] = []
    /// Set when the model runs on a GPU: decoding goes there, one batch at a time.
    var gpu: CUDANetwork?
    private let gpuLock = NSLock()
    /// Set for a loaded model on the CPU, whose weights never change (never while training).
    var projectionCache: ProjectionCache?
    /// Sentences per GPU batch: large, so each kernel has thousands of threads.
    static let gpuBatch = 2048

    init(params: Parameters, tagSet: TagSet, encoder: Encoder) {
        self.params = params
        self.tagSet = tagSet
        self.encoder = encoder
    }

    func withWorkspace<R>(_ body: (Workspace) -> R) -> R {
        lock.lock()
        let ws = pool.popLast() ?? Workspace()
        lock.unlock()
        defer {
            lock.lock()
            pool.append(ws)
            lock.unlock()
        }
        return body(ws)
    }

    /// Set for a loaded model, whose transitions never change; training rebuilds them per use.
    var fixedTables: CRFTables?
    var tables: CRFTables { fixedTables ?? CRFTables(params, tags: tagSet) }

    /// Sentences grouped by length into batches of at most `size`, in input order within a length.
    static func batches(lengths: [Int], size: Int) -> [[Int]] {
        var byLength: [Int: [Int]] = [:]
        for (i, n) in lengths.enumerated() where n > 0 { byLength[n, default: []].append(i) }
        var out: [[Int]] = []
        for n in byLength.keys.sorted() {
            let ids = byLength[n]!
            var lo = 0
            while lo < ids.count {
                out.append(Array(ids[lo..<min(lo + size, ids.count)]))
                lo += size
            }
        }
        return out
    }

    /// Best tag ids and their marginal probabilities for every sentence, on `threads` threads.
    func decode(_ sentences: [EncodedSentence], threads: Int) -> (tags: [[Int32]], scores: [[Float]]) {
        var tags = [[Int32]](repeating: [], count: sentences.count)
        var scores = [[Float]](repeating: [], count: sentences.count)
        if let gpu {
            gpuLock.lock()
            defer { gpuLock.unlock() }
            for ids in Tagger.batches(lengths: sentences.map(\.count), size: Tagger.gpuBatch) {
                // A GPU that fails mid-run (lost, out of memory) cannot be recovered from here.
                let (t, s): ([[Int32]], [[Float]])
                do { (t, s) = try gpu.decode(ids.map { sentences[$0] }) } catch { exitOnDeviceFailure(error) }
                for (j, i) in ids.enumerated() {
                    tags[i] = t[j]
                    scores[i] = s[j]
                }
            }
            return (tags, scores)
        }
        let tab = tables
        let k = tagSet.count
        let decoded = inBatches(sentences, threads: threads) { ws -> ([[Int32]], [[Float]]) in
            ws.forward(params, cache: projectionCache)
            var t: [[Int32]] = [], s: [[Float]] = []
            ws.decode(tables: tab, k: k, tags: &t, scores: &s)
            return (t, s)
        }
        for (ids, (t, s)) in decoded {
            for (j, i) in ids.enumerated() {
                tags[i] = t[j]
                scores[i] = s[j]
            }
        }
        return (tags, scores)
    }
}

extension Tagger {
    /// Loads the non-empty sentences into workspaces longest first, in batches of 64 that may mix
    /// lengths (see `Workspace.forward(_:cache:)`), and runs `body` on each, on `threads` threads;
    /// returns each batch's sentence indices, in the order loaded, with what `body` made of it.
    func inBatches<R>(_ sentences: [EncodedSentence], threads: Int, _ body: (Workspace) -> R) -> [(ids: [Int], result: R)] {
        let order = sentences.indices.filter { sentences[$0].count > 0 }.sorted {
            (sentences[$0].count, $1) > (sentences[$1].count, $0)
        }
        let groups = stride(from: 0, to: order.count, by: 64).map { Array(order[$0..<min($0 + 64, order.count)]) }
        var slots = [R?](repeating: nil, count: groups.count)
        let next = Counter()
        let workers = max(1, min(threads, groups.count))
        slots.withUnsafeMutableBufferPointer { buffer in
            let results = buffer
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                withWorkspace { ws in
                    while true {
                        let g = next.take()
                        if g >= groups.count { break }
                        ws.load(groups[g].lazy.map { sentences[$0] })
                        results[g] = body(ws)
                    }
                }
            }
        }
        return zip(groups, slots).map { ($0, $1!) }
    }
}

/// A shared work counter for worker threads.
final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()

    func take() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}

/// Ends the process with the device's error: exit 1 and one line on stderr, as for any failed run.
func exitOnDeviceFailure(_ error: Error) -> Never {
    let tool = (CommandLine.arguments.first as NSString?)?.lastPathComponent ?? "ner"
    FileHandle.standardError.write(Data("\(tool): error: \((error as? ToolError)?.message ?? "\(error)")\n".utf8))
    exit(ExitStatus.failure.rawValue)
}
