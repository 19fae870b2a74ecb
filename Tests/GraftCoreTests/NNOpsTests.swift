import Foundation
import Testing
@testable import GraftCore

/// Cross-entropy written out directly from its definition, for comparison with the fused kernel.
func referenceCrossEntropy(_ logits: [Float], _ targets: [Int], classes: Int, eps: Float, ignore: Int?) -> Float {
    var total: Double = 0, n = 0
    for (r, t) in targets.enumerated() where t != ignore {
        let row = logits[r * classes..<(r + 1) * classes].map(Double.init)
        let lse = Foundation.log(row.map { Foundation.exp($0) }.reduce(0, +))
        let logp = row.map { $0 - lse }
        total += Double(1 - eps) * -logp[t] + Double(eps) * -logp.reduce(0, +) / Double(classes)
        n += 1
    }
    return Float(total / Double(n))
}

@Suite struct SoftmaxAndLoss {
    @Test func softmaxValues() {
        let x = sample([3, 5], seed: 1, low: -3, high: 3)
        let s = x.softmax(axis: -1)
        for r in 0..<3 {
            let row = x.scalars[r * 5..<(r + 1) * 5].map { Foundation.exp($0) }
            let z = row.reduce(0, +)
            expectClose(Array(s.scalars[r * 5..<(r + 1) * 5]), row.map { $0 / z })
        }
        expectClose(x.logSoftmax(axis: 0).scalars, x.softmax(axis: 0).scalars.map { Foundation.log($0) })
        expectClose(Tensor([1000, 0], shape: [1, 2]).logSoftmax().scalars, [0, -1000])
    }

    @Test func crossEntropyMatchesDefinition() {
        let x = sample([6, 4], seed: 2, low: -2, high: 2)
        let t = [0, 3, 1, 2, 3, 0]
        for (eps, ignore) in [(Float(0), Int?.none), (0.1, nil), (0, 3), (0.2, 0)] {
            let loss = Tensor.crossEntropy(x, targets: t, labelSmoothing: eps, ignoreIndex: ignore)
            expectClose([loss.item], [referenceCrossEntropy(x.scalars, t, classes: 4, eps: eps, ignore: ignore)])
        }
    }

    @Test func gradients() {
        let x = sample([4, 5], seed: 3, low: -2, high: 2)
        checkGradients([x]) { $0[0].softmax(axis: -1) }
        checkGradients([x]) { $0[0].softmax(axis: 0) }
        checkGradients([x]) { $0[0].logSoftmax(axis: -1) }
        for (eps, ignore) in [(Float(0), Int?.none), (0.1, nil), (0.1, 2)] {
            checkGradients([x]) { Tensor.crossEntropy($0[0], targets: [1, 2, 0, 4], labelSmoothing: eps, ignoreIndex: ignore) }
        }
    }

    @Test func secondOrder() {
        let x = sample([3, 4], seed: 4, low: -2, high: 2)
        checkSecondOrder([x]) { $0[0].softmax(axis: -1) }
        checkSecondOrder([x]) { $0[0].logSoftmax(axis: -1) }
        checkSecondOrder([x]) { Tensor.crossEntropy($0[0], targets: [1, 3, 0], labelSmoothing: 0.1) }
    }
}

@Suite struct Normalization {
    @Test func layerNormValues() {
        let x = sample([3, 6], seed: 1, low: -2, high: 2), w = sample([6], seed: 2), b = sample([6], seed: 3)
        let y = Tensor.layerNorm(x, weight: w, bias: b, eps: 1e-5)
        for r in 0..<3 {
            let row = Array(x.scalars[r * 6..<(r + 1) * 6])
            let mean = row.reduce(0, +) / 6
            let v = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6
            let expected = row.indices.map { (row[$0] - mean) / (v + 1e-5).squareRoot() * w.scalars[$0] + b.scalars[$0] }
            expectClose(Array(y.scalars[r * 6..<(r + 1) * 6]), expected)
        }
    }

    @Test func batchNormTrainingAndEval() {
        let x = sample([4, 3, 2, 2], seed: 1, low: -2, high: 2)
        let w = sample([3], seed: 2), b = sample([3], seed: 3)
        let rm = Tensor.zeros([3]), rv = Tensor.ones([3])
        let y = Tensor.batchNorm(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: true, momentum: 0.1)
        for c in 0..<3 {
            let vals = (0..<4).flatMap { n in (0..<4).map { x.scalars[(n * 3 + c) * 4 + $0] } }
            let mean = vals.reduce(0, +) / 16
            let biased = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 16
            #expect(Swift.abs(rm.scalars[c] - 0.1 * mean) < 1e-5)
            #expect(Swift.abs(rv.scalars[c] - (0.9 + 0.1 * biased * 16 / 15)) < 1e-5)
            let got = (0..<4).flatMap { n in (0..<4).map { y.scalars[(n * 3 + c) * 4 + $0] } }
            expectClose(got, vals.map { ($0 - mean) / (biased + 1e-5).squareRoot() * w.scalars[c] + b.scalars[c] })
        }
        let e = Tensor.batchNorm(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: false)
        for i in 0..<x.count {
            let c = (i / 4) % 3
            let expected = (x.scalars[i] - rm.scalars[c]) / (rv.scalars[c] + 1e-5).squareRoot() * w.scalars[c] + b.scalars[c]
            #expect(Swift.abs(e.scalars[i] - expected) < 1e-5)
        }
    }

    @Test func gradients() {
        let x = sample([3, 5], seed: 4, low: -2, high: 2), w = sample([5], seed: 5), b = sample([5], seed: 6)
        checkGradients([x, w, b]) { Tensor.layerNorm($0[0], weight: $0[1], bias: $0[2]) }
        checkGradients([x]) { Tensor.layerNorm($0[0], weight: nil, bias: nil) }
        let xb = sample([3, 2, 2, 3], seed: 7, low: -2, high: 2), wb = sample([2], seed: 8), bb = sample([2], seed: 9)
        checkGradients([xb, wb, bb]) {
            Tensor.batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true)
        }
        checkGradients([sample([5, 3], seed: 10), sample([3], seed: 11)]) {
            Tensor.batchNorm($0[0], weight: $0[1], bias: nil, runningMean: nil, runningVar: nil, training: true)
        }
        let rm = sample([2], seed: 12), rv = sample([2], seed: 13, low: 0.5, high: 2)
        checkGradients([xb, wb, bb]) {
            Tensor.batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: false)
        }
    }

    @Test func secondOrder() {
        let x = sample([2, 4], seed: 4, low: -2, high: 2), w = sample([4], seed: 5), b = sample([4], seed: 6)
        checkSecondOrder([x, w, b]) { Tensor.layerNorm($0[0], weight: $0[1], bias: $0[2]).tanh() }
        checkSecondOrder([sample([4, 2, 3], seed: 7), sample([2], seed: 8)]) {
            Tensor.batchNorm($0[0], weight: $0[1], bias: nil, runningMean: nil, runningVar: nil, training: true).sigmoid()
        }
        let rm = sample([2], seed: 12), rv = sample([2], seed: 13, low: 0.5, high: 2)
        checkSecondOrder([sample([3, 2, 2, 3], seed: 9), sample([2], seed: 10), sample([2], seed: 11)]) {
            Tensor.batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: false).tanh()
        }
    }

    /// Inference-mode batch norm is one fused per-channel affine pass: x · scale[c] + shift[c].
    @Test func channelAffineIsPerChannel() {
        let x = sample([2, 3, 2, 2], seed: 1), a = sample([3], seed: 2), b = sample([3], seed: 3)
        let y = Tensor.channelAffine(x, scale: a, shift: b).scalars
        let (xs, as_, bs) = (x.scalars, a.scalars, b.scalars)
        expectClose(y, xs.indices.map { xs[$0] * as_[$0 / 4 % 3] + bs[$0 / 4 % 3] }, rtol: 0, atol: 1e-6)
        checkGradients([x, a, b]) { Tensor.channelAffine($0[0], scale: $0[1], shift: $0[2]) }
    }
}

@Suite struct DropoutAndEmbedding {
    @Test func dropoutKeepsExpectationAndGradientFollowsMask() {
        var rng = RandomGenerator(seed: 1)
        let x = Tensor.ones([100_000], requiresGrad: true)
        let y = x.dropout(0.25, training: true, using: &rng)
        let kept = y.scalars.filter { $0 != 0 }
        #expect(Swift.abs(Float(kept.count) / 100_000 - 0.75) < 0.01)
        #expect(kept.allSatisfy { Swift.abs($0 - 4.0 / 3) < 1e-6 })
        y.sum().backward()
        #expect(x.grad!.scalars == y.scalars)
        #expect(x.dropout(0.25, training: false, using: &rng) === x)
        checkGradients([sample([4, 5], seed: 2)]) { t in
            var fixed = RandomGenerator(seed: 9)
            return t[0].dropout(0.5, training: true, using: &fixed)
        }
    }

    @Test func embeddingGathersRowsAndScattersGradients() {
        let table = Tensor((0..<12).map(Float.init), shape: [4, 3], requiresGrad: true)
        let ids = Indices([1, 3, 1], shape: [1, 3])
        let e = table.embedding(ids)
        #expect(e.shape == [1, 3, 3])
        #expect(e.scalars == [3, 4, 5, 9, 10, 11, 3, 4, 5])
        e.sum().backward()
        #expect(table.grad!.scalars == [0, 0, 0, 2, 2, 2, 0, 0, 0, 1, 1, 1])
        checkGradients([sample([5, 2], seed: 1)]) { $0[0].embedding(Indices([4, 0, 4, 2], shape: [2, 2])) }
    }
}
