import CBLAS
import Foundation

/// A Gaussian process regression of observed values on points of the unit cube, with a Matérn 5/2
/// kernel: smooth enough for learning curves over hyper-parameters, not so smooth that one odd
/// result bends the whole surface. The values are standardised; the length scale of each coordinate
/// and the noise are chosen by marginal likelihood (a Cholesky factorisation per candidate setting).
public struct GaussianProcess {
    public let lengthScales: [Double]
    public let noise: Double
    let x: [[Double]]
    /// The values the fit was made on, standardised.
    let z: [Double]
    let mean: Double
    let scale: Double
    /// The lower Cholesky factor of K + noise·I, column-major.
    let factor: [Double]
    /// (K + noise·I)⁻¹ y, on standardised values.
    let alpha: [Double]

    /// Fits `y` at `x`, choosing the length scales and the noise. Nil when no setting factorises
    /// (points repeated exactly with no noise can do that; the grid always includes some noise).
    public init?(x: [[Double]], y: [Double]) {
        guard let first = x.first, x.count == y.count else { return nil }
        let d = first.count
        let mean = y.reduce(0, +) / Double(y.count)
        let sd = (y.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(y.count)).squareRoot()
        let scale = sd > 1e-12 ? sd : 1
        let z = y.map { ($0 - mean) / scale }

        // An isotropic grid first, then each coordinate's scale on its own (relevance per parameter).
        var best: (fit: Fit, scales: [Double], noise: Double)?
        for l in [0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 1.6, 2.5] {
            for noise in [1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.2] {
                let scales = Array(repeating: l, count: d)
                if let f = Fit(x: x, z: z, scales: scales, noise: noise), f.logLikelihood > best?.fit.logLikelihood ?? -.infinity {
                    best = (f, scales, noise)
                }
            }
        }
        guard var chosen = best else { return nil }
        if d > 1 {
            for _ in 0..<2 {
                for i in 0..<d {
                    for m in [0.25, 0.5, 2.0, 4.0] {
                        var scales = chosen.scales
                        scales[i] = min(max(scales[i] * m, 0.02), 20)
                        if let f = Fit(x: x, z: z, scales: scales, noise: chosen.noise), f.logLikelihood > chosen.fit.logLikelihood {
                            chosen = (f, scales, chosen.noise)
                        }
                    }
                }
            }
        }
        self.init(x: x, z: z, mean: mean, scale: scale, scales: chosen.scales, noise: chosen.noise, fit: chosen.fit)
    }

    /// The same kernel on more data (pending points with their believed values): no new search.
    public func refitted(x more: [[Double]], y moreY: [Double]) -> GaussianProcess? {
        let allX = x + more
        let all = z + moreY.map { ($0 - mean) / scale }
        guard let f = Fit(x: allX, z: all, scales: lengthScales, noise: noise) else { return nil }
        return GaussianProcess(x: allX, z: all, mean: mean, scale: scale, scales: lengthScales, noise: noise, fit: f)
    }

    private init(x: [[Double]], z: [Double], mean: Double, scale: Double, scales: [Double], noise: Double, fit: Fit) {
        self.x = x
        self.z = z
        self.mean = mean
        self.scale = scale
        self.lengthScales = scales
        self.noise = noise
        factor = fit.factor
        alpha = fit.alpha
    }

    /// Posterior mean and standard deviation at each of `points`, in the units of the values.
    /// One triangular solve for all of them at once (BLAS dtrsm).
    public func predict(_ points: [[Double]]) -> (mean: [Double], sd: [Double]) {
        let n = x.count, m = points.count
        guard m > 0 else { return ([], []) }
        var cross = GaussianProcess.kernel(x, points, scales: lengthScales)  // n × m, column-major
        var mu = [Double](repeating: 0, count: m)
        cblas_dgemv(CblasColMajor, CblasTrans, Int32(n), Int32(m), 1, cross, Int32(n), alpha, 1, 0, &mu, 1)
        cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, Int32(n), Int32(m), 1,
                    factor, Int32(n), &cross, Int32(n))
        var sd = [Double](repeating: 0, count: m)
        cross.withUnsafeBufferPointer { v in
            for j in 0..<m {
                var s = 0.0
                for i in 0..<n { s += v[j * n + i] * v[j * n + i] }
                sd[j] = max(1 - s, 1e-12).squareRoot() * scale
            }
        }
        return (mu.map { mean + $0 * scale }, sd)
    }

    /// Matérn 5/2 between every point of `a` and of `b`, as an |a| × |b| column-major matrix.
    static func kernel(_ a: [[Double]], _ b: [[Double]], scales: [Double]) -> [Double] {
        let inverse = scales.map { 1 / $0 }
        var k = [Double](repeating: 0, count: a.count * b.count)
        let root5 = 5.0.squareRoot()
        for (j, q) in b.enumerated() {
            for (i, p) in a.enumerated() {
                var r2 = 0.0
                for t in 0..<p.count {
                    let dt = (p[t] - q[t]) * inverse[t]
                    r2 += dt * dt
                }
                let r = r2.squareRoot()
                k[j * a.count + i] = (1 + root5 * r + 5 * r2 / 3) * exp(-root5 * r)
            }
        }
        return k
    }

    /// One kernel setting factorised: the Cholesky factor, alpha, and the log marginal likelihood.
    struct Fit {
        var factor: [Double]
        var alpha: [Double]
        var logLikelihood: Double

        init?(x: [[Double]], z: [Double], scales: [Double], noise: Double) {
            let n = x.count
            var k = GaussianProcess.kernel(x, x, scales: scales)
            for i in 0..<n { k[i * n + i] += noise }
            var info: Int32 = 0
            var size = Int32(n)
            var lower = CChar(UInt8(ascii: "L"))
            dpotrf_(&lower, &size, &k, &size, &info)
            guard info == 0 else { return nil }
            var a = z
            cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, Int32(n), k, Int32(n), &a, 1)
            let fit = a.reduce(0) { $0 + $1 * $1 }
            cblas_dtrsv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, Int32(n), k, Int32(n), &a, 1)
            var logDet = 0.0
            for i in 0..<n { logDet += log(k[i * n + i]) }
            factor = k
            alpha = a
            logLikelihood = -0.5 * fit - logDet - 0.5 * Double(n) * log(2 * Double.pi)
        }
    }
}
