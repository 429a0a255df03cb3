import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NERCore
import NEREngine
import NERText

/// Batch inference as `ner-infer` runs it: reads lines (or CoNLL sentences) in batches, tags each
/// batch on `workers` threads while the next one is read, and writes every batch's output in input
/// order to stdout, so memory stays bounded however long the input is. The record formats are in
/// docs/records.md.
public struct BatchInference {
    public enum Format: String, CaseIterable, Sendable {
        case text, json, conll
    }

    /// Lines (conll: sentences) per batch.
    public var linesPerBatch: Int
    public var workers: Int

    public init(linesPerBatch: Int, workers: Int) {
        self.linesPerBatch = linesPerBatch
        self.workers = workers
    }

    /// Tags what `reader` holds in `format`: text and JSON lines give one JSON line per input line;
    /// CoNLL gives "TOKEN GOLD PREDICTED" lines, or with `eval` only the entity-level scores against
    /// the gold column. A bad line stops the run once every line before it is written.
    public func tag(_ reader: LineReader, format: Format, model: NERModel, eval: Bool = false, log: Logger) throws {
        let tagger = BatchTagger(model: model, workers: workers)
        switch format {
        case .text: try tagText(reader, tagger)
        case .json: try tagJSON(reader, tagger)
        case .conll: try tagCoNLL(reader, tagger, eval: eval, log: log)
        }
    }

    private func tagText(_ reader: LineReader, _ tagger: BatchTagger) throws {
        try pipelined(read: { readBatch({ try reader.nextLine() }) { $0 } }) { texts in
            tagger.lines(texts) { i, found, out in
                out.append(contentsOf: #"{"text":"#.utf8)
                JSON.appendString(texts[i], to: &out)
                out.append(contentsOf: #","entities":"#.utf8)
                Entity.appendJSON(found, to: &out)
                out.append(contentsOf: "}\n".utf8)
            }
        }
    }

    private func tagJSON(_ reader: LineReader, _ tagger: BatchTagger) throws {
        try pipelined(read: jsonBatches(reader, adding: "entities")) { batch in
            tagger.lines(batch.map(\.text)) { i, found, out in
                BatchInference.appendFields(of: batch[i].record, adding: "entities", to: &out)
                Entity.appendJSON(found, to: &out)
                out.append(contentsOf: "}\n".utf8)
            }
        }
    }

    /// Writes each line's sentence vector (`NERModel.sentenceVectors`), in input order: text lines
    /// as `{"text", "vector"}`, JSON lines with "vector" added to their fields.
    public func embed(_ reader: LineReader, format: Format, model: NERModel) throws {
        let tagger = BatchTagger(model: model, workers: workers)
        func appendVector(_ v: [Float], to out: inout [UInt8]) {
            out.append(UInt8(ascii: "["))
            for (j, x) in v.enumerated() {
                if j > 0 { out.append(UInt8(ascii: ",")) }
                // The shortest digits that read back as the same float32, so cosines agree with /sim.
                out.append(contentsOf: x.description.utf8)
            }
            out.append(UInt8(ascii: "]"))
        }
        switch format {
        case .text:
            try pipelined(read: { readBatch({ try reader.nextLine() }) { $0 } }) { texts in
                tagger.vectorLines(texts) { i, vector, out in
                    out.append(contentsOf: #"{"text":"#.utf8)
                    JSON.appendString(texts[i], to: &out)
                    out.append(contentsOf: #","vector":"#.utf8)
                    appendVector(vector, to: &out)
                    out.append(contentsOf: "}\n".utf8)
                }
            }
        case .json:
            try pipelined(read: jsonBatches(reader, adding: "vector")) { batch in
                tagger.vectorLines(batch.map(\.text)) { i, vector, out in
                    BatchInference.appendFields(of: batch[i].record, adding: "vector", to: &out)
                    appendVector(vector, to: &out)
                    out.append(contentsOf: "}\n".utf8)
                }
            }
        case .conll:
            throw ToolError.usage("--embed reads text or JSON lines, not CoNLL")
        }
    }

    /// Batches of JSON records with their "text", without the field `added` that output puts back.
    private func jsonBatches(_ reader: LineReader, adding added: String) -> () -> Batch<(record: JSON, text: String)> {
        var records = NDJSONReader(reader)
        return {
            readBatch({ try records.next() }) { record in
                guard let text = record["text"]?.stringValue else {
                    throw ToolError.data(reader.name, line: reader.lineNumber, "expected a string field \"text\"")
                }
                var rest = record
                rest[added] = nil
                return (rest, text)
            }
        }
    }

    /// The record's own fields, key-sorted as every tool writes them, then `"added":` last, for the
    /// caller to write its value and close the object.
    private static func appendFields(of record: JSON, adding added: String, to out: inout [UInt8]) {
        record.append(to: &out)
        out.removeLast()
        if out.last != UInt8(ascii: "{") { out.append(UInt8(ascii: ",")) }
        JSON.appendString(added, to: &out)
        out.append(UInt8(ascii: ":"))
    }

    /// Up to `linesPerBatch` items from `next`, stopping early at the end of input or at a bad line
    /// (kept as `failure`, thrown once the good lines before it are written).
    private func readBatch<Line, Item>(_ next: () throws -> Line?, _ item: (Line) throws -> Item) -> Batch<Item> {
        var batch = Batch<Item>()
        do {
            while batch.items.count < linesPerBatch {
                guard let line = try next() else { batch.ended = true; break }
                batch.items.append(try item(line))
            }
        } catch let e as ToolError {
            batch.failure = e
        } catch {
            batch.failure = ToolError.data("\(error)")
        }
        return batch
    }

    private func tagCoNLL(_ reader: LineReader, _ tagger: BatchTagger, eval: Bool, log: Logger) throws {
        // Batches end where documents end, so that each is harmonized whole; a document longer
        // than the cap is harmonized in parts.
        var batches = DocumentBatches(CoNLLReader(reader), size: linesPerBatch, cap: max(8 * linesPerBatch, 10_000))
        var counts = EvaluationCounts()
        var total = 0
        var failure: ToolError?
        while failure == nil {
            let (batch, error) = batches.next()
            failure = error
            if batch.isEmpty { break }
            total += batch.count
            let raw = tagger.predictions(batch.map(\.tokens))
            var predicted = raw.map(\.tags)
            DocumentConsistency.harmonize(batch, predicted: &predicted, scores: raw.map(\.scores))
            if eval {
                for (s, p) in zip(batch, predicted) { counts.add(gold: s.tags, predicted: p) }
            } else {
                var out = ""
                for (s, p) in zip(batch, predicted) {
                    for i in s.tokens.indices { out += "\(s.tokens[i]) \(s.tags[i]) \(p[i])\n" }
                    out += "\n"
                }
                Output.write(Data(out.utf8))
            }
        }
        if let failure { throw failure }
        if total == 0 { throw ToolError.data("\(reader.name): no sentences") }
        if eval {
            let scores = counts.scores
            log.info("\(total) sentences: F1 \(String(format: "%.2f", scores.f1 * 100)), P \(String(format: "%.2f", scores.precision * 100)), R \(String(format: "%.2f", scores.recall * 100))")
            Output.line(scores.json)
        }
    }

    /// Writes each line's sentences and tokens with their offsets (no model) and logs the
    /// tokenizer's speed.
    public func tokenize(_ reader: LineReader, log: Logger) throws {
        var chars = 0
        var wall = 0.0, cpu = 0.0
        var failure: ToolError?
        repeat {
            var texts: [String] = []
            while texts.count < linesPerBatch {
                do {
                    guard let line = try reader.nextLine() else { break }
                    texts.append(line)
                } catch let e as ToolError {
                    failure = e
                    break
                }
            }
            let (w0, c0) = (DispatchTime.now().uptimeNanoseconds, processCPUSeconds())
            let sentences = parallelMap(texts, workers: workers) { Tokenizer.sentences($0) }
            wall += Double(DispatchTime.now().uptimeNanoseconds - w0) / 1e9
            cpu += processCPUSeconds() - c0
            chars += texts.reduce(0) { $0 + $1.unicodeScalars.count }
            let lines = parallelMap(Array(zip(texts, sentences)), workers: workers) { text, sentences -> JSON in
                ["text": .string(text), "sentences": .array(sentences.map { tokens in
                    .array(tokens.map { ["text": .string($0.text), "start": .int(Int64($0.start)), "end": .int(Int64($0.end))] })
                })]
            }
            Output.write(ndjson(lines))
            if texts.count < linesPerBatch { break }
        } while failure == nil
        func rate(_ seconds: Double) -> String { String(format: "%.1f", seconds > 0 ? Double(chars) / seconds / 1e6 : 0) }
        log.info("tokenized \(chars) characters in \(String(format: "%.3f", wall)) s (\(rate(wall)) M characters/s; \(rate(cpu)) M per CPU second; \(workers) thread(s))")
        if let failure { throw failure }
    }
}

/// CPU time of the whole process, so a speed figure means something on a busy machine too.
func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
