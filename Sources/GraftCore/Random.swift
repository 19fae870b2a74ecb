/// Graft's own seeded generator (xoshiro256**, seeded through SplitMix64): the same seed gives the same
/// stream on every platform and every run. Pass it explicitly (`inout`) wherever randomness is needed.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable, Codable {
    public private(set) var state: [UInt64]

    public init(seed: UInt64) {
        var s = seed
        state = (0..<4).map { _ in
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Restores a generator from a saved `state`.
    public init(state: [UInt64]) {
        require(state.count == 4 && state.contains { $0 != 0 }, "RandomGenerator: state must be 4 words, not all zero")
        self.state = state
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// Standard normal by the Box–Muller transform (one value per call, for a simple reproducible stream).
    public mutating func nextNormal() -> Float {
        let u1 = Double(next() >> 11) * 0x1p-53
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * log(1 - u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// An independent stream derived from this seed and an index (a rank, a worker, an epoch).
    public func split(_ index: UInt64) -> RandomGenerator {
        var g = self
        let a = g.next(), b = g.next()
        return RandomGenerator(seed: a ^ (b &* 0x9E37_79B9_7F4A_7C15) ^ (index &* 0xD1B5_4A32_D192_ED03))
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
