import Testing
@testable import GraftCore

@Suite struct Reductions {
    let x = Tensor((0..<24).map { Float(($0 * 7) % 24) - 11.5 }, shape: [2, 3, 4])

    @Test func sumsOverAnyAxes() {
        #expect(x.sum().item == x.scalars.reduce(0, +))
        // Axis 1 of [2,3,4]: a middle axis.
        let s1 = x.sum(axes: [1])
        #expect(s1.shape == [2, 4])
        for b in 0..<2 { for k in 0..<4 {
            #expect(s1.scalars[b * 4 + k] == (0..<3).map { x.scalars[b * 12 + $0 * 4 + k] }.reduce(0, +))
        } }
        // Non-adjacent axes 0 and 2, kept.
        let s02 = x.sum(axes: [0, 2], keepDims: true)
        #expect(s02.shape == [1, 3, 1])
        for j in 0..<3 {
            var expected: Float = 0
            for b in 0..<2 { for k in 0..<4 { expected += x.scalars[b * 12 + j * 4 + k] } }
            #expect(s02.scalars[j] == expected)
        }
        #expect(x.mean(axes: [-1]).scalars == x.sum(axes: [2]).scalars.map { $0 / 4 })
    }

    @Test func extremesAndArgmax() {
        #expect(x.max().item == 11.5)
        #expect(x.min().item == -11.5)
        let m = x.max(axes: [1])
        for b in 0..<2 { for k in 0..<4 {
            #expect(m.scalars[b * 4 + k] == (0..<3).map { x.scalars[b * 12 + $0 * 4 + k] }.max()!)
        } }
        let am = x.argmax(axis: 2)
        #expect(am.shape == [2, 3])
        for r in 0..<6 {
            let row = Array(x.scalars[r * 4..<(r + 1) * 4])
            #expect(am.values[r] == row.firstIndex(of: row.max()!)!)
        }
        #expect(Tensor([1, 3, 3, 0], shape: [4]).argmax(axis: 0).values == [1])
    }

    @Test func varianceAndLogSumExp() {
        let v = Tensor([1, 2, 3, 4], shape: [4])
        #expect(Swift.abs(v.variance().item - 5.0 / 3) < 1e-6)
        #expect(Swift.abs(v.variance(correction: 0).item - 1.25) < 1e-6)
        let big = Tensor([1000, 1000], shape: [1, 2])
        #expect(Swift.abs(big.logSumExp(axes: [1]).item - (1000 + 0.6931472)) < 1e-3)
    }

    @Test func gradients() {
        // Distinct values 0.1 apart, so finite differences never swap the order of a max or min.
        let y = Tensor((0..<24).map { Float(($0 * 7) % 24) / 10 - 1.2 }, shape: [2, 3, 4])
        for axes in [[0], [1], [2], [0, 2], [1, 2], [0, 1, 2]] {
            checkGradients([y]) { $0[0].sum(axes: axes) }
            checkGradients([y]) { $0[0].mean(axes: axes, keepDims: true) }
            checkGradients([y]) { $0[0].max(axes: axes) }
            checkGradients([y]) { $0[0].min(axes: axes, keepDims: true) }
            checkGradients([y]) { $0[0].variance(axes: axes.count == 3 ? nil : axes) }
            checkGradients([y]) { $0[0].logSumExp(axes: axes) }
        }
        checkSecondOrder([y]) { $0[0].logSumExp(axes: [2]) }
        checkSecondOrder([y]) { $0[0].variance(axes: [1]) }
    }
}
