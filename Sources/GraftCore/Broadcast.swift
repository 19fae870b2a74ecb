/// NumPy broadcasting: shapes align at the right; a dimension of 1 stretches to match.
public func broadcastShape(_ a: [Int], _ b: [Int], op: String) -> [Int] {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        require(da == db || da == 1 || db == 1, "\(op): shapes \(a) and \(b) cannot be broadcast together")
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Element strides of `shape` read as `out` (0 along broadcast dimensions).
func broadcastStrides(_ shape: [Int], to out: [Int]) -> [Int] {
    let offset = out.count - shape.count
    let own = shape.strides
    return out.indices.map { i in i < offset || shape[i - offset] == 1 ? 0 : own[i - offset] }
}

/// A broadcast iteration over `out`, with adjacent dimensions merged where every operand allows it, so the
/// innermost loop is as long as possible and each operand's inner stride is 0 or 1.
struct BroadcastPlan {
    var dims: [Int]
    var strides: [[Int]]

    init(out: [Int], operands: [[Int]]) {
        dims = []
        strides = Array(repeating: [], count: operands.count)
        let full = operands.map { broadcastStrides($0, to: out) }
        for i in out.indices where out[i] != 1 {
            if let last = dims.indices.last,
               full.indices.allSatisfy({ strides[$0][last] == full[$0][i] * out[i] }) {
                dims[last] *= out[i]
                for k in full.indices { strides[k][last] = full[k][i] }
            } else {
                dims.append(out[i])
                for k in full.indices { strides[k].append(full[k][i]) }
            }
        }
        if dims.isEmpty {
            dims = [1]
            strides = Array(repeating: [0], count: operands.count)
        }
    }

    var inner: Int { dims[dims.count - 1] }
    var outerCount: Int { dims.dropLast().reduce(1, *) }

    /// Start offsets of each operand for outer position `index` (row-major over all but the last dimension).
    @inline(__always)
    func offsets(_ index: Int, _ k: Int) -> Int {
        var rem = index, off = 0
        for d in stride(from: dims.count - 2, through: 0, by: -1) {
            off += (rem % dims[d]) * strides[k][d]
            rem /= dims[d]
        }
        return off
    }
}

/// An element-wise function of two floats. Kernels are generic over it rather than taking a closure, so each
/// one is specialised and inlined: a closure captured by the parallel loop would be called through a pointer per
/// element, several times slower.
protocol FloatFunction2 { func callAsFunction(_ a: Float, _ b: Float) -> Float }

/// An element-wise function of one float (see `FloatFunction2`).
protocol FloatFunction1 { func callAsFunction(_ x: Float) -> Float }

/// An element function written on eight lanes (around `exp8`, `erf8`: pure arithmetic, unlike libm's calls). Its
/// scalar form is lane 0 of a broadcast; inlined into `mapUnary`'s loop, the compiler drops the other lanes and the
/// loop vectoriser widens the loop to the CPU's vectors. (A hand-written eight-lane loop measured 7–9 % slower on
/// MiniLM steps with AVX-512: it stays at eight lanes.)
protocol FloatFunction8: FloatFunction1 { func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> }

extension FloatFunction8 {
    @inline(__always)
    func callAsFunction(_ x: Float) -> Float { self(SIMD8(repeating: x))[0] }
}

/// out[i] = f(a[i], b[i]) with broadcasting, parallel over rows for large outputs.
@inline(__always)
func broadcastBinary<F: FloatFunction2>(_ op: String, _ a: Tensor, _ b: Tensor, _ f: F) -> ([Int], Storage) {
    if a.shape == b.shape {
        let out = Storage(count: a.count)
        let pa = a.pointer, pb = b.pointer, po = out.pointer
        parallelChunks(a.count, grain: 1 << 16) { r in
            for i in r { po[i] = f(pa[i], pb[i]) }
        }
        return (a.shape, out)
    }
    let shape = broadcastShape(a.shape, b.shape, op: op)
    let plan = BroadcastPlan(out: shape, operands: [a.shape, b.shape])
    let out = Storage(count: shape.product)
    let pa = a.pointer, pb = b.pointer, po = out.pointer
    let n = plan.inner, sa = plan.strides[0].last!, sb = plan.strides[1].last!
    parallelChunks(plan.outerCount, grain: Swift.max(1, (1 << 16) / n)) { rows in
        for row in rows {
            let xa = pa + plan.offsets(row, 0), xb = pb + plan.offsets(row, 1), y = po + row * n
            switch (sa, sb) {
            case (1, 1): for i in 0..<n { y[i] = f(xa[i], xb[i]) }
            case (1, _): let v = xb[0]; for i in 0..<n { y[i] = f(xa[i], v) }
            case (_, 1): let v = xa[0]; for i in 0..<n { y[i] = f(v, xb[i]) }
            default: let v = f(xa[0], xb[0]); for i in 0..<n { y[i] = v }
            }
        }
    }
    return (shape, out)
}

/// out[i] = f(x[i]), parallel for large tensors.
@inline(__always)
func mapUnary<F: FloatFunction1>(_ x: Tensor, _ f: F) -> Storage {
    let out = Storage(count: x.count)
    let px = x.pointer, po = out.pointer
    parallelChunks(x.count, grain: 1 << 16) { r in
        for i in r { po[i] = f(px[i]) }
    }
    return out
}

/// `mapUnary` with each result multiplied by `factor`'s element (x's shape) in the same pass, as a backward rule's
/// g · f′(x).
@inline(__always)
func mapUnary<F: FloatFunction1>(_ x: Tensor, _ f: F, times factor: Tensor) -> Storage {
    let out = Storage(count: x.count)
    let px = x.pointer, po = out.pointer, pf = factor.pointer
    parallelChunks(x.count, grain: 1 << 16) { r in
        for i in r { po[i] = f(px[i]) * pf[i] }
    }
    return out
}

extension Tensor {
    /// Sums a broadcast gradient back down to `target` (the adjoint of broadcasting).
    public func sumTo(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        require(broadcastShape(target, shape, op: "sumTo") == shape, "sumTo: shape \(shape) does not broadcast from \(target)")
        let offset = rank - target.count
        let axes = (0..<rank).filter { $0 < offset || (target[$0 - offset] == 1 && shape[$0] != 1) }
        return sum(axes: axes, keepDims: true).reshaped(target)
    }

    /// This tensor broadcast (copied) to `target`, as `torch.Tensor.expand` followed by `contiguous`.
    public func expand(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        require(broadcastShape(shape, target, op: "expand") == target, "expand: shape \(shape) cannot be expanded to \(target)")
        let plan = BroadcastPlan(out: target, operands: [shape])
        let out = Storage(count: target.product)
        let px = pointer, po = out.pointer
        let n = plan.inner, s = plan.strides[0].last!
        parallelChunks(plan.outerCount, grain: Swift.max(1, (1 << 16) / n)) { rows in
            for row in rows {
                let x = px + plan.offsets(row, 0), y = po + row * n
                if s == 1 { y.update(from: x, count: n) } else { y.update(repeating: x[0], count: n) }
            }
        }
        let source = shape
        return Tensor.result("expand", target, out, [self]) { g, _ in [g.sumTo(source)] }
    }
}
