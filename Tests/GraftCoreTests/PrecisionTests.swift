import CGraftBF16
import Testing
@testable import GraftCore

/// bf16 matrix products: the rounding, the kernel (or its emulation on CPUs without AVX-512 BF16) against a
/// double-precision product of the rounded operands, and gradients that keep their forward op's precision.
@Suite struct BFloat16Products {
    /// Nearest bfloat16 by distance, ties to the even one, subnormals to ±0 (as the hardware conversion), written
    /// independently of the kernel's bit trick.
    static func nearest(_ x: Float) -> Float {
        if x.isNaN || x.isInfinite { return x }
        if x.isSubnormal { return x.sign == .minus ? -0.0 : 0.0 }
        let bits = x.bitPattern & 0xffff_0000
        let down = Float(bitPattern: bits), up = Float(bitPattern: bits &+ 0x1_0000)
        // Past the largest bfloat16 the next value up is 2¹²⁸, which rounds on to infinity.
        let upValue = up.isInfinite ? (x.sign == .minus ? -0x1p128 : 0x1p128) : Double(up)
        let (dDown, dUp) = (abs(Double(x) - Double(down)), abs(Double(x) - upValue))
        if dDown != dUp { return dDown < dUp ? down : up }
        return (bits >> 16) & 1 == 0 ? down : up
    }

    @Test func roundingIsNearestTiesToEven() {
        var values: [Float] = [0, -0.0, 1, -1, 1 + 1 / 256, 1 + 3 / 256, 1 + 1 / 512, 1 + 3 / 512, 3.14159265,
                               -2.7182818, 65504, 1e-30, -1e30, .infinity, -.infinity, .greatestFiniteMagnitude,
                               Float.leastNonzeroMagnitude, -Float.leastNormalMagnitude / 2, Float.leastNormalMagnitude]
        var rng = RandomGenerator(seed: 11)
        values += (0..<2000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x7f7f_ffff) }
        var out = [Float](repeating: 0, count: values.count)
        graft_bf16_round(values, &out, values.count)
        for (x, y) in zip(values, out) {
            #expect(y.bitPattern == Self.nearest(x).bitPattern, "round(\(x)) = \(y), expected \(Self.nearest(x))")
        }
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: the even one, 1, wins; 1 + 3·2⁻⁸ goes up to 1 + 2⁻⁶.
        #expect(out[4] == 1 && out[5] == 1 + 1 / 64)
        var nanOut: [Float] = [0]
        graft_bf16_round([Float.nan], &nanOut, 1)
        #expect(nanOut[0].isNaN)
    }

    /// op(a) · op(b) for every transpose pair, sizes off the kernel's 14 × 32 tiles and an odd depth.
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func productsMatchTheRoundedOperandsProduct(_ transposes: (Bool, Bool)) {
        let (transA, transB) = transposes
        for (m, n, k) in [(1, 1, 1), (17, 33, 31), (29, 70, 129)] {
            let a = sample(transA ? [k, m] : [m, k], seed: 1), b = sample(transB ? [n, k] : [k, n], seed: 2)
            let y = withMatmulPrecision(.bfloat16) { Tensor.gemm(a, b, transA: transA, transB: transB) }
            let (ra, rb) = (a.scalars.map(Self.nearest), b.scalars.map(Self.nearest))
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0, magnitude = 0.0
                    for p in 0..<k {
                        let x = Double(ra[transA ? p * m + i : i * k + p]), w = Double(rb[transB ? j * k + p : p * n + j])
                        sum += x * w
                        magnitude += abs(x * w)
                    }
                    let got = Double(y.scalars[i * n + j])
                    #expect(abs(got - sum) <= 1e-5 * magnitude + 1e-6, "(\(m), \(n), \(k)) [\(i), \(j)]: \(got) vs \(sum)")
                }
            }
            // The operands really were rounded: fp32 gives a different product.
            if k > 1 {
                #expect(Tensor.gemm(a, b, transA: transA, transB: transB).scalars != y.scalars)
            }
        }
    }

    /// With the hardware, its kernel and the emulation (rounding, then sgemm) give the same product up to the
    /// order of the fp32 sums, alpha and beta included. (Without it, only the emulation runs, tested above.)
    @Test(.enabled(if: MatmulPrecision.hardware, "this CPU has no AVX-512 BF16"))
    func hardwareAndEmulationAgree() {
        let (m, n, k) = (45, 67, 300)
        let a = sample([m, k], seed: 3), b = sample([n, k], seed: 4), c0 = sample([m, n], seed: 5)
        var (x, y) = (c0.scalars, c0.scalars)
        gemmKernel(.bfloat16, transA: false, transB: true, m: m, n: n, k: k, alpha: 0.75, a.pointer, lda: k,
                   b.pointer, ldb: k, beta: 0.5, &x, ldc: n)
        emulatedBF16Gemm(transA: false, transB: true, m: m, n: n, k: k, alpha: 0.75, a.pointer, lda: k, b.pointer,
                         ldb: k, beta: 0.5, &y, ldc: n)
        expectClose(x, y, rtol: 1e-5, atol: 1e-5)
        #expect(x != c0.scalars)
    }

    /// A backward rule runs its GEMMs in the precision its forward op ran in, wherever the backward pass runs.
    @Test func gradientsKeepTheirForwardPrecision() {
        let x = sample([6, 40], seed: 6), w = sample([24, 40], seed: 7)
        x.requiresGrad = true
        w.requiresGrad = true
        let g = sample([6, 24], seed: 8)
        let y = withMatmulPrecision(.bfloat16) { Tensor.linear(x, weight: w) }
        let outside = grad(of: y, wrt: [x, w], gradOutput: g)
        let inside = withMatmulPrecision(.bfloat16) { grad(of: Tensor.linear(x, weight: w), wrt: [x, w], gradOutput: g) }
        let fp32 = grad(of: Tensor.linear(x, weight: w), wrt: [x, w], gradOutput: g)
        for i in 0..<2 {
            #expect(outside[i].scalars == inside[i].scalars)
            #expect(outside[i].scalars != fp32[i].scalars)
            expectClose(outside[i].scalars, fp32[i].scalars, rtol: 2e-2, atol: 2e-2)
        }
    }

    /// Attention's per-head products in bf16 stay within bf16's precision of fp32, forward and backward.
    @Test func attentionNearFP32() {
        let (q, k) = (sample([2, 5, 16], seed: 9), sample([2, 7, 16], seed: 10))
        q.requiresGrad = true
        k.requiresGrad = true
        let run = { () -> [Tensor] in
            let s = Tensor.headScores(q, k, heads: 4, alpha: 0.5)
            return [s] + grad(of: s.sum(), wrt: [q, k])
        }
        let (low, full) = (withMatmulPrecision(.bfloat16, run), run())
        for (l, f) in zip(low, full) { expectClose(l.scalars, f.scalars, rtol: 2e-2, atol: 2e-2) }
        #expect(low[0].scalars != full[0].scalars)
    }
}
