import Foundation
import NERCore
import NERSearch
import Testing

@Suite struct BayesianOptimizerTests {
    static func space(_ json: String) throws -> SearchSpace {
        try SearchSpace(JSON.parse(json).objectValue!, field: "space") { ToolError.data($0) }
    }

    /// Branin–Hoo on [-5, 10] × [0, 15]; its minimum, 0.397887, is reached at three points.
    static func branin(_ p: [String: JSON]) -> Double {
        let x1 = p["x1"]!.doubleValue!, x2 = p["x2"]!.doubleValue!
        let b = 5.1 / (4 * Double.pi * Double.pi), c = 5 / Double.pi, t = 1 / (8 * Double.pi)
        let a = x2 - b * x1 * x1 + c * x1 - 6
        return a * a + 10 * (1 - t) * cos(x1) + 10
    }

    /// A sweep of `trials` run `parallel` at a time, the way a dispatcher drives it: whenever a
    /// trial finishes, the free slot gets the next suggestion. Returns the best value found.
    static func runBayes(_ space: SearchSpace, trials: Int, parallel: Int, seed: Int,
                         _ f: ([String: JSON]) -> Double) -> (best: Double, points: [[String: JSON]]) {
        let optimizer = BayesianOptimizer(space: space)
        let initial = optimizer.initialTrials(parallel: parallel)
        var history = BayesianOptimizer.History()
        var all: [[String: JSON]] = []
        // Fill the slots, then replace the oldest running trial with a new suggestion as it finishes.
        var running = optimizer.points(parallel, from: 0, initial: initial, seed: seed, history: history)
        all += running
        history.pending = running
        while !running.isEmpty {
            let done = running.removeFirst()
            history.pending = running
            history.finished.append((done, -f(done)))
            if all.count < trials {
                let next = optimizer.points(1, from: all.count, initial: initial, seed: seed, history: history)
                all += next
                running += next
                history.pending = running
            }
        }
        return (-history.finished.map(\.value).max()!, all)
    }

    static func runRandom(_ space: SearchSpace, trials: Int, seed: Int, _ f: ([String: JSON]) -> Double) -> Double {
        var rng = SeededRandom(seed: UInt64(seed))
        return (0..<trials).map { _ in f(space.draw(&rng)) }.min()!
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    @Test func findsBraninsMinimumFarCloserThanRandomSearch() throws {
        let space = try Self.space(#"{"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}}"#)
        let optimum = 0.397887
        var bayes: [Double] = [], random: [Double] = []
        for seed in 1...10 {
            bayes.append(Self.runBayes(space, trials: 20, parallel: 2, seed: seed, Self.branin).best - optimum)
            random.append(Self.runRandom(space, trials: 20, seed: seed, Self.branin) - optimum)
        }
        let (b, r) = (Self.median(bayes), Self.median(random))
        print("Branin, 20 trials, 10 seeds: median regret bayes \(b), random \(r)")
        #expect(b * 2 <= r, "median regret: bayes \(b), random \(r)")
    }

    /// A noisy learning-rate curve with an integer and a choice beside it, as a real sweep has.
    @Test func beatsRandomSearchOnANoisyMixedSpace() throws {
        let space = try Self.space(#"""
            {"learning_rate": {"log_uniform": [0.00001, 0.1]}, "epochs": {"int": [5, 40]},
             "hidden_size": {"choice": [100, 200, 400]}}
            """#)
        var bayes: [Double] = [], random: [Double] = []
        for seed in 1...10 {
            var noise = SeededRandom(seed: UInt64(1000 + seed))
            let run = Self.runBayes(space, trials: 20, parallel: 2, seed: seed) { p in
                let g = (-2 * log(max(noise.unitDouble(), 1e-300))).squareRoot() * cos(2 * Double.pi * noise.unitDouble())
                return Self.noiseless(p) + 0.02 * g
            }
            // Regret without the noise, of the best point each search tried.
            bayes.append(run.points.map(Self.noiseless).min()!)
            var rng = SeededRandom(seed: UInt64(seed))
            random.append((0..<20).map { _ in Self.noiseless(space.draw(&rng)) }.min()!)
        }
        let (b, r) = (Self.median(bayes), Self.median(random))
        print("noisy mixed space, 20 trials, 10 seeds: median regret bayes \(b), random \(r)")
        #expect(b * 2 <= r, "median regret: bayes \(b), random \(r)")
    }

    /// Lowest (0) at learning rate 10^-2.5, 30 epochs and hidden size 200.
    static func noiseless(_ p: [String: JSON]) -> Double {
        let lr = log10(p["learning_rate"]!.doubleValue!) + 2.5
        let e = (Double(p["epochs"]!.intValue!) - 30) / 35
        return lr * lr + e * e + [100: 0.3, 200: 0, 400: 0.15][p["hidden_size"]!.intValue!]!
    }

    @Test func parallelSuggestionsSpreadOut() throws {
        let space = try Self.space(#"{"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}}"#)
        let optimizer = BayesianOptimizer(space: space)
        var rng = SeededRandom(seed: 3)
        var history = BayesianOptimizer.History()
        for _ in 0..<8 { let p = space.draw(&rng); history.finished.append((p, -Self.branin(p))) }
        let batch = optimizer.points(4, from: 8, initial: 3, seed: 3, history: history)
        let f = batch.map { space.features(of: $0)! }
        for i in 0..<4 {
            for j in 0..<i {
                let d = zip(f[i], f[j]).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
                #expect(d > 0.02, "suggestions \(i) and \(j) are \(d) apart")
            }
        }
    }

    @Test func sameHistoryGivesTheSamePoints() throws {
        let space = try Self.space(#"{"a": {"uniform": [0, 1]}, "b": {"choice": ["x", "y"]}}"#)
        let optimizer = BayesianOptimizer(space: space)
        var history = BayesianOptimizer.History()
        for (i, p) in optimizer.points(3, from: 0, initial: 3, seed: 9, history: history).enumerated() {
            history.finished.append((p, Double(i)))
        }
        let one = optimizer.points(2, from: 3, initial: 3, seed: 9, history: history)
        let two = optimizer.points(2, from: 3, initial: 3, seed: 9, history: history)
        #expect(one == two)
    }

    @Test func failedPointsAreNotSuggestedAgain() throws {
        let space = try Self.space(#"{"k": {"int": [1, 4]}}"#)
        let optimizer = BayesianOptimizer(space: space)
        // k = 4 scores best but failed once; the other values are known. Nothing new but 4 is
        // left, and it must not come back: the optimizer falls back to a known value.
        var history = BayesianOptimizer.History(failed: [["k": 4]])
        history.finished = [(["k": 1], 0.1), (["k": 2], 0.2), (["k": 3], 0.3)]
        var rng = SeededRandom(seed: 1)
        for p in optimizer.suggest(3, history: history, rng: &rng) { #expect(p["k"] != 4) }
    }
}
