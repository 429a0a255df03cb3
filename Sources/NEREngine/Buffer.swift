import Foundation

/// A growable, 64-byte aligned scratch array of scalars. Workspaces keep these across batches so
/// the hot loops never allocate; `reserve` only reallocates when a batch is bigger than any before.
final class Scratch<T> {
    private(set) var pointer: UnsafeMutablePointer<T>
    private(set) var capacity: Int

    init(_ capacity: Int = 0) {
        self.capacity = max(capacity, 16)
        pointer = Scratch.allocate(self.capacity)
    }

    deinit { free(pointer) }

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<T> {
        var raw: UnsafeMutableRawPointer?
        posix_memalign(&raw, 64, max(n, 1) * MemoryLayout<T>.stride)
        return raw!.bindMemory(to: T.self, capacity: n)
    }

    /// Makes room for `n` elements (contents are not kept) and returns the pointer.
    @discardableResult
    func reserve(_ n: Int) -> UnsafeMutablePointer<T> {
        if n > capacity {
            free(pointer)
            capacity = n + n / 4
            pointer = Scratch.allocate(capacity)
        }
        return pointer
    }
}

extension Scratch where T: Numeric {
    /// Reserves `n` elements set to zero.
    @discardableResult
    func zeroed(_ n: Int) -> UnsafeMutablePointer<T> {
        let p = reserve(n)
        p.update(repeating: 0, count: n)
        return p
    }
}

/// exp(x) to about 1e-7 relative error (Cephes' range reduction and polynomial). libm's expf and
/// tanhf took over half of inference time; this one is branch-free, so the gate loops vectorise.
/// Swift does not contract `a * b + c` on its own; the explicit fused multiply-adds halve the
/// instruction count of the polynomial.
@inline(__always) func fastExp(_ v: Float) -> Float {
    // Comparisons rather than min/max, so NaN (from a corrupt model's weights) clamps too instead of
    // reaching the Int32 conversion below.
    let low: Float = v > -87.3 ? v : -87.3
    let x: Float = low < 88.3 ? low : 88.3
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer without a libm call.
    let n = Float(12_582_912).addingProduct(x, 1.442_695_04) - 12_582_912
    let r = x.addingProduct(n, -0.693_359_375).addingProduct(n, 2.121_944_4e-4)
    var p: Float = 1.987_569_15e-4
    p = Float(1.398_199_95e-3).addingProduct(p, r)
    p = Float(8.333_451_9e-3).addingProduct(p, r)
    p = Float(4.166_579_59e-2).addingProduct(p, r)
    p = Float(1.666_666_55e-1).addingProduct(p, r)
    p = Float(5.000_000_12e-1).addingProduct(p, r)
    let y = r.addingProduct(p, r * r) + 1
    return y * Float(bitPattern: UInt32(bitPattern: Int32(n) + 127) << 23)
}

@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + fastExp(-x)) }

@inline(__always) func fastTanh(_ x: Float) -> Float { 2 / (1 + fastExp(-2 * x)) - 1 }
