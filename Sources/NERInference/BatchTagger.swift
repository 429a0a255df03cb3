import Dispatch
import Foundation
import NERCore
import NEREngine
import NERText

/// Runs the model over batches, one slice of the batch per worker thread.
struct BatchTagger {
    let model: NERModel
    let workers: Int

    /// Tags `texts` and writes one output line per text through `write`; each worker tags and writes
    /// its own contiguous slice, so only joining the slices is serial.
    func lines(_ texts: [String], write: (Int, [Entity], inout [UInt8]) -> Void) -> Data {
        if model.device == .cuda { return gpuLines(texts, write: write) }
        return joined(parallelChunks(Array(texts.indices), workers: workers) { ids -> [[UInt8]] in
            let found = Entities.find(in: ids.map { texts[$0] }) { sentences in
                model.predict(sentences).map { (tags: $0.tags, scores: $0.scores) }
            }
            return [written(ids, found, write)]
        })
    }

    /// Computes the sentence vectors of `texts` and writes one output line per text through `write`,
    /// each worker its own contiguous slice.
    func vectorLines(_ texts: [String], write: (Int, [Float], inout [UInt8]) -> Void) -> Data {
        joined(parallelChunks(Array(texts.indices), workers: workers) { ids -> [[UInt8]] in
            let vectors = model.sentenceVectors(ids.map { texts[$0] })
            var out: [UInt8] = []
            out.reserveCapacity(ids.count * 12 * model.sentenceVectorSize)
            for (i, v) in zip(ids, vectors) { write(i, v, &out) }
            return [out]
        })
    }

    /// On a GPU the whole batch goes to the model in one call, so that each sentence length makes
    /// one large GPU batch; the workers tokenize before it and find and write entities after it.
    private func gpuLines(_ texts: [String], write: (Int, [Entity], inout [UInt8]) -> Void) -> Data {
        let chunks = parallelChunks(Array(texts.indices), workers: workers) { ids in [(ids, Entities.tokenize(ids.map { texts[$0] }))] }
        let predictions = model.predict(chunks.flatMap { $0.1.words })
        var starts: [Int] = [0]
        for c in chunks { starts.append(starts.last! + c.1.words.count) }
        return joined(parallelMap(Array(chunks.indices), workers: workers) { c -> [UInt8] in
            let (ids, tokenized) = chunks[c]
            let found = Entities.locate(in: ids.map { texts[$0] }, sentences: tokenized.sentences,
                                        predictions: predictions[starts[c]..<starts[c + 1]].map { (tags: $0.tags, scores: $0.scores) })
            return written(ids, found, write)
        })
    }

    /// The output lines of the texts `ids`, whose entities are `found`.
    private func written(_ ids: [Int], _ found: [[Entity]], _ write: (Int, [Entity], inout [UInt8]) -> Void) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 160)
        for (i, entities) in zip(ids, found) { write(i, entities, &out) }
        return out
    }

    private func joined(_ parts: [[UInt8]]) -> Data {
        var data = Data(capacity: parts.reduce(0) { $0 + $1.count })
        for part in parts { data.append(contentsOf: part) }
        return data
    }

    func predictions(_ sentences: [[String]]) -> [Prediction] {
        model.device == .cuda ? model.predict(sentences) : parallelChunks(sentences, workers: workers) { model.predict($0) }
    }
}

/// One batch of input: its items, whether the input ended, and the error that cut it short.
struct Batch<Item> {
    var items: [Item] = []
    var ended = false
    var failure: ToolError?
}

/// A batch's output, handed from the tagging thread to the writer.
private final class OutputSlot: @unchecked Sendable { var data = Data() }

/// Tags batch k on the worker threads while the calling thread reads batch k+1, writing each batch's
/// output in input order before the next one's.
func pipelined<Item>(read: () -> Batch<Item>, tag: @escaping ([Item]) -> Data) throws {
    var batch = read()
    while true {
        let slot = OutputSlot(), done = DispatchGroup()
        let items = batch.items
        DispatchQueue.global().async(group: done) { slot.data = tag(items) }
        let next = batch.failure == nil && !batch.ended ? read() : nil
        done.wait()
        Output.write(slot.data)
        if let failure = batch.failure { throw failure }
        guard let next else { return }
        batch = next
    }
}


/// Records as NDJSON: compact, keys sorted, one buffer per batch.
func ndjson(_ records: [JSON]) -> Data {
    var out: [UInt8] = []
    out.reserveCapacity(records.count * 256)
    for r in records {
        r.append(to: &out)
        out.append(0x0A)
    }
    return Data(out)
}
