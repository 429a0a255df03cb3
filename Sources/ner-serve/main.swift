import ArgumentParser
import Foundation
import NERCLI
import NERCore
import NERModelStore
import NERServer

struct Tool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ner-serve",
        abstract: "Serve named-entity models over HTTP.",
        usage: "ner-serve [--model MODEL ...] [--host ADDRESS] [--port N] [options]",
        discussion: """
        Loads the model once (its weights are memory-mapped, so start-up takes milliseconds and \
        several servers on one node share one copy), listens on --host:--port, and tags the text \
        it is sent. Requests arriving together are gathered into batches for one forward pass each \
        (waiting at most --max-batch-delay), run on --workers inference threads; --io-threads \
        threads read and write the sockets.

        ENDPOINTS
          POST /ner        Content-Type text/plain (or none): the body is the text. Answer: a JSON \
        list of {"text", "tag", "start", "end", "score"}; start/end count Unicode scalars from \
        the start of the body, end exclusive, and "text" is exactly those scalars. Bodies of many \
        sentences are split and tagged whole, as one document: a name it repeats gets one type \
        where the tagger was unsure (docs/engine.md). Content-Type application/json: {"text": "..."} \
        gives one list, {"texts": ["...", ...]} a list of lists. The X-Model-Id response header \
        names the model that answered. A "model" field in the JSON body picks a served model other \
        than the default (see MODEL).
          POST /v1/models/NAME/ner   The same, with the model NAME (URL-encoded): a --model value \
        as given, or its registry name when only one served model has it. A name not served is 404 \
        with the served names in "models".
          POST /sim        Content-Type application/json: {"target": "...", "texts": ["...", ...]} \
        (1 to 1024 texts). Answer: {"target", "texts", "sims"}, sims[i] the cosine similarity \
        (-1 to 1) of texts[i]'s sentence vector with the target's, in the texts' order; a text \
        without tokens scores 0. The vectors are those of ner-infer --embed (docs/engine.md), from \
        the default model.
          GET /healthz     200 while the process is alive.
          GET /readyz      200 once the model is loaded and warmed up; 503 before, and while \
        draining after SIGTERM.
          GET /metrics     Prometheus text: requests by path and status, errors, latency and batch \
        size histograms, queue depth, the loaded models as ner_model_info labels, reloads, memory; \
        per served model (label model): requests by status, latency, queue depth, loads and \
        evictions.
          GET /v1/models   Every served model, the default first: served_as (its name here), \
        default, loaded, last_reload_error ({"at", "error"} of its last failed reload, null once \
        one succeeds) and, while loaded, id, name, version, folder, entity types; max_models; and \
        last_reload_error of the default model.

        ERRORS (a JSON body {"error": "..."} every time; the server keeps serving)
          400 invalid UTF-8, invalid JSON, or JSON without a string "text" / list "texts"; for \
        /sim, a missing or ill-typed "target" or "texts", an empty "texts" or more than 1024 texts
          401 --token is set and the request lacks "Authorization: Bearer TOKEN" (all but \
        /healthz and /readyz)
          404 unknown path or model   405 wrong method (Allow says which)   413 body over --max-body \
        (the connection is closed)   415 a Content-Type other than text/plain or application/json \
        (/sim: other than application/json)
          503 the model's queue holds --max-queue requests already (Retry-After says when to try \
        again), or a model loaded on demand failed to load (the cause is in "error")
        A client that takes longer than --read-timeout to send a whole request is disconnected.

        MODEL
          --model takes a registry name (its "production" alias if set, else the latest version), \
        NAME@ALIAS, NAME:VERSION, a model id (all looked up in $NER_HOME/registry.sqlite), or a \
        model folder or tarball. Without --model, $NER_MODEL names it; else the one model name in \
        the registry whose production alias is set; else, when the registry holds one model name, \
        that name; anything else is exit 64 listing the candidates.
          --model again (or --models A,B@ALIAS) serves several: the first is the default, loaded \
        before anything listens and never unloaded; each other one is looked up at start (exit 66 \
        when one is missing) and loaded on its first request, which waits for the load (a few \
        milliseconds, as the weights are mapped rather than read). At most --max-models are \
        loaded at once: loading one more unloads the least recently used other model, whose \
        memory is freed once the requests admitted for it are answered. Each model has its own \
        batches and its own --max-queue, and the inference threads take the models in turn, so a \
        burst for one model delays the others by at most one batch. A model that fails to load is \
        503 for its requests and is tried again on the next one; the others keep serving.
          When a model names a registry entry, the registry is polled every \
        --poll-interval seconds and the model is reloaded when the name or alias points elsewhere \
        (`ner-register promote`); so is every other loaded model that names a registry entry. \
        SIGHUP reloads every loaded model at any time. The new model is loaded and \
        warmed up beside the old one and swapped in at once; no request fails during the switch. \
        A reload that fails (a missing or malformed model) keeps the old model serving, logs the \
        cause, shows it as last_reload_error in /v1/models and counts it in \
        ner_model_reloads_total{result="failure"}; polling does not retry that model until the name \
        points elsewhere or SIGHUP asks again.

        SIGNALS
          SIGTERM, SIGINT  stop accepting connections, answer every request in flight (queued \
        batches run at once, without waiting out --max-batch-delay), exit 0. Every answer from then \
        on carries "Connection: close"; a keep-alive connection idle at that moment stays open half \
        a second for a request already on its way, then closes.
          SIGHUP           reload every loaded model.

        LOGS (stderr)
          One line per request: method, path, status, remote address, milliseconds, bytes in and \
        out; plain, or JSON lines with --log-format json. --quiet leaves only errors.

        EXAMPLES
          ner-serve --model conll
          curl -X POST http://127.0.0.1:8080/ner -H "Content-type: text/plain" \\
              --data "George Washington was president of the United States."
          curl -s http://127.0.0.1:8080/ner -H "Content-type: application/json" \\
              --data '{"texts": ["Angela Merkel visited Paris.", "EU rejects German call."]}'
          curl -X POST -H "Content-Type: application/json" http://127.0.0.1:8080/sim \\
              -d '{"target": "JSON", "texts": ["text", "format", "data"]}'
          NER_SERVE_TOKEN=secret ner-serve --model conll@staging --host 0.0.0.0 --port 9000
          ner-serve --model conll --models conll@staging,news --max-models 3
          curl http://127.0.0.1:8080/v1/models/conll@staging/ner \\
              -H "Content-type: text/plain" --data "EU rejects German call."
          curl -s http://127.0.0.1:8080/ner -H "Content-type: application/json" \\
              --data '{"model": "news", "text": "Angela Merkel visited Paris."}'
          kill -HUP $(pidof ner-serve)

        A model that cannot be found exits 66 before anything listens; an address already in use \
        exits 69.

        \(exitCodeHelp)
        """,
        version: Toolchain.version)

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("""
        A model to serve: NAME, NAME@ALIAS, NAME:VERSION, a model id, or a model folder or tarball; \
        repeat it to serve several, the first the default. Default: $NER_MODEL, else the one \
        registered name with a production alias, else the registry's only name.
        """, valueName: "MODEL"))
    var model: [String] = []

    @Option(help: ArgumentHelp("More models to serve, comma-separated, after those of --model.", valueName: "MODEL,..."))
    var models: String?

    @Option(help: ArgumentHelp("Models loaded at once, the default included; loading one more unloads the least "
                               + "recently used. Default: 5.", valueName: "N"))
    var maxModels = 5

    @Option(help: ArgumentHelp("Address to listen on. Default: 127.0.0.1 (this machine only).", valueName: "ADDRESS"))
    var host = "127.0.0.1"

    @Option(help: ArgumentHelp("Port to listen on; 0 picks a free one (the log says which). Default: 8080.", valueName: "N"))
    var port = 8080

    @Option(help: ArgumentHelp("Largest request body in bytes. Default: 1048576 (1 MiB).", valueName: "BYTES"))
    var maxBody = 1 << 20

    @Option(help: ArgumentHelp("Longest a batch waits for more sentences, in milliseconds. Default: 0: a free worker "
                               + "starts at once, and under load batches fill with what queued while the workers were busy.",
                               valueName: "MS"))
    var maxBatchDelay = 0.0

    @Option(help: ArgumentHelp("Sentences per forward pass. Default: 64.", valueName: "N"))
    var maxBatchSize = 64

    @Option(help: ArgumentHelp("Requests admitted at once per model; more are answered 503 with Retry-After. Default: 1024.",
                               valueName: "N"))
    var maxQueue = 1024

    @Option(help: ArgumentHelp("Inference threads. Default: all cores.", valueName: "N"))
    var workers: Int?

    @Option(help: ArgumentHelp("Threads for the sockets and HTTP parsing. Default: half the cores, at least 1.",
                               valueName: "N"))
    var ioThreads: Int?

    @Option(help: ArgumentHelp(deviceHelp, valueName: "DEVICE"))
    var device = "cpu"

    @Option(help: ArgumentHelp("Seconds between registry checks for a moved alias; 0 turns them off. Default: 5.",
                               valueName: "SECONDS"))
    var pollInterval = 5.0

    @Option(help: ArgumentHelp("Seconds a client has to send a whole request. Default: 10.", valueName: "SECONDS"))
    var readTimeout = 10.0

    @Option(help: ArgumentHelp("Require \"Authorization: Bearer TOKEN\". Default: $NER_SERVE_TOKEN, else none.",
                               valueName: "TOKEN"))
    var token: String?

    func validate() throws {
        if !(0...65535).contains(port) { throw ValidationError("--port must be between 0 and 65535") }
        if maxBody < 1 { throw ValidationError("--max-body must be at least 1") }
        if maxBatchDelay < 0 { throw ValidationError("--max-batch-delay must not be negative") }
        if maxBatchSize < 1 { throw ValidationError("--max-batch-size must be at least 1") }
        if maxQueue < 1 { throw ValidationError("--max-queue must be at least 1") }
        if let w = workers, w < 1 { throw ValidationError("--workers must be at least 1") }
        if let t = ioThreads, t < 1 { throw ValidationError("--io-threads must be at least 1") }
        if pollInterval < 0 { throw ValidationError("--poll-interval must not be negative") }
        if readTimeout <= 0 { throw ValidationError("--read-timeout must be positive") }
        if token == "" { throw ValidationError("--token must not be empty") }
        if maxModels < 1 { throw ValidationError("--max-models must be at least 1") }
        let served = servedModels
        if served.contains("") { throw ValidationError("--models has an empty name") }
        if let twice = Dictionary(grouping: served, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw ValidationError("model '\(twice)' is given twice")
        }
        if served.count > 1 && maxModels < 2 {
            throw ValidationError("--max-models \(maxModels) leaves no room for a model beside the default; serving \(served.count) models needs at least 2")
        }
    }

    /// --model values, then --models', in order.
    var servedModels: [String] {
        model + (models.map { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } } ?? [])
    }

    func run() throws {
        try runTool("ner-serve", common) { log in
            let home = common.resolvedHome
            let served = servedModels
            var options = ServeOptions(models: served.isEmpty ? [try ModelLocator(home: home).defaultSpec()] : served, home: home)
            options.maxModels = maxModels
            options.host = host
            options.port = port
            options.maxBody = maxBody
            options.maxBatchDelay = maxBatchDelay / 1000
            options.maxBatchSize = maxBatchSize
            options.maxQueue = maxQueue
            if let workers { options.workers = workers }
            if let ioThreads { options.ioThreads = ioThreads }
            options.pollInterval = pollInterval
            options.readTimeout = readTimeout
            options.device = device
            let fromEnvironment = ProcessInfo.processInfo.environment["NER_SERVE_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            options.token = token ?? fromEnvironment
            try Serve.run(options, log: log)
        }
    }
}

Tool.main()
