/// Integer indices with a shape (argmax results, gather/scatter indices, labels).
public struct Indices: Sendable, Equatable {
    public let shape: [Int]
    public let values: [Int]

    public init(_ values: [Int], shape: [Int]) {
        require(values.count == shape.product, "Indices: \(values.count) values do not fill shape \(shape)")
        self.values = values
        self.shape = shape
    }
}

/// Sum of `n` contiguous floats with sixteen partial sums, so the loop vectorises.
@inline(__always)
func contiguousSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    while i + 16 <= n {
        acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
        i += 16
    }
    var s = acc.sum()
    while i < n { s += p[i]; i += 1 }
    return s
}

/// Σ (p[i] − c)² over `n` contiguous floats, sixteen partial sums at a time as `contiguousSum`.
@inline(__always)
func squaredDeviationSum(_ p: UnsafePointer<Float>, _ n: Int, from c: Float) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    while i + 16 <= n {
        let d = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self) - c
        acc.addProduct(d, d)
        i += 16
    }
    var s = acc.sum()
    while i < n { let d = p[i] - c; s += d * d; i += 1 }
    return s
}

/// (Σ g[i], Σ g[i] · (x[i] − c)) over `n` contiguous pairs, sixteen partial sums at a time.
@inline(__always)
func sumAndCenteredDot(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, from c: Float) -> (Float, Float) {
    var sums = SIMD16<Float>(), dots = SIMD16<Float>()
    var i = 0
    while i + 16 <= n {
        let gv = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD16<Float>.self)
        sums += gv
        dots.addProduct(gv, UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - c)
        i += 16
    }
    var (sum, dot) = (sums.sum(), dots.sum())
    while i < n { sum += g[i]; dot += g[i] * (x[i] - c); i += 1 }
    return (sum, dot)
}

extension Tensor {
    func normalizedAxes(_ axes: [Int], op: String) -> [Int] {
        let r = Array(Set(axes.map { axis($0, op: op) })).sorted()
        require(r.count == axes.count, "\(op): repeated axis in \(axes) for shape \(shape)")
        return r
    }

    func reducedShape(_ axes: [Int], keepDims: Bool) -> [Int] {
        keepDims ? shape.indices.map { axes.contains($0) ? 1 : shape[$0] }
                 : shape.indices.filter { !axes.contains($0) }.map { shape[$0] }
    }

    /// Moves `axes` to the end (a copy if needed) and views the result as [kept, reduced].
    func reducedLast(_ axes: [Int]) -> Tensor {
        let kept = shape.indices.filter { !axes.contains($0) }
        let moved = kept == Array(0..<kept.count) ? self : permuted(kept + axes)
        return moved.reshaped([kept.map { shape[$0] }.product, axes.map { shape[$0] }.product])
    }

    /// Sum over `axes` (all axes when nil).
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes ?? Array(0..<rank), op: "sum")
        let outShape = reducedShape(ax, keepDims: keepDims)
        let out: Storage
        if let first = ax.first, ax.last! - first + 1 == ax.count {
            // A contiguous block of axes: [outer, reduced, inner] without copying.
            let outer = shape[..<first].reduce(1, *), n = shape[first...ax.last!].reduce(1, *)
            let inner = shape[(ax.last! + 1)...].reduce(1, *)
            out = Storage(count: outer * inner)
            let px = pointer, po = out.pointer
            parallelChunks(outer, grain: Swift.max(1, (1 << 15) / Swift.max(1, n * inner))) { rows in
                for o in rows {
                    let x = px + o * n * inner, y = po + o * inner
                    if n == 0 { y.update(repeating: 0, count: inner); continue }
                    if inner == 1 { y[0] = contiguousSum(x, n); continue }
                    y.update(from: x, count: inner)
                    for r in 1..<n { let xr = x + r * inner; for i in 0..<inner { y[i] += xr[i] } }
                }
            }
        } else if ax.isEmpty {
            out = Storage(count: count)
            out.pointer.update(from: pointer, count: count)
        } else {
            out = withNoGrad { reducedLast(ax).sum(axes: [1]) }.storage
        }
        let source = shape, kept = reducedShape(ax, keepDims: true)
        return Tensor.result("sum", outShape, out, [self]) { g, _ in [g.reshaped(kept).expand(source)] }
    }

    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes ?? Array(0..<rank), op: "mean")
        let n = ax.map { shape[$0] }.product
        return sum(axes: ax, keepDims: keepDims) * (1 / Float(n))
    }

    /// Variance over `axes`, with `correction` 1 (unbiased, PyTorch's default) or 0.
    public func variance(axes: [Int]? = nil, correction: Int = 1, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes ?? Array(0..<rank), op: "var")
        let n = ax.map { shape[$0] }.product
        require(n > correction, "var: \(n) elements over axes \(ax) of \(shape) with correction \(correction)")
        let centered = self - mean(axes: ax, keepDims: true)
        return (centered * centered).sum(axes: ax, keepDims: keepDims) * (1 / Float(n - correction))
    }

    /// log Σ exp(x) over `axes`, stable by shifting with the (constant) maximum.
    public func logSumExp(axes: [Int], keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes, op: "logsumexp")
        let m = withNoGrad { max(axes: ax, keepDims: true) }
        let finite = Tensor(shape: m.shape, storage: mapUnary(m, FiniteOrZero()))
        let s = (self - finite).exp().sum(axes: ax, keepDims: true).log() + finite
        return keepDims ? s : s.reshaped(reducedShape(ax, keepDims: false))
    }

    /// Positions of the maximum along `axis` (first one on ties).
    public func argmax(axis a: Int, keepDims: Bool = false) -> Indices {
        extremeIndices(axis: a, keepDims: keepDims, op: "argmax", >)
    }

    public func argmin(axis a: Int, keepDims: Bool = false) -> Indices {
        extremeIndices(axis: a, keepDims: keepDims, op: "argmin", <)
    }

    /// Maximum over `axes`; the gradient goes to the first maximal element.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { extreme(axes, keepDims, "max", >) }
    public func min(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { extreme(axes, keepDims, "min", <) }

    private func extreme(_ axes: [Int]?, _ keepDims: Bool, _ op: String, _ better: (Float, Float) -> Bool) -> Tensor {
        let ax = normalizedAxes(axes ?? Array(0..<rank), op: op)
        require(ax.allSatisfy { shape[$0] > 0 }, "\(op): cannot reduce an empty axis of shape \(shape)")
        let flat = reducedLast(ax)
        let idx = flat.extremeIndices(axis: 1, keepDims: true, op: op, better)
        return flat.gather(axis: 1, idx).reshaped(reducedShape(ax, keepDims: keepDims))
    }

    @inline(__always)
    private func extremeIndices(axis a: Int, keepDims: Bool, op: String, _ better: (Float, Float) -> Bool) -> Indices {
        let ax = axis(a, op: op)
        require(shape[ax] > 0, "\(op): axis \(a) of shape \(shape) is empty")
        let outer = shape[..<ax].reduce(1, *), n = shape[ax], inner = shape[(ax + 1)...].reduce(1, *)
        var values = [Int](repeating: 0, count: outer * inner)
        let px = pointer
        for o in 0..<outer {
            for i in 0..<inner {
                var best = px[o * n * inner + i], at = 0
                for r in 1..<n {
                    let v = px[(o * n + r) * inner + i]
                    if better(v, best) || (v.isNaN && !best.isNaN) { best = v; at = r }
                }
                values[o * inner + i] = at
            }
        }
        return Indices(values, shape: reducedShape([ax], keepDims: keepDims))
    }
}
