import Foundation
import NERCore
import NERSearch
import Testing

@Suite struct SearchSpaceTests {
    let space = try! SearchSpace(JSON.parse(#"""
        {"lr": {"log_uniform": [0.0001, 0.1]}, "drop": {"uniform": [0.1, 0.5]}, "layers": {"int": [1, 4]},
         "opt": {"choice": ["adam", "sgd", "adagrad"]}}
        """#).objectValue!, field: "space") { ToolError.data($0) }

    /// A point read back from its latent coordinates is the same point: ints and choices exactly.
    @Test func pointsSurviveTheirCoordinates() throws {
        var rng = SeededRandom(seed: 5)
        for _ in 0..<200 {
            let p = space.draw(&rng)
            let back = space.point(latent: try #require(space.latent(of: p)))
            #expect(back["layers"] == p["layers"] && back["opt"] == p["opt"])
            #expect(abs(back["lr"]!.doubleValue! / p["lr"]!.doubleValue! - 1) < 1e-9)
            #expect(abs(back["drop"]!.doubleValue! - p["drop"]!.doubleValue!) < 1e-12)
            // drop, layers, lr, then one coordinate per option of opt.
            let f = try #require(space.features(of: p))
            #expect(f.count == 6 && f.allSatisfy { $0 >= 0 && $0 <= 1 })
            #expect(f[3...].reduce(0, +) == 1)
        }
        #expect(space.latent(of: ["lr": 0.01, "drop": 0.2, "layers": 2, "opt": "rmsprop"]) == nil)
    }

    /// A Latin hypercube of n points puts one point in each nth of every parameter's range.
    @Test func spreadUsesEveryStratumOnce() throws {
        var rng = SeededRandom(seed: 11)
        let points = space.spread(8, &rng)
        // Parameters sort by name: drop, layers, lr, opt; drop and lr are continuous.
        for i in [0, 2] {
            let strata = points.map { Int(space.latent(of: $0)![i] * 8) }
            #expect(Set(strata) == Set(0..<8))
        }
        #expect(Set(points.map { $0["layers"]!.intValue! }) == [1, 2, 3, 4])
    }

    @Test func badDistributionsNameTheirField() {
        for (spec, message) in [
            (#"{"a": {"uniform": [2, 1]}}"#, "space.a.uniform must be [lo, hi] with lo <= hi"),
            (#"{"a": {"log_uniform": [0, 1]}}"#, "space.a.log_uniform needs lo > 0"),
            (#"{"a": {"int": [0.5, 3]}}"#, "space.a.int must be [lo, hi] with whole numbers"),
            (#"{"a": {"choice": []}}"#, "space.a.choice must be a non-empty list"),
            (#"{"a": 3}"#, "space.a must be"),
            (#"{}"#, "space must name at least one parameter"),
        ] {
            #expect(throws: ToolError.self) {
                try SearchSpace(JSON.parse(spec).objectValue!, field: "space") { m in
                    #expect(m.hasPrefix(message), "\(m)")
                    return ToolError.data(m)
                }
            }
        }
    }
}
