import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NERCLI
import NERCore
import NEREngine
import NERInference
import NERModelStore
import NERText

extension BatchInference.Format: ExpressibleByArgument {}

struct Infer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner-infer",
        abstract: "Tag named entities in text with a trained model (batch inference).",
        usage: """
        ner-infer [--model MODEL] [--format text|json] [--input FILE] < sentences.txt
          ner-infer [--model MODEL] --format conll [--eval] < data.conll
          ner-infer --tokenize-only < sentences.txt
          ner-infer [--model MODEL] --embed [--format text|json] < sentences.txt
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
        between sentences, -DOCSTART- lines between documents. The text is already tokenized.

        DOCUMENTS
        A text line, a JSON record's text, or (conll) the sentences between two -DOCSTART- lines \
        is one document. Within a document, a name tagged with different types gets the type most \
        of its mentions have (a strict majority of at least two) wherever the tagger was unsure \
        (confidence under 0.95); spans never change. docs/engine.md explains why.

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
        --embed: the line's record with "vector" added instead of "entities": the line's sentence \
        vector: a list of floats (the LSTM states' average, then the word vectors' weighted \
        average) of Euclidean length 1, so the dot product of two lines' vectors is their cosine \
        similarity, as POST /sim of ner-serve answers it. A line without tokens gets zeros. What the vector holds, and what it is good \
        and bad at: docs/engine.md. It is computed on the CPU, also with --device cuda.

        An input line that is not valid UTF-8, or (json) not a JSON object with a string "text", \
        stops the run with exit 65 naming the line (`stdin:12: ...`); every line before it has \
        been written.

        THE MODEL
        Without --model, ner-infer takes $NER_MODEL; else the one model name in the registry \
        ($NER_HOME/registry.sqlite) whose production alias is set; else, when the registry holds \
        one model name, its latest version. Anything else is exit 64 with the candidates listed.

        EXAMPLES
          ner-infer < sentences.txt
          ner-infer --model news < sentences.txt > entities.ndjson
          ner-infer --model news@production --threads 8 < big.txt | head
          ner-infer --model news --format json < records.ndjson
          ner-infer --model models/news --format conll --eval --input dev.txt | jq .f1
          ner-infer --model news --embed < sentences.txt > vectors.ndjson

        \(exitCodeHelp)
        """,
        version: Toolchain.version)

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("""
        The model: a registered NAME (its production alias, else the latest version), NAME@ALIAS, \
        NAME:VERSION, a model id, a model tarball, or a model folder. Default: $NER_MODEL, else the \
        one registered name with a production alias, else the registry's only name.
        """, valueName: "MODEL"))
    var model: String?

    @Option(help: ArgumentHelp("Input format: text, json or conll.", valueName: "FORMAT"))
    var format: BatchInference.Format = .text

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

    @Flag(help: "Print each line's sentence vector (for similarity) instead of its entities.")
    var embed = false

    func validate() throws {
        if let batchLines, batchLines < 1 { throw ValidationError("--batch-lines must be at least 1") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if eval && format != .conll { throw ValidationError("--eval needs --format conll (a gold column)") }
        if tokenizeOnly && format != .text { throw ValidationError("--tokenize-only reads text lines") }
        if embed && format == .conll { throw ValidationError("--embed reads text or JSON lines, not CoNLL") }
        if embed && tokenizeOnly { throw ValidationError("--embed and --tokenize-only do not go together") }
    }

    func run() throws {
        try runTool("ner-infer", common) { log in
            let workers = threads ?? ProcessInfo.processInfo.activeProcessorCount
            let reader = try input.map { path -> LineReader in
                if isDirectory(path) { throw ToolError.noInput("\(path): is a folder, expected a file") }
                return try LineReader(path: path)
            } ?? LineReader()
            let inference = BatchInference(linesPerBatch: linesPerBatch, workers: workers)
            if tokenizeOnly { return try inference.tokenize(reader, log: log) }
            let computeDevice = try ComputeDevice.select(device)
            let locator = ModelLocator(home: common.resolvedHome)
            let spec = try model ?? locator.defaultSpec()
            let loaded = try NERModel.load(try locator.locate(spec).directory, device: computeDevice)
            // On the CPU, parallelism comes from running one predict per worker, each call on its own
            // thread; on a GPU, one predict takes the whole batch and uses the threads to encode it.
            // Sentence vectors run on the CPU whatever the device, one call per worker.
            loaded.threads = computeDevice == .cuda && !embed ? workers : 1
            log.info("model \(loaded.id) (\(loaded.labels.joined(separator: ", "))) on \(workers) thread(s)")
            if embed { return try inference.embed(reader, format: format, model: loaded) }
            try inference.tag(reader, format: format, model: loaded, eval: eval, log: log)
        }
    }
}

Infer.main()
