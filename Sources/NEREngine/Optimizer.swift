import Foundation

/// Adam (or plain SGD) over the dense block and, sparsely, over the word-vector rows a batch touched
/// (the "lazy" variant: rows not in the batch keep their moments), so a 400k-word vocabulary costs
/// nothing per step beyond the words actually seen.
final class Optimizer {
    let adam: Bool
    let beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8
    private(set) var step = 0
    let denseCount: Int, wordDim: Int, wordCount: Int
    let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    let wm: UnsafeMutablePointer<Float>, wv: UnsafeMutablePointer<Float>

    init(adam: Bool, denseCount: Int, wordCount: Int, wordDim: Int) {
        self.adam = adam
        self.denseCount = denseCount
        self.wordCount = wordCount
        self.wordDim = wordDim
        let dn = max(denseCount, 1), wn = max(wordCount * wordDim, 1)
        m = .allocate(capacity: dn); m.initialize(repeating: 0, count: dn)
        v = .allocate(capacity: dn); v.initialize(repeating: 0, count: dn)
        wm = .allocate(capacity: wn); wm.initialize(repeating: 0, count: wn)
        wv = .allocate(capacity: wn); wv.initialize(repeating: 0, count: wn)
    }

    deinit { m.deallocate(); v.deallocate(); wm.deallocate(); wv.deallocate() }

    /// One update. `rows[i]` is the word id whose gradient is row i of `wordGrads`.
    func update(_ p: Parameters, grads: UnsafePointer<Float>, rows: ArraySlice<Int32>, wordGrads: UnsafePointer<Float>, lr: Float) {
        step += 1
        let dw = wordDim
        if !adam {
            for i in 0..<denseCount { p.dense[i] -= lr * grads[i] }
            for (r, w) in rows.enumerated() {
                let dst = p.words + Int(w) * dw
                for j in 0..<dw { dst[j] -= lr * wordGrads[r * dw + j] }
            }
            return
        }
        let c1 = 1 - powf(beta1, Float(step)), c2 = 1 - powf(beta2, Float(step))
        let a = lr * sqrtf(c2) / c1
        func apply(_ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                   _ v: UnsafeMutablePointer<Float>, _ n: Int) {
            for i in 0..<n {
                m[i] = beta1 * m[i] + (1 - beta1) * g[i]
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
                w[i] -= a * m[i] / (sqrtf(v[i]) + eps)
            }
        }
        apply(p.dense, grads, m, v, denseCount)
        for (r, w) in rows.enumerated() {
            let o = Int(w) * dw
            apply(p.words + o, wordGrads + r * dw, wm + o, wv + o, dw)
        }
    }

    /// Sets the step count: from a checkpoint (the moments are read into `m`, `v`, `wm`, `wv`), or
    /// after an update made on the GPU.
    func restore(step: Int) { self.step = step }
}
