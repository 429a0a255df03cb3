import ArgumentParser
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NERCLI
import NERCore
import NEREngine
import NERModelStore
import NERText

enum InputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, conll
}

struct Infer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner-infer",
        abstract: "Tag named entities in text with a trained model (batch inference).",
        usage: """
        ner-infer --model MODEL [--format text|json] [--input FILE] < sentences.txt
          ner-infer --model MODEL --format conll [--eval] < data.conll
          ner-infer --tokenize-only < sentences.txt
        """,
        discussion: """
        Reads text, splits it into sentences and tokens, tags them with the model, and prints one \
        JSON line per input line, in input order, with the entities found. It works in batches of \
        --batch-lines lines spread over --threads threads, reading the next batch while one is tagged \
        and writing each in input order, so memory stays bounded however long the input is.

        READS (stdin, or --input FILE), by --format
        text: one document per line (default). Empty lines give empty entity lists.
        json: one JSON object per line with a string field "text"; other fields pass through. \
        Blank lines are skipped.
        conll: CoNLL columns, token first and gold tag last (IOB1, BIO or BIOES), a blank line \
        between sentences, -DOCSTART- lines skipped. The text is already tokenized.

        WRITES (stdout)
        text, json: the line's record with "entities" added, e.g.
          {"text": "George Washington", "entities": [{"text": "George Washington",
           "tag": "PER", "start": 0, "end": 17, "score": 0.99}]}
        start/end count Unicode scalars (not bytes) from the start of that line's text, end \
        exclusive; "text" is the exact substring there; "score" is the mean per-token confidence.
        conll: "TOKEN GOLD PREDICTED" per token (tags in BIO), a blank line after each sentence. \
        With --eval, instead, one JSON object with entity-level precision, recall and F1 as \
        fractions (exact span and type match, as conlleval computes them), overall and per type.
        --tokenize-only: {"text": ..., "sentences": [[{"text": ..., "start": ..., "end": ...}]]} \
        per line; no model is needed, and the tokenizer's speed goes to stderr.

        An input line that is not valid UTF-8, or (json) not a JSON object with a string "text", \
        stops the run with exit 65 naming the line (`stdin:12: ...`); every line before it has \
        been written.

        EXAMPLES
          ner-infer --model news < sentences.txt > entities.ndjson
          ner-infer --model news@production --threads 8 < big.txt | head
          ner-infer --model news --format json < records.ndjson
          ner-infer --model models/news --format conll --eval --input dev.txt | jq .f1

        \(exitCodeHelp)
        """,
        version: Toolchain.version)

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("""
        The model: a registered NAME (its production alias, else the latest version), NAME@ALIAS, \
        NAME:VERSION, a model id, a model tarball, or a model folder.
        """, valueName: "MODEL"))
    var model: String?

    @Option(help: ArgumentHelp("Input format: text, json or conll.", valueName: "FORMAT"))
    var format: InputFormat = .text

    @Option(help: ArgumentHelp("Read this file instead of stdin.", valueName: "FILE"))
    var input: String?

    @Flag(help: "With --format conll: print entity-level scores against the gold column instead of tags.")
    var eval = false

    @Option(help: ArgumentHelp("Lines (conll: sentences) per batch. Default: 4096; 65536 with --device cuda, so that "
        + "each sentence length fills a large GPU batch.", valueName: "N"))
    var batchLines: Int?

    var linesPerBatch: Int { batchLines ?? (device == "cuda" ? 65536 : 4096) }

    @Option(help: ArgumentHelp("Worker threads. Default: all cores.", valueName: "N"))
    var threads: Int?

    @Option(help: ArgumentHelp(deviceHelp, valueName: "DEVICE"))
    var device = "cpu"

    @Flag(help: "Only tokenize: print each line's sentences and tokens with offsets; no model.")
    var tokenizeOnly = false

    func validate() throws {
        if let batchLines, batchLines < 1 { throw ValidationError("--batch-lines must be at least 1") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if eval && format != .conll { throw ValidationError("--eval needs --format conll (a gold column)") }
        if tokenizeOnly && format != .text { throw ValidationError("--tokenize-only reads text lines") }
        if !tokenizeOnly && model == nil { throw ValidationError("--model is required") }
    }

    func run() throws {
        try runTool("ner-infer", common) { log in
            let workers = threads ?? ProcessInfo.processInfo.activeProcessorCount
            let reader = try input.map { path -> LineReader in
                if isDirectory(path) { throw ToolError.noInput("\(path): is a folder, expected a file") }
                return try LineReader(path: path)
            } ?? LineReader()
            if tokenizeOnly {
                return try tokenize(reader, workers: workers, log: log)
            }
            let computeDevice = try ComputeDevice.select(device)
            let folder = try modelFolder(model!, home: common.resolvedHome)
            let loaded = try NERModel.load(folder, device: computeDevice)
            // On the CPU, parallelism comes from running one predict per worker, each call on its own
            // thread; on a GPU, one predict takes the whole batch and uses the threads to encode it.
            loaded.threads = computeDevice == .cuda ? workers : 1
            log.info("model \(loaded.id) (\(loaded.labels.joined(separator: ", "))) on \(workers) thread(s)")
            let tagger = BatchTagger(model: loaded, workers: workers)
            switch format {
            case .text: try tagText(reader, tagger)
            case .json: try tagJSON(reader, tagger)
            case .conll: try tagCoNLL(reader, tagger, log: log)
            }
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
        var records = NDJSONReader(reader)
        let read = { () -> Batch<(record: JSON, text: String)> in
            readBatch({ try records.next() }) { record in
                guard let text = record["text"]?.stringValue else {
                    throw ToolError.data(reader.name, line: reader.lineNumber, "expected a string field \"text\"")
                }
                var rest = record
                rest["entities"] = nil
                return (rest, text)
            }
        }
        try pipelined(read: read) { batch in
            tagger.lines(batch.map(\.text)) { i, found, out in
                // The record's own fields, key-sorted as every tool writes them, then "entities" last.
                batch[i].record.append(to: &out)
                out.removeLast()
                if out.last != UInt8(ascii: "{") { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: #""entities":"#.utf8)
                Entity.appendJSON(found, to: &out)
                out.append(contentsOf: "}\n".utf8)
            }
        }
    }

    /// Up to --batch-lines items from `next`, stopping early at the end of input or at a bad line
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

    private func tagCoNLL(_ reader: LineReader, _ tagger: BatchTagger, log: Logger) throws {
        var sentences = CoNLLReader(reader)
        var counts = EvaluationCounts()
        var total = 0
        var failure: ToolError?
        while failure == nil {
            var batch: [Sentence] = []
            do {
                while batch.count < linesPerBatch, let s = try sentences.next() { batch.append(s) }
            } catch let e as ToolError {
                failure = e
            }
            if batch.isEmpty { break }
            total += batch.count
            let predicted = tagger.predictions(batch.map(\.tokens))
            if eval {
                for (s, p) in zip(batch, predicted) { counts.add(gold: s.tags, predicted: p.tags) }
            } else {
                var out = ""
                for (s, p) in zip(batch, predicted) {
                    for i in s.tokens.indices { out += "\(s.tokens[i]) \(s.tags[i]) \(p.tags[i])\n" }
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

    private func tokenize(_ reader: LineReader, workers: Int, log: Logger) throws {
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

/// Finds the folder of the model that `--model` names: a folder, a tarball, or a registry
/// reference (NAME, NAME@ALIAS, NAME:VERSION, model id).
func modelFolder(_ spec: String, home: Home) throws -> String {
    try ModelLocator(home: home).locate(spec).directory
}

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


Infer.main()
