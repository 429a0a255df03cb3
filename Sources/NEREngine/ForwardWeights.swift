/// Transposed copies (K×N instead of N×K) of the weights the forward pass multiplies by, so every
/// forward product is a plain row-major NN GEMM. Given W as N×K with `transB`, OpenBLAS re-packs W on
/// every call; for the few rows of one LSTM step that costs more than the product itself (measured
/// with 16 rows, 400 gates, 100 hidden: 42 µs a step as N×K, 15 µs as K×N), while for large batches
/// both forms run at the same speed.
final class ForwardWeights: @unchecked Sendable {
    private let storage = Scratch<Float>()
    private(set) var wx: [UnsafePointer<Float>] = []
    private(set) var wh: [UnsafePointer<Float>] = []
    private(set) var outW: UnsafePointer<Float>
    private(set) var convW: UnsafePointer<Float>

    init() {
        outW = UnsafePointer(storage.pointer)
        convW = outW
    }

    /// Copies `p`'s current weights. Training calls this for every batch (the weights move);
    /// a loaded model, whose weights never change, calls it once.
    func fill(from p: Parameters) {
        let l = p.layout
        let specs = l.wx + l.wh + [l.outW, l.convW]
        let base = storage.reserve(specs.reduce(0) { $0 + $1.count })
        var at = 0
        var placed: [UnsafePointer<Float>] = []
        for t in specs {
            let src = p.pointer(t), dst = base + at
            for r in 0..<t.rows {
                for c in 0..<t.cols { dst[c * t.rows + r] = src[r * t.cols + c] }
            }
            placed.append(UnsafePointer(dst))
            at += t.count
        }
        wx = Array(placed[0..<2])
        wh = Array(placed[2..<4])
        outW = placed[4]
        convW = placed[5]
    }
}
