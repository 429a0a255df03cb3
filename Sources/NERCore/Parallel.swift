import Dispatch

/// Splits `items` into up to `workers` contiguous slices, transforms each on its own thread, and joins
/// the results in order.
public func parallelChunks<T, R>(_ items: [T], workers: Int, _ body: ([T]) -> [R]) -> [R] {
    let n = min(workers, items.count)
    if n <= 1 { return items.isEmpty ? [] : body(items) }
    var parts = [[R]](repeating: [], count: n)
    parts.withUnsafeMutableBufferPointer { out in
        let out = out
        DispatchQueue.concurrentPerform(iterations: n) { w in
            let lo = items.count * w / n, hi = items.count * (w + 1) / n
            out[w] = body(Array(items[lo..<hi]))
        }
    }
    return parts.flatMap { $0 }
}

/// `items.map(body)`, in contiguous slices on up to `workers` threads.
public func parallelMap<T, R>(_ items: [T], workers: Int, _ body: (T) -> R) -> [R] {
    parallelChunks(items, workers: workers) { $0.map(body) }
}
