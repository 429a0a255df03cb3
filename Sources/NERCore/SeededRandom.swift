/// SplitMix64: small, fast and fully determined by its seed, so runs repeat exactly on every
/// platform. The one generator of the toolchain: weight initialisation, shuffles and dropout in the
/// engine, and the trials of a random sweep.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for one purpose (an epoch's shuffle, one batch's dropout) derived from the run seed,
    /// so a resumed run draws exactly what an uninterrupted one would.
    public init(seed: Int, stream: UInt64...) { self.init(seed: seed, stream: stream) }

    public init(seed: Int, stream: [UInt64]) {
        var s = UInt64(bitPattern: Int64(seed)) &* 0x9E37_79B9_7F4A_7C15
        for v in stream { s = (s ^ v) &* 0xBF58_476D_1CE4_E5B9 &+ 0x94D0_49BB_1331_11EB }
        state = s
        _ = next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), as a Float (24 random bits).
    public mutating func unit() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [0, 1), as a Double (53 random bits).
    public mutating func unitDouble() -> Double { Double(next() >> 11) / Double(UInt64(1) << 53) }

    /// Uniform in [-a, a).
    public mutating func uniform(_ a: Float) -> Float { (unit() * 2 - 1) * a }
}
