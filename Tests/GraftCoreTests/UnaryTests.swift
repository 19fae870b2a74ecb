import Foundation
import Testing
@testable import GraftCore

/// Uniform samples pushed at least 0.1 away from the kinks at 0 (and 6 for relu6).
func awayFromKinks(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    let t = sample(shape, seed: seed, low: -scale, high: scale)
    return Tensor(t.scalars.map { v in
        let moved = v >= 0 ? v + 0.1 : v - 0.1
        return Swift.abs(moved - 6) < 0.1 ? moved + 0.2 : moved
    }, shape: shape)
}

@Suite struct UnaryMath {
    let shapes: [[Int]] = [[7], [3, 4], [2, 3, 2]]

    @Test func forwardValues() {
        let x = Tensor([-2, -0.5, 0.5, 3, 7], shape: [5])
        expectClose(x.relu().scalars, [0, 0, 0.5, 3, 7])
        expectClose(x.relu6().scalars, [0, 0, 0.5, 3, 6])
        expectClose(x.clamp(min: -1, max: 1).scalars, [-1, -0.5, 0.5, 1, 1])
        expectClose(x.abs().scalars, [2, 0.5, 0.5, 3, 7])
        expectClose(x.exp().scalars, x.scalars.map { Foundation.exp($0) })
        expectClose(x.tanh().scalars, x.scalars.map { Foundation.tanh($0) })
        expectClose(x.sigmoid().scalars, x.scalars.map { 1 / (1 + Foundation.exp(-$0)) })
        // torch.nn.functional.gelu(torch.tensor([-2, -0.5, 0.5, 3, 7])) (exact erf form)
        expectClose(x.gelu().scalars, [-0.04550027, -0.15426877, 0.34573123, 2.99595031, 7.0])
        // 19 values: two runs of eight lanes and a scalar tail, against the double-precision formulas.
        let wide = Tensor((0..<19).map { Float($0) * 0.5 - 4.7 }, shape: [19])
        let phi = { (v: Double) in 0.5 * (1 + Foundation.erf(v / 2.0.squareRoot())) }
        expectClose(wide.gelu().scalars, wide.scalars.map { Float(Double($0) * phi(Double($0))) }, rtol: 1e-5, atol: 1e-6)
        expectClose(wide.geluDerivative().scalars, wide.scalars.map {
            let v = Double($0)
            return Float(phi(v) + v * Foundation.exp(-v * v / 2) / (2 * Double.pi).squareRoot())
        }, rtol: 1e-5, atol: 1e-6)
        let g = sample([19], seed: 3)
        expectClose(g.timesGeluDerivative(of: wide).scalars, (g * wide.geluDerivative()).scalars, rtol: 1e-6, atol: 1e-7)
        expectClose(wide.sigmoid().scalars, wide.scalars.map { 1 / (1 + Foundation.exp(-$0)) })
        let p = Tensor([0.25, 1, 4], shape: [3])
        expectClose(p.sqrt().scalars, [0.5, 1, 2])
        expectClose(p.log().scalars, [-1.3862944, 0, 1.3862944])
        expectClose(p.pow(1.5).scalars, [0.125, 1, 8])
    }

    @Test func gradients() {
        for (i, shape) in shapes.enumerated() {
            let x = awayFromKinks(shape, seed: UInt64(i), scale: 2)
            let pos = sample(shape, seed: UInt64(10 + i), low: 0.3, high: 2)
            checkGradients([x]) { $0[0].exp() }
            checkGradients([x]) { $0[0].tanh() }
            checkGradients([x]) { $0[0].sigmoid() }
            checkGradients([x]) { $0[0].relu() }
            checkGradients([awayFromKinks(shape, seed: UInt64(20 + i), scale: 8)]) { $0[0].relu6() }
            checkGradients([x]) { $0[0].gelu() }
            checkGradients([x]) { $0[0].abs() }
            checkGradients([x]) { $0[0].clamp(min: -0.55, max: 0.75) }
            checkGradients([x]) { -$0[0] * 3 + 1 }
            checkGradients([pos]) { $0[0].log() }
            checkGradients([pos]) { $0[0].sqrt() }
            checkGradients([pos]) { $0[0].pow(2.5) }
            checkGradients([pos]) { 1 / $0[0] }
        }
    }

    @Test func secondOrder() {
        let x = awayFromKinks([3, 4], seed: 5)
        checkSecondOrder([x]) { $0[0].tanh() }
        checkSecondOrder([x]) { $0[0].sigmoid() }
        checkSecondOrder([x]) { $0[0].relu() * $0[0] }
        checkSecondOrder([x]) { $0[0].gelu() }
        // gelu's fused backward, in both its inputs (the output gradient and x), to second order.
        checkGradients([sample([3, 4], seed: 7), x]) { $0[0].timesGeluDerivative(of: $0[1]) }
        checkSecondOrder([sample([3, 4], seed: 7), x]) { $0[0].timesGeluDerivative(of: $0[1]) }
        checkSecondOrder([x]) { $0[0].exp() }
        checkSecondOrder([sample([5], seed: 6, low: 0.5, high: 2)]) { $0[0].sqrt() + $0[0].log() + $0[0].pow(3) }
    }
}

@Suite struct Comparisons {
    @Test func masksAndWhere() {
        let a = Tensor([1, 5, 3], shape: [3]), b = Tensor([2, 5, 1], shape: [3])
        #expect(a.greater(b).scalars == [0, 0, 1])
        #expect(a.equal(b).scalars == [0, 1, 0])
        #expect(a.lessEqual(b).scalars == [1, 1, 0])
        #expect(a.greater(b).requiresGrad == false)
        let inf = Tensor([.infinity, 2, 3], shape: [3])
        #expect(Tensor.where(a.greater(b), inf, b).scalars == [2, 5, 3])
        checkGradients([sample([2, 3], seed: 1), sample([3], seed: 2)]) {
            Tensor.where($0[0].greater(Tensor.zeros([2, 3])), $0[0], $0[1])
        }
    }
}

@Suite struct VectorExp {
    @Test func matchesDoublePrecisionExpAcrossTheRange() {
        var worst: Double = 0
        var x: Float = -87
        while x < 88.5 {
            let got = Double(exp1(x)), want = Foundation.exp(Double(x))
            worst = max(worst, Swift.abs(got - want) / want)
            x += 0.0137
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        #expect(exp1(100) == .infinity)
        #expect(exp1(-100) == 0)
        #expect(exp1(.nan).isNaN)
        #expect(exp1(-.infinity) == 0)
        let t = sample([1000], seed: 3, low: -20, high: 20)
        expectClose(t.exp().scalars, t.scalars.map { Float(Foundation.exp(Double($0))) }, rtol: 3e-7, atol: 0)
    }
}

@Suite struct VectorErf {
    @Test func matchesDoublePrecisionErf() {
        var worst: Double = 0
        var x: Float = -6
        while x < 6 {
            // Eight neighbouring points a lane each, so that every lane is checked.
            let lanes = SIMD8<Float>((0..<8).map { x + Float($0) * 0.001 })
            let y = erf8(lanes)
            for i in 0..<8 { worst = max(worst, Swift.abs(Double(y[i]) - Foundation.erf(Double(lanes[i])))) }
            x += 0.008
        }
        #expect(worst < 5e-7, "worst absolute error \(worst)")
    }
}
