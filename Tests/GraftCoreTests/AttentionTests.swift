import Testing
@testable import GraftCore

/// The per-head products on [B, S, heads · d] layouts and the masked softmax, against the permute-and-multiply
/// composition they replace, and their gradients against finite differences (second order included).
@Suite struct Attention {
    /// [B, S, heads · d] → [B, heads, S, d], the copy the head ops avoid.
    func split(_ t: Tensor, heads: Int) -> Tensor {
        t.reshaped([t.shape[0], t.shape[1], heads, t.shape[2] / heads]).permuted([0, 2, 1, 3])
    }

    @Test func headProductsMatchThePermutedComposition() {
        let (b, s, t, heads, d) = (2, 5, 3, 3, 4)
        let q = sample([b, s, heads * d], seed: 1), k = sample([b, t, heads * d], seed: 2)
        let v = sample([b, t, heads * d], seed: 3)
        let scores = Tensor.headScores(q, k, heads: heads, alpha: 0.5)
        #expect(scores.shape == [b, heads, s, t])
        expectClose(scores.scalars, (Tensor.gemm(split(q, heads: heads), split(k, heads: heads), transB: true) * 0.5).scalars)
        let p = sample([b, heads, s, t], seed: 5)
        let mixed = Tensor.headMix(p, v, heads: heads, alpha: 2)
        #expect(mixed.shape == [b, s, heads * d])
        let reference = (Tensor.gemm(p, split(v, heads: heads)) * 2).permuted([0, 2, 1, 3]).reshaped([b, s, heads * d])
        expectClose(mixed.scalars, reference.scalars)
        // Transposed: P_hᵀ [t, s] times the heads of a [B, s, heads · d] tensor.
        let q2 = sample([b, s, heads * d], seed: 6)
        let mixedT = Tensor.headMix(p, q2, heads: heads, transposed: true)
        #expect(mixedT.shape == [b, t, heads * d])
        let referenceT = Tensor.gemm(p, split(q2, heads: heads), transA: true).permuted([0, 2, 1, 3])
            .reshaped([b, t, heads * d])
        expectClose(mixedT.scalars, referenceT.scalars)
    }

    @Test func maskedSoftmaxMatchesAddingTheMask() {
        let x = sample([2, 3, 4, 5], seed: 1)
        var maskValues = [Float](repeating: 0, count: 10)
        maskValues[3] = -10_000
        maskValues[9] = -10_000
        maskValues[8] = -2
        let mask = Tensor(maskValues, shape: [2, 1, 1, 5])
        let y = x.softmax(addingRowMask: mask)
        expectClose(y.scalars, (x + mask).softmax(axis: -1).scalars, rtol: 1e-5, atol: 1e-6)
        #expect(y.scalars.enumerated().filter { $0.offset % 5 == 3 && $0.offset < 60 }.allSatisfy { $0.element < 1e-6 })
        expectClose(x.softmax(addingRowMask: mask.reshaped([2, 5])).scalars, y.scalars, rtol: 0, atol: 0)
    }

    @Test func gradientsMatchFiniteDifferences() {
        let heads = 2
        let q = sample([2, 3, 4], seed: 1), k = sample([2, 4, 4], seed: 2), v = sample([2, 4, 4], seed: 3)
        let mask = Tensor([0, 0, -1, 0, 0, -3, 0, 0], shape: [2, 1, 1, 4])
        checkGradients([q, k]) { Tensor.headScores($0[0], $0[1], heads: heads, alpha: 0.7) }
        let p = sample([2, heads, 3, 4], seed: 4)
        checkGradients([p, v]) { Tensor.headMix($0[0], $0[1], heads: heads, alpha: 1.5) }
        checkGradients([p, q]) { Tensor.headMix($0[0], $0[1], heads: heads, transposed: true, alpha: 0.5) }
        checkGradients([p]) { $0[0].softmax(addingRowMask: mask) }
        // The whole attention of three projections, to second order (MAML differentiates through it).
        checkSecondOrder([q, k, v]) { t in
            let probabilities = Tensor.headScores(t[0], t[1], heads: heads, alpha: 0.5).softmax(addingRowMask: mask)
            return Tensor.headMix(probabilities, t[2], heads: heads).tanh()
        }
    }

    @Test func shapesAreChecked() async {
        await #expect(processExitsWith: .failure) {
            _ = Tensor.headScores(Tensor.zeros([2, 3, 6]), Tensor.zeros([2, 3, 6]), heads: 4)
        }
    }
}
