import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Counters and histograms for `GET /metrics`, in the Prometheus text format (version 0.0.4).
/// One lock guards them all: a handful of additions per request costs far less than the request.
final class Metrics: @unchecked Sendable {
    /// The paths requests are counted under; anything else is `other`, so a scanner probing random
    /// URLs cannot grow the label set without bound.
    static let paths: Set<String> = ["/ner", "/sim", "/healthz", "/readyz", "/metrics", "/v1/models"]
    /// The label of every `/v1/models/NAME/ner` path, whatever NAME.
    static let modelNerPath = "/v1/models/{name}/ner"
    static let latencyBuckets: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    static let batchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]

    private let lock = NSLock()
    private var requests: [RequestKey: Int] = [:]
    private var latency = Histogram(bounds: latencyBuckets)
    private var batchSizes = Histogram(bounds: batchBuckets)
    private var batchSeconds = Histogram(bounds: latencyBuckets)
    private var sentences = 0
    private var reloads = 0
    private var reloadFailures = 0
    /// Per served model (its name as given on the command line), for the requests that named one.
    private var modelRequests: [ModelRequestKey: Int] = [:]
    private var modelLatency: [String: Histogram] = [:]
    private var loads: [ModelRequestKey: Int] = [:]
    private var loadSeconds: [String: Histogram] = [:]
    private var evictions: [String: Int] = [:]
    private let started = Date().timeIntervalSince1970

    private struct RequestKey: Hashable {
        var path: String
        var status: Int
    }

    /// A model's requests by status, or its loads by result.
    private struct ModelRequestKey: Hashable {
        var model: String
        var label: String
    }

    /// What `/metrics` says about one served model.
    struct ModelStatus {
        /// The name it is served as.
        var name: String
        var loaded: LoadedModel?
        /// Requests admitted for it and not yet answered.
        var queue: Int
    }

    /// Counts one answered request; `model` is the served model it was for, when it named one.
    func observeRequest(path: String, status: Int, seconds: Double, model: String? = nil) {
        let label = Metrics.paths.contains(path) ? path : Metrics.isModelNerPath(path) ? Metrics.modelNerPath : "other"
        let key = RequestKey(path: label, status: status)
        lock.lock()
        requests[key, default: 0] += 1
        latency.observe(seconds)
        if let model {
            modelRequests[ModelRequestKey(model: model, label: String(status)), default: 0] += 1
            modelLatency[model, default: Histogram(bounds: Metrics.latencyBuckets)].observe(seconds)
        }
        lock.unlock()
    }

    private static func isModelNerPath(_ path: String) -> Bool {
        path.hasPrefix("/v1/models/") && path.hasSuffix("/ner")
    }

    func observeLoad(model: String, succeeded: Bool, seconds: Double) {
        lock.lock()
        loads[ModelRequestKey(model: model, label: succeeded ? "success" : "failure"), default: 0] += 1
        if succeeded { loadSeconds[model, default: Histogram(bounds: Metrics.latencyBuckets)].observe(seconds) }
        lock.unlock()
    }

    func observeEviction(model: String) {
        lock.lock()
        evictions[model, default: 0] += 1
        lock.unlock()
    }

    func observeBatch(sentences n: Int, seconds: Double) {
        lock.lock()
        batchSizes.observe(Double(n))
        batchSeconds.observe(seconds)
        sentences += n
        lock.unlock()
    }

    func observeReload(succeeded: Bool) {
        lock.lock()
        if succeeded { reloads += 1 } else { reloadFailures += 1 }
        lock.unlock()
    }

    /// The exposition text. `models` (the default first) label the per-model metrics; `queue` and
    /// `ready` are read by the caller.
    func render(models: [ModelStatus], queue: Int, ready: Bool) -> String {
        // The histograms are rendered under the lock: a copy of one would share its counts'
        // storage with the batcher thread that keeps adding to them.
        var histograms = "", modelHistograms = ""
        lock.lock()
        let requests = self.requests, sentences = self.sentences
        let reloads = self.reloads, reloadFailures = self.reloadFailures
        let modelRequests = self.modelRequests, loads = self.loads, evictions = self.evictions
        latency.render("ner_request_duration_seconds", "Time from request head to response, in seconds.", into: &histograms)
        batchSizes.render("ner_batch_size", "Sentences per forward pass.", into: &histograms)
        batchSeconds.render("ner_batch_duration_seconds", "Time of one forward pass, in seconds.", into: &histograms)
        Histogram.render(modelLatency, "ner_model_request_duration_seconds",
                         "Time from request head to response of the requests for one model, in seconds.",
                         into: &modelHistograms)
        Histogram.render(loadSeconds, "ner_model_load_duration_seconds",
                         "Time to load a model on its first request, in seconds.", into: &modelHistograms)
        lock.unlock()

        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        family("ner_requests_total", "counter", "HTTP requests answered, by path and status code.")
        for (key, n) in requests.sorted(by: { ($0.key.path, $0.key.status) < ($1.key.path, $1.key.status) }) {
            out += "ner_requests_total{path=\"\(key.path)\",status=\"\(key.status)\"} \(n)\n"
        }
        family("ner_request_errors_total", "counter", "HTTP requests answered with a 4xx or 5xx status.")
        out += "ner_request_errors_total \(requests.filter { $0.key.status >= 400 }.values.reduce(0, +))\n"
        out += histograms
        family("ner_model_requests_total", "counter", "Tagging requests answered, by served model and status code.")
        for (key, n) in modelRequests.sorted(by: { ($0.key.model, $0.key.label) < ($1.key.model, $1.key.label) }) {
            out += "ner_model_requests_total{model=\"\(Metrics.escape(key.model))\",status=\"\(key.label)\"} \(n)\n"
        }
        out += modelHistograms
        family("ner_sentences_total", "counter", "Sentences tagged.")
        out += "ner_sentences_total \(sentences)\n"
        family("ner_queue_depth", "gauge", "Requests admitted to the batcher and not yet answered.")
        out += "ner_queue_depth \(queue)\n"
        family("ner_model_queue_depth", "gauge", "Requests admitted for one served model and not yet answered.")
        for m in models { out += "ner_model_queue_depth{model=\"\(Metrics.escape(m.name))\"} \(m.queue)\n" }
        family("ner_ready", "gauge", "1 when the model is loaded and warmed up and the server is not draining.")
        out += "ner_ready \(ready ? 1 : 0)\n"
        family("ner_model_info", "gauge", "The models loaded now (always 1; the labels carry the information).")
        for m in models {
            guard let model = m.loaded else { continue }
            out += "ner_model_info{model_id=\"\(Metrics.escape(model.id))\",name=\"\(Metrics.escape(model.name))\","
                + "version=\"\(model.version.map(String.init) ?? "")\",model=\"\(Metrics.escape(m.name))\"} 1\n"
        }
        family("ner_model_loads_total", "counter", "Loads of a model on its first request, by served model and result.")
        for (key, n) in loads.sorted(by: { ($0.key.model, $0.key.label) < ($1.key.model, $1.key.label) }) {
            out += "ner_model_loads_total{model=\"\(Metrics.escape(key.model))\",result=\"\(key.label)\"} \(n)\n"
        }
        family("ner_model_evictions_total", "counter", "Models unloaded to stay within --max-models, by served model.")
        for (model, n) in evictions.sorted(by: { $0.key < $1.key }) {
            out += "ner_model_evictions_total{model=\"\(Metrics.escape(model))\"} \(n)\n"
        }
        family("ner_model_reloads_total", "counter", "Model reloads, by result.")
        out += "ner_model_reloads_total{result=\"success\"} \(reloads)\n"
        out += "ner_model_reloads_total{result=\"failure\"} \(reloadFailures)\n"
        family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.")
        out += "process_start_time_seconds \(started)\n"
        if let rss = residentBytes() {
            family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
            out += "process_resident_memory_bytes \(rss)\n"
        }
        return out
    }

    fileprivate static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// A Prometheus histogram: cumulative bucket counts, a sum and a count.
private struct Histogram {
    let bounds: [Double]
    var counts: [Int]
    var sum = 0.0
    var count = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = [Int](repeating: 0, count: bounds.count)
    }

    mutating func observe(_ value: Double) {
        if let i = bounds.firstIndex(where: { value <= $0 }) { counts[i] += 1 }
        sum += value
        count += 1
    }

    func render(_ name: String, _ help: String, into out: inout String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        renderSeries(name, labels: "", into: &out)
    }

    /// One family of histograms, one series per model.
    static func render(_ byModel: [String: Histogram], _ name: String, _ help: String, into out: inout String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (model, h) in byModel.sorted(by: { $0.key < $1.key }) {
            h.renderSeries(name, labels: "model=\"\(Metrics.escape(model))\"", into: &out)
        }
    }

    /// The series lines; `labels` go before `le` on the buckets and alone on the sum and count.
    private func renderSeries(_ name: String, labels: String, into out: inout String) {
        let braced = labels.isEmpty ? "" : "{\(labels)}"
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative = 0
        for (bound, n) in zip(bounds, counts) {
            cumulative += n
            out += "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(cumulative)\n"
        }
        out += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(count)\n\(name)_sum\(braced) \(sum)\n\(name)_count\(braced) \(count)\n"
    }
}

/// Resident set size from /proc/self/statm (Linux), nil elsewhere.
func residentBytes() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
