import Testing
@testable import GraftCore

/// A tensor whose elements are a shuffle of 0, 0.1, 0.2, …: maxima stay unique under finite-difference nudges.
func distinctValues(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    let values = (0..<shape.product).map { Float($0) * 0.1 - Float(shape.product) * 0.05 }.shuffled(using: &rng)
    return Tensor(values, shape: shape)
}

/// Pooling windows along one axis as PyTorch's kernels compute them: (first tap position, last position + 1) of
/// each output, with the output count under ceil mode.
func referenceWindows(size: Int, kernel: Int, stride: Int, dilation: Int, before: Int, after: Int,
                      ceilMode: Bool) -> [Int] {
    let span = size + before + after - dilation * (kernel - 1) - 1
    var n = (ceilMode ? Int((Double(span) / Double(stride)).rounded(.up)) : span / stride) + 1
    if ceilMode && (n - 1) * stride >= size + before { n -= 1 }
    return (0..<n).map { $0 * stride - before }
}

/// max_pool2d from its definition: the window maximum and, per output, the flat input position that won.
func referenceMaxPool(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int), edges: (Int, Int, Int, Int),
                      dilation: (Int, Int), ceilMode: Bool) -> (y: [Float], shape: [Int], argmax: [Int]) {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let rows = referenceWindows(size: h, kernel: kernel.0, stride: stride.0, dilation: dilation.0, before: edges.0,
                                after: edges.1, ceilMode: ceilMode)
    let cols = referenceWindows(size: w, kernel: kernel.1, stride: stride.1, dilation: dilation.1, before: edges.2,
                                after: edges.3, ceilMode: ceilMode)
    var y: [Float] = [], argmax: [Int] = []
    let xs = x.scalars
    for p in 0..<(n * c) {
        for y0 in rows {
            for x0 in cols {
                var best = -Float.infinity, at = -1
                for ki in 0..<kernel.0 {
                    for kj in 0..<kernel.1 {
                        let iy = y0 + ki * dilation.0, ix = x0 + kj * dilation.1
                        guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                        if xs[(p * h + iy) * w + ix] > best { best = xs[(p * h + iy) * w + ix]; at = (p * h + iy) * w + ix }
                    }
                }
                y.append(best)
                argmax.append(at)
            }
        }
    }
    return (y, [n, c, rows.count, cols.count], argmax)
}

/// avg_pool2d from its definition, with PyTorch's divisor: the window clipped to the padded input when padding
/// counts, to the input itself when it does not.
func referenceAvgPool(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int), edges: (Int, Int, Int, Int), ceilMode: Bool,
                      countIncludePad: Bool) -> (y: [Float], shape: [Int]) {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let rows = referenceWindows(size: h, kernel: kernel.0, stride: stride.0, dilation: 1, before: edges.0,
                                after: edges.1, ceilMode: ceilMode)
    let cols = referenceWindows(size: w, kernel: kernel.1, stride: stride.1, dilation: 1, before: edges.2,
                                after: edges.3, ceilMode: ceilMode)
    var y: [Float] = []
    let xs = x.scalars
    for p in 0..<(n * c) {
        for y0 in rows {
            for x0 in cols {
                let y1 = min(y0 + kernel.0, h + edges.1), x1 = min(x0 + kernel.1, w + edges.3)
                var sum: Double = 0, covered = 0
                for iy in max(y0, 0)..<min(y1, h) {
                    for ix in max(x0, 0)..<min(x1, w) { sum += Double(xs[(p * h + iy) * w + ix]); covered += 1 }
                }
                y.append(Float(sum / Double(countIncludePad ? (y1 - y0) * (x1 - x0) : covered)))
            }
        }
    }
    return (y, [n, c, rows.count, cols.count])
}

struct PoolCase: CustomTestStringConvertible, Sendable {
    let name: String
    let input: [Int]
    let kernel: (Int, Int)
    var stride: (Int, Int)?
    var padding = Padding.valid
    var edges = (0, 0, 0, 0)
    var dilation = (1, 1)
    var ceilMode = false

    var testDescription: String { name }

    static let all: [PoolCase] = [
        PoolCase(name: "2×2", input: [2, 3, 6, 4], kernel: (2, 2)),
        PoolCase(name: "3×3 stride 2 pad 1", input: [1, 2, 7, 6], kernel: (3, 3), stride: (2, 2),
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1)),
        PoolCase(name: "3×2 stride 2, ceil mode", input: [1, 2, 6, 7], kernel: (3, 2), stride: (2, 2),
                 ceilMode: true),
        PoolCase(name: "ceil mode with padding", input: [1, 1, 6, 6], kernel: (3, 3), stride: (2, 2),
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1), ceilMode: true),
        PoolCase(name: "same, stride 2", input: [1, 2, 6, 5], kernel: (3, 3), stride: (2, 2), padding: .same,
                 edges: (0, 1, 1, 1)),
        PoolCase(name: "asymmetric", input: [2, 1, 5, 5], kernel: (2, 3), stride: (1, 2),
                 padding: .asymmetric(top: 1, bottom: 0, left: 0, right: 1), edges: (1, 0, 0, 1)),
        PoolCase(name: "rows of 19 outputs", input: [1, 2, 4, 19], kernel: (2, 3), stride: (1, 1),
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1)),
        // Vector loads at stride 2 (two per eight outputs), cut short before the end of the input.
        PoolCase(name: "3×3 stride 2 pad 1, rows of 17 outputs", input: [1, 2, 5, 33], kernel: (3, 3), stride: (2, 2),
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1)),
        PoolCase(name: "stride 3, rows of 10 outputs", input: [1, 1, 4, 30], kernel: (3, 3), stride: (3, 3)),
        // ResNet's stem pool: rows of eight outputs, the first tap of the first output in the padding.
        PoolCase(name: "3×3 stride 2 pad 1, 16×16 → 8×8", input: [2, 3, 16, 16], kernel: (3, 3), stride: (2, 2),
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1)),
    ]
}

@Suite struct Pooling {
    @Test(arguments: PoolCase.all + [
        PoolCase(name: "max, dilation 2", input: [1, 2, 7, 7], kernel: (3, 2), stride: (1, 2),
                 padding: .symmetric(1, 1), edges: (1, 1, 1, 1), dilation: (2, 2)),
    ])
    func maxPool(_ c: PoolCase) {
        let x = distinctValues(c.input, seed: 1)
        x.requiresGrad = true
        let y = x.maxPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation, ceilMode: c.ceilMode)
        let ref = referenceMaxPool(x, kernel: c.kernel, stride: c.stride ?? c.kernel, edges: c.edges,
                                   dilation: c.dilation, ceilMode: c.ceilMode)
        #expect(y.shape == ref.shape)
        #expect(y.scalars == ref.y)
        // Without a gradient to follow, the maxima alone are found: the same values.
        #expect(withNoGrad { x.maxPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                         ceilMode: c.ceilMode) }.scalars == ref.y)
        let g = sample(y.shape, seed: 2)
        var expected = [Float](repeating: 0, count: x.count)
        for (o, at) in ref.argmax.enumerated() { expected[at] += g.scalars[o] }
        expectClose(grad(of: y, wrt: [x], gradOutput: g)[0].scalars, expected)
        checkGradients([x]) {
            $0[0].maxPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation, ceilMode: c.ceilMode)
        }
    }

    @Test(arguments: PoolCase.all, [true, false])
    func avgPool(_ c: PoolCase, countIncludePad: Bool) {
        let x = sample(c.input, seed: 1)
        let pool = { (t: Tensor) in
            t.avgPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding, ceilMode: c.ceilMode,
                        countIncludePad: countIncludePad)
        }
        let y = pool(x)
        let ref = referenceAvgPool(x, kernel: c.kernel, stride: c.stride ?? c.kernel, edges: c.edges,
                                   ceilMode: c.ceilMode, countIncludePad: countIncludePad)
        #expect(y.shape == ref.shape)
        expectClose(y.scalars, ref.y)
        checkGradients([x]) { pool($0[0]) }
    }

    @Test(arguments: [([2, 3, 7, 5], (3, 2)), ([1, 2, 4, 4], (1, 1)), ([1, 1, 2, 3], (4, 5)), ([1, 2, 6, 6], (3, 3))])
    func adaptiveAvgPool(_ input: [Int], _ size: (Int, Int)) {
        let x = sample(input, seed: 1)
        let y = x.adaptiveAvgPool2d(size)
        let (h, w) = (input[2], input[3])
        var expected: [Float] = []
        for p in 0..<(input[0] * input[1]) {
            for i in 0..<size.0 {
                for j in 0..<size.1 {
                    let rows = (i * h / size.0)..<(((i + 1) * h + size.0 - 1) / size.0)
                    let cols = (j * w / size.1)..<(((j + 1) * w + size.1 - 1) / size.1)
                    let values = rows.flatMap { r in cols.map { x.scalars[(p * h + r) * w + $0] } }
                    expected.append(values.reduce(0, +) / Float(values.count))
                }
            }
        }
        #expect(y.shape == [input[0], input[1], size.0, size.1])
        expectClose(y.scalars, expected)
        checkGradients([x]) { $0[0].adaptiveAvgPool2d(size) }
    }

    @Test func maxPoolTiesGoFirstAndNaNWins() {
        let x = Tensor.zeros([1, 1, 2, 18], requiresGrad: true)
        let y = x.maxPool2d(kernel: (2, 2))
        let g = grad(of: y, wrt: [x], gradOutput: Tensor.ones(y.shape))[0]
        #expect(g.scalars == (0..<36).map { $0 < 18 && $0 % 2 == 0 ? 1 : 0 })
        // Window 2 holds two NaNs (the later one wins, as in PyTorch), window 3 one.
        var values = [Float](repeating: 0, count: 36)
        for i in [4, 23, 7] { values[i] = .nan }
        let xn = Tensor(values, shape: [1, 1, 2, 18], requiresGrad: true)
        let z = xn.maxPool2d(kernel: (2, 2))
        #expect(z.scalars.enumerated().allSatisfy { [2, 3].contains($0.offset) ? $0.element.isNaN : $0.element == 0 })
        #expect(withNoGrad { xn.maxPool2d(kernel: (2, 2)) }.scalars.enumerated().allSatisfy {
            [2, 3].contains($0.offset) ? $0.element.isNaN : $0.element == 0
        })
        let gn = grad(of: z, wrt: [xn], gradOutput: Tensor.ones(z.shape))[0]
        #expect(gn.scalars == (0..<36).map { [0, 2, 8, 10, 12, 14, 16, 23, 7].contains($0) ? 1 : 0 })
    }

    @Test func globalAveragePoolIsSpatialMean() {
        let x = sample([3, 4, 5, 6], seed: 3)
        expectClose(x.adaptiveAvgPool2d((1, 1)).scalars, x.mean(axes: [2, 3]).scalars)
    }

    @Test func secondOrder() {
        let x = distinctValues([1, 2, 5, 5], seed: 4)
        checkSecondOrder([x]) { $0[0].maxPool2d(kernel: (3, 3), stride: (2, 2), padding: .symmetric(1, 1)).tanh() }
        checkSecondOrder([x]) {
            $0[0].avgPool2d(kernel: (3, 2), stride: (2, 1), padding: .same, countIncludePad: false).tanh()
        }
        checkSecondOrder([x]) { $0[0].adaptiveAvgPool2d((2, 3)).tanh() }
    }
}

@Suite struct PoolingShapeErrors {
    @Test func paddingBeyondHalfKernel() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([1, 1, 8, 8]).maxPool2d(kernel: (3, 3), padding: .symmetric(2, 1))
        }
        expectMessage("maxPool2d: padding (top: 2, bottom: 2, left: 1, right: 1) must lie within half the kernel (3, 3)", r)
    }

    @Test func notNCHW() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([8, 8]).avgPool2d(kernel: (2, 2))
        }
        expectMessage("avgPool2d: input [8, 8] is not NCHW (rank 4)", r)
    }
}
