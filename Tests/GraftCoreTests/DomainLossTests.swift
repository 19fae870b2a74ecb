import Foundation
import Testing
@testable import GraftCore
@testable import GraftNN

/// Rows of a tensor [n, d] as Double vectors.
private func rows(_ t: Tensor) -> [[Double]] {
    (0..<t.shape[0]).map { i in (0..<t.shape[1]).map { Double(t.pointer[i * t.shape[1] + $0]) } }
}

private func squaredDistance(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) }

/// The biased MMD² by its definition, pair by pair, in Double.
private func referenceMMD(_ s: [[Double]], _ t: [[Double]], sigmas: [Double]) -> Double {
    func meanKernel(_ a: [[Double]], _ b: [[Double]], _ sigma: Double) -> Double {
        var sum = 0.0
        for x in a { for y in b { sum += Foundation.exp(-squaredDistance(x, y) / (2 * sigma * sigma)) } }
        return sum / Double(a.count * b.count)
    }
    return sigmas.map { meanKernel(s, s, $0) + meanKernel(t, t, $0) - 2 * meanKernel(s, t, $0) }.reduce(0, +)
        / Double(sigmas.count)
}

/// Deep CORAL's loss by its definition: unbiased covariances entry by entry, in Double.
private func referenceCORAL(_ s: [[Double]], _ t: [[Double]]) -> Double {
    let d = s[0].count
    func covariance(_ x: [[Double]]) -> [[Double]] {
        let mean = (0..<d).map { j in x.map { $0[j] }.reduce(0, +) / Double(x.count) }
        return (0..<d).map { i in (0..<d).map { j in
            x.map { ($0[i] - mean[i]) * ($0[j] - mean[j]) }.reduce(0, +) / Double(x.count - 1)
        } }
    }
    let (cs, ct) = (covariance(s), covariance(t))
    var sum = 0.0
    for i in 0..<d { for j in 0..<d { sum += (cs[i][j] - ct[i][j]) * (cs[i][j] - ct[i][j]) } }
    return sum / Double(4 * d * d)
}

@Suite struct DomainLossTests {
    @Test func gradientReversalIsIdentityForwardAndNegatedScaledBackward() {
        let x = sample([3, 4], seed: 1)
        x.requiresGrad = true
        let y = x.reversingGradient(scale: 0.3)
        #expect(y.scalars == x.scalars)
        let upstream = sample([3, 4], seed: 2)
        let g = grad(of: (y * upstream).sum(), wrt: [x])[0]
        expectClose(g.scalars, upstream.scalars.map { -0.3 * $0 }, rtol: 1e-6, atol: 0)
    }

    @Test func coralMatchesItsDefinitionAndFiniteDifferences() {
        let s = sample([5, 3], seed: 4), t = sample([4, 3], seed: 5, low: -2, high: 1)
        let ours = Double(Tensor.coralLoss(source: s, target: t).item)
        let reference = referenceCORAL(rows(s), rows(t))
        #expect(abs(ours - reference) <= 1e-6 * max(1, abs(reference)), "\(ours) vs \(reference)")
        checkGradients([s, t], eps: 1e-2, tolerance: 1e-2) { Tensor.coralLoss(source: $0[0], target: $0[1]) }
    }

    @Test func coralOfOneDimensionIsTheSquaredVarianceGap() {
        // d = 1: (var_s − var_t)² / 4 with unbiased variances: var [0, 2] = 2, var [0, 1, 2] = 1.
        let loss = Tensor.coralLoss(source: Tensor([0, 2], shape: [2, 1]), target: Tensor([0, 1, 2], shape: [3, 1]))
        #expect(abs(loss.item - 0.25) < 1e-6)
    }

    @Test func mmdMatchesItsDefinitionAndFiniteDifferences() {
        let s = sample([4, 3], seed: 6), t = sample([5, 3], seed: 7, low: 0, high: 2)
        let sigmas: [Float] = [0.5, 1, 2]
        let ours = Double(Tensor.mmd(source: s, target: t, bandwidths: sigmas).item)
        let reference = referenceMMD(rows(s), rows(t), sigmas: sigmas.map(Double.init))
        #expect(abs(ours - reference) <= 1e-5 * max(1, abs(reference)), "\(ours) vs \(reference)")
        checkGradients([s, t], eps: 1e-2, tolerance: 1e-2) { Tensor.mmd(source: $0[0], target: $0[1], bandwidths: sigmas) }
    }

    @Test func mmdOfOnePointEachIsClosedForm() {
        // One point each at distance δ: MMD² = 2 − 2 exp(−δ² / 2σ²).
        let loss = Tensor.mmd(source: Tensor([0, 0], shape: [1, 2]), target: Tensor([3, 4], shape: [1, 2]), bandwidths: [5])
        #expect(abs(Double(loss.item) - (2 - 2 * Foundation.exp(-25.0 / 50))) < 1e-6)
        // Identical samples: no discrepancy.
        let x = sample([3, 2], seed: 8)
        #expect(abs(Tensor.mmd(source: x, target: x, bandwidths: [1]).item) < 1e-6)
    }

    @Test func medianBandwidthHalvesTheMedianSquaredDistance() {
        // Points 0, 1, 3 on a line: squared distances 1, 9, 4; median 4, so 2σ² = 4.
        let sigma = Tensor.medianBandwidth(Tensor([0, 1, 3], shape: [3, 1]))
        #expect(abs(sigma - Float(2).squareRoot()) < 1e-6)
        // Four points: six distances 1, 4, 9, 1, 4, 1 → sorted 1 1 1 4 4 9, median (1 + 4) / 2.
        let even = Tensor.medianBandwidth(Tensor([0, 1, 2, 3], shape: [4, 1]))
        #expect(abs(even - Float(1.25).squareRoot()) < 1e-6)
        #expect(Tensor.medianBandwidth(Tensor([2, 2], shape: [2, 1])) == 1)
    }
}
