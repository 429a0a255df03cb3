import Dispatch
import Foundation
import Logging
import NERCore
import NEREngine
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// How `ner-serve` runs; every field has the default its `--help` documents.
public struct ServeOptions: Sendable {
    /// What to serve, the default first: each a registry name, `NAME@ALIAS`, `NAME:VERSION`, a model
    /// id, or a folder/tarball path. Requests name a model by the spec as given here.
    public var models: [String]
    /// Models loaded at once, the default included; the least recently used other one is unloaded
    /// to make room.
    public var maxModels = 5
    public var home: Home
    public var host = "127.0.0.1"
    /// 0 picks a free port (the log line says which).
    public var port = 8080
    /// Largest accepted request body, in bytes.
    public var maxBody = 1 << 20
    /// Longest a batch waits for more sentences, in seconds.
    public var maxBatchDelay = 0.0
    /// Sentences per forward pass.
    public var maxBatchSize = 64
    /// Requests admitted at once for each model; more get 503 with `Retry-After`.
    public var maxQueue = 1024
    /// Inference threads, each running its own batches.
    public var workers = ProcessInfo.processInfo.activeProcessorCount
    /// Event-loop threads for the sockets and HTTP parsing; inference runs on `workers`.
    public var ioThreads = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
    /// Seconds between registry polls for a moved alias; 0 turns polling off.
    public var pollInterval = 5.0
    /// Bearer token every request but `/healthz` and `/readyz` must carry.
    public var token: String?
    /// Seconds a client has to send each whole request once the server waits for it.
    public var readTimeout = 10.0
    /// cpu or cuda (checked with `ComputeDevice.select`).
    public var device = "cpu"

    public init(models: [String], home: Home) {
        self.models = models
        self.home = home
    }
}

/// The HTTP service (README, The tools; docs/records.md for entities): `POST /ner` and the operational endpoints, on SwiftNIO.
public enum Serve {
    /// Loads the default model, looks the others up, and serves until SIGTERM or SIGINT, then finishes
    /// the requests in flight and returns. Throws `ToolError`: 66 when a model cannot be found, 65 when
    /// the default is unreadable (both before anything listens), 69 when the address cannot be bound
    /// or the device is unusable.
    public static func run(_ options: ServeOptions, log: Logger) throws {
        let started = DispatchTime.now().uptimeNanoseconds
        // Installed first, so a SIGTERM that arrives while the model loads still ends in a clean exit.
        let stop = DispatchSemaphore(value: 0)
        let signalQueue = DispatchQueue(label: "ner-serve.signals")
        let signalSources = [SIGTERM, SIGINT].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: signalQueue)
            s.setEventHandler { stop.signal() }
            s.resume()
            return s
        }
        defer { for s in signalSources { s.cancel() } }

        let device = try ComputeDevice.select(options.device)
        let metrics = Metrics()
        let batcher = Batcher(limits: .init(maxBatchSize: options.maxBatchSize, maxDelay: options.maxBatchDelay,
                                            maxQueue: options.maxQueue, workers: options.workers),
                              metrics: metrics)
        let pool = try ModelPool(specs: options.models, maxLoaded: options.maxModels, home: options.home, device: device,
                                 batcher: batcher, metrics: metrics, log: log)
        let model = pool.defaultSlot.current
        let state = ServerState(options: options, models: pool, batcher: batcher, metrics: metrics, log: log)
        let reloader = Reloader(state: state)
        if !isLoopback(options.host) && options.token == nil {
            log.warning("listening on \(options.host) without --token: anyone who can reach this host can use the service")
        }

        let server = HTTPServer(responder: NERResponder(state: state), threads: options.ioThreads,
                                limits: .init(readTimeout: options.readTimeout, maxBody: options.maxBody))
        let port: Int
        do {
            port = try server.start(host: options.host, port: options.port)
        } catch {
            server.shutdown()
            throw ToolError.unavailable("cannot listen on \(options.host):\(options.port): \(describe(error))")
        }
        batcher.start()
        reloader.start()
        let others = options.models.count > 1 ? " and \(options.models.count - 1) more on demand" : ""
        log.info("listening on http://\(options.host):\(port), model \(model.id) (\(model.name))\(others), \(options.workers) inference thread(s)")
        DispatchQueue.global().async {
            model.warmUp()
            state.markWarm()
            let ms = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
            log.info("ready in \(String(format: "%.0f", ms)) ms")
        }

        stop.wait()
        // /readyz turns 503 first, so a balancer stops sending new work while the requests in flight finish.
        state.markDraining()
        log.info("draining: finishing the requests in flight, then exiting")
        batcher.flush()
        server.drain()
        reloader.stop()
        batcher.stop()
        server.shutdown()
        log.info("stopped")
    }

    private static func describe(_ error: Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }

    private static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
