import CBLAS

/// C (m×n) = op(A) · op(B) + beta·C, row-major. A degenerate product still honours beta.
@inline(__always)
func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
          _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
          _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    _ = blasConfigured
    if m == 0 || n == 0 { return }
    if k == 0 {
        if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The engine parallelises over sentences itself (one BLAS call per thread at a time), so OpenBLAS
/// runs single-threaded inside each call; that also keeps results identical from run to run. Set
/// once, before the first call: changing it while another thread is inside OpenBLAS corrupts memory.
let blasConfigured: Bool = {
    openblas_set_num_threads(1)
    return true
}()

func useSingleThreadedBLAS() { _ = blasConfigured }
