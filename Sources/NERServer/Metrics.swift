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
    private let started = Date().timeIntervalSince1970

    private struct RequestKey: Hashable {
        var path: String
        var status: Int
    }

    func observeRequest(path: String, status: Int, seconds: Double) {
        let key = RequestKey(path: Metrics.paths.contains(path) ? path : "other", status: status)
        lock.lock()
        requests[key, default: 0] += 1
        latency.observe(seconds)
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

    /// The exposition text. `model` labels the info metric; `queue` and `ready` are read by the caller.
    func render(model: LoadedModel, queue: Int, ready: Bool) -> String {
        // The histograms are rendered under the lock: a copy of one would share its counts'
        // storage with the batcher thread that keeps adding to them.
        var histograms = ""
        lock.lock()
        let requests = self.requests, sentences = self.sentences
        let reloads = self.reloads, reloadFailures = self.reloadFailures
        latency.render("ner_request_duration_seconds", "Time from request head to response, in seconds.", into: &histograms)
        batchSizes.render("ner_batch_size", "Sentences per forward pass.", into: &histograms)
        batchSeconds.render("ner_batch_duration_seconds", "Time of one forward pass, in seconds.", into: &histograms)
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
        family("ner_sentences_total", "counter", "Sentences tagged.")
        out += "ner_sentences_total \(sentences)\n"
        family("ner_queue_depth", "gauge", "Requests admitted to the batcher and not yet answered.")
        out += "ner_queue_depth \(queue)\n"
        family("ner_ready", "gauge", "1 when the model is loaded and warmed up and the server is not draining.")
        out += "ner_ready \(ready ? 1 : 0)\n"
        family("ner_model_info", "gauge", "The model being served (always 1; the labels carry the information).")
        out += "ner_model_info{model_id=\"\(escape(model.id))\",name=\"\(escape(model.name))\",version=\"\(model.version.map(String.init) ?? "")\"} 1\n"
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

    private func escape(_ s: String) -> String {
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
        var cumulative = 0
        for (bound, n) in zip(bounds, counts) {
            cumulative += n
            out += "\(name)_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        out += "\(name)_bucket{le=\"+Inf\"} \(count)\n\(name)_sum \(sum)\n\(name)_count \(count)\n"
    }
}

/// Resident set size from /proc/self/statm (Linux), nil elsewhere.
func residentBytes() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
