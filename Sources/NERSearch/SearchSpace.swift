import Foundation
import NERCore

/// The hyper-parameters a random or Bayesian sweep varies, each with its distribution:
/// `{"uniform": [lo, hi]}`, `{"log_uniform": [lo, hi]}`, `{"int": [lo, hi]}` or `{"choice": [...]}`
/// (docs/sweeps.md).
///
/// Every parameter also has a latent coordinate in [0, 1) (linear, or logarithmic for log_uniform),
/// where points are drawn and perturbed; the Gaussian process sees `features`, which are the latent
/// coordinates with each choice spread over one coordinate per option (one-hot), so that options
/// have no false order.
public struct SearchSpace: Sendable {
    public enum Distribution: Sendable, Equatable {
        case uniform(Double, Double)
        case logUniform(Double, Double)
        case int(Int64, Int64)
        case choice([JSON])
    }

    public struct Parameter: Sendable {
        public let name: String
        public let distribution: Distribution
    }

    /// Sorted by name, so draws repeat whatever order the spec file lists them in.
    public let parameters: [Parameter]

    /// Reads `{field: distribution}`; `bad` turns a message into the caller's error (it names the file).
    public init(_ spec: [String: JSON], field: String, bad: (String) -> ToolError) throws {
        guard !spec.isEmpty else { throw bad("\(field) must name at least one parameter") }
        parameters = try spec.keys.sorted().map { key in
            Parameter(name: key, distribution: try SearchSpace.distribution(spec[key]!, path: "\(field).\(key)", bad: bad))
        }
    }

    static func distribution(_ d: JSON, path: String, bad: (String) -> ToolError) throws -> Distribution {
        guard let o = d.objectValue, o.count == 1, let (kind, arg) = o.first else {
            throw bad("\(path) must be {\"uniform\": [lo, hi]}, {\"log_uniform\": [lo, hi]}, {\"int\": [lo, hi]} or {\"choice\": [...]}")
        }
        let list = arg.arrayValue ?? []
        if kind == "choice" {
            guard !list.isEmpty else { throw bad("\(path).choice must be a non-empty list") }
            return .choice(list)
        }
        guard list.count == 2, let lo = list[0].doubleValue, let hi = list[1].doubleValue, lo.isFinite, hi.isFinite, lo <= hi else {
            throw bad("\(path).\(kind) must be [lo, hi] with lo <= hi")
        }
        switch kind {
        case "uniform": return .uniform(lo, hi)
        case "log_uniform":
            guard lo > 0 else { throw bad("\(path).log_uniform needs lo > 0") }
            return .logUniform(lo, hi)
        case "int":
            guard lo == lo.rounded(), hi == hi.rounded(), abs(lo) < 1e15, abs(hi) < 1e15 else {
                throw bad("\(path).int must be [lo, hi] with whole numbers")
            }
            return .int(Int64(lo), Int64(hi))
        default: throw bad("\(path): unknown distribution '\(kind)' (uniform, log_uniform, int, choice)")
        }
    }

    // MARK: Drawing

    /// One point drawn at random, each parameter independently.
    public func draw(_ rng: inout SeededRandom) -> [String: JSON] {
        var point: [String: JSON] = [:]
        for p in parameters {
            switch p.distribution {
            case .choice(let list): point[p.name] = list[Int(rng.next() % UInt64(list.count))]
            case .int(let lo, let hi):
                // The unused draw keeps the sequence of earlier versions, so a seed names the same trials.
                _ = rng.unitDouble()
                point[p.name] = .int(lo + Int64(rng.next() % UInt64(hi - lo + 1)))
            default: point[p.name] = value(of: p, atLatent: rng.unitDouble())
            }
        }
        return point
    }

    /// `count` points spread over the space (a Latin hypercube: each parameter's range is cut in
    /// `count` strata and every stratum is used once), so a few first trials cover it evenly.
    public func spread(_ count: Int, _ rng: inout SeededRandom) -> [[String: JSON]] {
        var columns: [[Double]] = []
        for _ in parameters {
            var strata = Array(0..<count)
            strata.shuffle(using: &rng)
            columns.append(strata.map { (Double($0) + rng.unitDouble()) / Double(count) })
        }
        return (0..<count).map { i in point(latent: columns.map { $0[i] }) }
    }

    // MARK: Coordinates

    /// The point whose latent coordinates (one per parameter, in [0, 1)) are `u`.
    public func point(latent u: [Double]) -> [String: JSON] {
        var point: [String: JSON] = [:]
        for (p, x) in zip(parameters, u) { point[p.name] = value(of: p, atLatent: x) }
        return point
    }

    func value(of p: Parameter, atLatent raw: Double) -> JSON {
        let u = min(max(raw, 0), 1)
        switch p.distribution {
        case .uniform(let lo, let hi): return .double(lo + (hi - lo) * u)
        case .logUniform(let lo, let hi): return .double(exp(log(lo) + (log(hi) - log(lo)) * u))
        case .int(let lo, let hi):
            let n = hi - lo + 1
            return .int(lo + min(Int64((Double(n) * u).rounded(.down)), n - 1))
        case .choice(let list): return list[min(Int(Double(list.count) * u), list.count - 1)]
        }
    }

    /// The latent coordinates of `point`, nil when a value is missing or outside the space.
    public func latent(of point: [String: JSON]) -> [Double]? {
        var u: [Double] = []
        for p in parameters {
            guard let v = point[p.name] else { return nil }
            switch p.distribution {
            case .uniform(let lo, let hi):
                guard let x = v.doubleValue else { return nil }
                u.append(hi > lo ? (x - lo) / (hi - lo) : 0.5)
            case .logUniform(let lo, let hi):
                guard let x = v.doubleValue, x > 0 else { return nil }
                u.append(hi > lo ? (log(x) - log(lo)) / (log(hi) - log(lo)) : 0.5)
            case .int(let lo, let hi):
                guard let x = v.doubleValue else { return nil }
                u.append((x - Double(lo) + 0.5) / Double(hi - lo + 1))
            case .choice(let list):
                guard let i = list.firstIndex(of: v) else { return nil }
                u.append((Double(i) + 0.5) / Double(list.count))
            }
        }
        return u
    }

    /// The coordinates the Gaussian process works in: latent coordinates, one-hot for choices.
    public func features(of point: [String: JSON]) -> [Double]? {
        guard let u = latent(of: point) else { return nil }
        var f: [Double] = []
        for (p, x) in zip(parameters, u) {
            if case .choice(let list) = p.distribution {
                let i = min(Int(Double(list.count) * x), list.count - 1)
                f += (0..<list.count).map { $0 == i ? 1 : 0 }
            } else {
                f.append(x)
            }
        }
        return f
    }
}
