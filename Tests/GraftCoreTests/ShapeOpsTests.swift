import Testing
@testable import GraftCore

@Suite struct ShapeOps {
    let x = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])

    @Test func forwardValues() {
        #expect(x.reshaped([4, -1]).shape == [4, 6])
        let p = x.permuted([2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        #expect(p.scalars[0..<6] == [0, 4, 8, 12, 16, 20])
        #expect(x.transposed(0, 1).scalars[0..<8] == [0, 1, 2, 3, 12, 13, 14, 15])
        #expect(x.slice(axis: 2, 1..<3).scalars[0..<4] == [1, 2, 5, 6])
        let padded = Tensor([1, 2, 3, 4], shape: [2, 2]).padded([(1, 0), (0, 2)], value: -1)
        #expect(padded.shape == [3, 4])
        #expect(padded.scalars == [-1, -1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1])
        let c = Tensor.concat([x, x.slice(axis: 1, 0..<1)], axis: 1)
        #expect(c.shape == [2, 4, 4])
        #expect(c.scalars[12..<16] == [0, 1, 2, 3])
        let s = Tensor.stack([x, x], axis: 1)
        #expect(s.shape == [2, 2, 3, 4])
        let parts = x.split([1, 3], axis: 2)
        #expect(parts.map(\.shape) == [[2, 3, 1], [2, 3, 3]])
        #expect(Tensor([1, 2], shape: [2, 1]).expand([2, 3]).scalars == [1, 1, 1, 2, 2, 2])
        let sel = x.indexSelect(axis: 1, Indices([2, 0, 2], shape: [3]))
        #expect(sel.shape == [2, 3, 4])
        #expect(sel.scalars[0..<4] == [8, 9, 10, 11])
        let g = x.gather(axis: 2, Indices([Int](repeating: 3, count: 6), shape: [2, 3, 1]))
        #expect(g.scalars == [3, 7, 11, 15, 19, 23])
        #expect(Tensor.arange(0, 5).scalars == [0, 1, 2, 3, 4])
    }

    @Test func gradients() {
        let y = sample([2, 3, 4], seed: 1)
        checkGradients([y]) { $0[0].reshaped([6, 4]) }
        checkGradients([y]) { $0[0].permuted([2, 0, 1]) }
        checkGradients([y]) { $0[0].transposed(0, 2) }
        checkGradients([y]) { $0[0].slice(axis: 1, 1..<3) }
        checkGradients([y]) { $0[0].padded([(0, 1), (2, 0), (1, 1)], value: 0.5) }
        checkGradients([y]) { $0[0].padded([(0, 0), (-1, 0), (1, -2)]) }
        checkGradients([y, sample([2, 1, 4], seed: 2)]) { Tensor.concat([$0[0], $0[1]], axis: 1) }
        checkGradients([y, sample([2, 3, 4], seed: 3)]) { Tensor.stack([$0[0], $0[1]], axis: 3) }
        checkGradients([y]) { t in let p = t[0].split([1, 2], axis: 1); return p[1] * 2 + p[0] }
        checkGradients([sample([3, 1], seed: 4)]) { $0[0].expand([2, 3, 5]) }
        checkGradients([y]) { $0[0].indexSelect(axis: 1, Indices([2, 0, 2, 1], shape: [2, 2])) }
        checkGradients([y]) { $0[0].gather(axis: 1, Indices((0..<16).map { $0 % 3 }, shape: [2, 2, 4])) }
        // Ops on non-contiguous orderings: a permuted input feeding broadcasting arithmetic and a reduction.
        checkGradients([y, sample([3, 1], seed: 5)]) { ($0[0].permuted([0, 2, 1]) * $0[1].transposed()).sum(axes: [0, 2]) }
    }

    @Test func secondOrder() {
        let y = sample([2, 3], seed: 6)
        checkSecondOrder([y]) { (Tensor.concat([$0[0], $0[0].transposed().reshaped([2, 3])], axis: 0) * $0[0].sum(axes: [0])).padded([(1, 0), (0, 1)]) }
        checkSecondOrder([y]) { $0[0].indexSelect(axis: 1, Indices([2, 2], shape: [2])).exp() }
    }
}
