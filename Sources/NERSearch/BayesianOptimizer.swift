import Foundation
import NERCore

/// Suggests the next points of a Bayesian sweep (docs/sweeps.md): a Gaussian process models the
/// metric over the space and each suggestion maximises its expected improvement over the best
/// result so far.
///
/// Points still running are not ignored: each is given the value the model expects there (the
/// "kriging believer"), which removes the uncertainty around it, so several suggestions made at
/// once, or while earlier ones run, spread out instead of piling onto one point. Failed points are
/// kept out of the model (a failure is not a score) and nothing is suggested near them again.
public struct BayesianOptimizer {
    public let space: SearchSpace

    public init(space: SearchSpace) { self.space = space }

    public struct History {
        /// Finished points with the value to maximise.
        public var finished: [(point: [String: JSON], value: Double)]
        public var pending: [[String: JSON]]
        public var failed: [[String: JSON]]

        public init(finished: [(point: [String: JSON], value: Double)] = [], pending: [[String: JSON]] = [],
                    failed: [[String: JSON]] = []) {
            self.finished = finished
            self.pending = pending
            self.failed = failed
        }
    }

    /// How many first trials come from the space-filling design before the model takes over: at
    /// least one per parameter plus one, and at least the trials run at once.
    public func initialTrials(parallel: Int) -> Int { max(parallel, space.parameters.count + 1) }

    /// The points of trials `first ..< first + count` of a sweep: those among the first `initial`
    /// come from a Latin hypercube drawn from `seed`, the rest from `suggest`. Everything is drawn
    /// from `seed` and the trial numbers, so a step repeated on the same history gives the same points.
    public func points(_ count: Int, from first: Int, initial: Int, seed: Int, history: History) -> [[String: JSON]] {
        var design = SeededRandom(seed: seed, stream: 0)
        let spread = space.spread(initial, &design)
        var out: [[String: JSON]] = []
        var known = history
        for trial in first..<(first + count) where trial < initial {
            out.append(spread[trial])
            known.pending.append(spread[trial])
        }
        if out.count < count {
            var rng = SeededRandom(seed: seed, stream: 1, UInt64(first + out.count))
            out += suggest(count - out.count, history: known, rng: &rng)
        }
        return out
    }

    /// Features closer than this (Euclidean, in the unit cube) count as the same point.
    static let nearby = 0.02

    /// `count` new points; the same history and generator give the same points.
    public func suggest(_ count: Int, history: History, rng: inout SeededRandom) -> [[String: JSON]] {
        var observed: [(features: [Double], latent: [Double], value: Double)] = []
        for f in history.finished where f.value.isFinite {
            if let x = space.features(of: f.point), let u = space.latent(of: f.point) { observed.append((x, u, f.value)) }
        }
        let avoid = history.failed.compactMap(space.features)
        var pending = history.pending.compactMap(space.features)
        var chosen: [[String: JSON]] = []
        guard observed.count >= 2, let model = GaussianProcess(x: observed.map(\.features), y: observed.map(\.value)) else {
            for _ in 0..<count {
                let p = drawAway(from: avoid + pending, &rng)
                chosen.append(p)
                pending.append(space.features(of: p)!)
            }
            return chosen
        }
        let best = observed.map(\.value).max()!
        let anchors = observed.sorted { $0.value > $1.value }.prefix(5).map(\.latent)
        for _ in 0..<count {
            let believed = pending.isEmpty ? model : model.refitted(x: pending, y: model.predict(pending).mean) ?? model
            let p = maximiseImprovement(believed, over: best, anchors: anchors, avoid: avoid, &rng)
            chosen.append(p)
            pending.append(space.features(of: p)!)
        }
        return chosen
    }

    /// The candidate with the largest expected improvement: random points over the whole space and
    /// around the best results so far, then two rounds of smaller steps around the winner.
    func maximiseImprovement(_ model: GaussianProcess, over best: Double, anchors: [[Double]], avoid: [[Double]],
                             _ rng: inout SeededRandom) -> [String: JSON] {
        let dims = space.parameters.count
        var candidates: [[Double]] = (0..<1024).map { _ in (0..<dims).map { _ in rng.unitDouble() } }
        for a in anchors {
            for sigma in [0.1, 0.02] {
                for _ in 0..<64 { candidates.append(perturb(a, sigma, &rng)) }
            }
        }
        var winner = bestCandidate(candidates, model, best: best, avoid: avoid)
        for sigma in [0.03, 0.01] {
            guard let w = winner else { break }
            let local = [w.latent] + (0..<128).map { _ in perturb(w.latent, sigma, &rng) }
            winner = bestCandidate(local, model, best: best, avoid: avoid) ?? w
        }
        guard let winner else { return drawAway(from: avoid, &rng) }
        return space.point(latent: winner.latent)
    }

    func bestCandidate(_ latents: [[Double]], _ model: GaussianProcess, best: Double, avoid: [[Double]]) -> (latent: [Double], gain: Double)? {
        var kept: [(latent: [Double], features: [Double])] = []
        for u in latents {
            let p = space.point(latent: u)
            // Scored where the trial would really run: ints and choices rounded to their values.
            guard let f = space.features(of: p), !avoid.contains(where: { distance($0, f) < Self.nearby }) else { continue }
            kept.append((u, f))
        }
        guard !kept.isEmpty else { return nil }
        let (mean, sd) = model.predict(kept.map(\.features))
        let margin = 0.01 * model.scale
        var top: (Int, Double)?
        for i in kept.indices {
            let gain = Self.expectedImprovement(mean: mean[i], sd: sd[i], over: best + margin)
            if gain > top?.1 ?? -1 { top = (i, gain) }
        }
        return top.map { (kept[$0.0].latent, $0.1) }
    }

    /// E[max(f − best, 0)] for f ~ N(mean, sd²).
    static func expectedImprovement(mean: Double, sd: Double, over best: Double) -> Double {
        guard sd > 1e-12 else { return max(mean - best, 0) }
        let z = (mean - best) / sd
        let pdf = exp(-0.5 * z * z) / (2 * Double.pi).squareRoot()
        let cdf = 0.5 * erfc(-z / 2.0.squareRoot())
        return (mean - best) * cdf + sd * pdf
    }

    /// A random point not near any of `points` (after 100 tries, any random point).
    func drawAway(from points: [[Double]], _ rng: inout SeededRandom) -> [String: JSON] {
        var p = space.draw(&rng)
        for _ in 0..<100 {
            guard let f = space.features(of: p), points.contains(where: { distance($0, f) < Self.nearby }) else { break }
            p = space.draw(&rng)
        }
        return p
    }

    func perturb(_ u: [Double], _ sigma: Double, _ rng: inout SeededRandom) -> [Double] {
        u.map { x in
            // Box–Muller: one normal draw from two uniform ones.
            let g = (-2 * log(max(rng.unitDouble(), 1e-300))).squareRoot() * cos(2 * Double.pi * rng.unitDouble())
            return min(max(x + sigma * g, 0), 0.999_999)
        }
    }

    func distance(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
    }
}
