extension Tensor {
    /// Matrix product with NumPy/PyTorch semantics: the last two axes multiply, leading (batch) axes broadcast;
    /// a 1-D operand is treated as a row (left) or column (right) vector.
    public func matmul(_ other: Tensor) -> Tensor {
        require(rank >= 1 && other.rank >= 1, "matmul: shapes \(shape) and \(other.shape) need rank ≥ 1")
        if rank == 1 { return unsqueezed(0).matmul(other).squeezed(-2) }
        if other.rank == 1 { return matmul(other.unsqueezed(1)).squeezed(-1) }
        let k = shape[rank - 1]
        require(k == other.shape[other.rank - 2],
                     "matmul: shapes \(shape) and \(other.shape) are not aligned (\(k) vs \(other.shape[other.rank - 2]))")
        if other.rank == 2 && rank > 2 {
            // Fold the batch into the rows: one large GEMM instead of many small ones.
            let rows = reshaped([-1, k])
            return Tensor.gemm(rows, other).reshaped(Array(shape.dropLast()) + [other.shape[1]])
        }
        let batch = broadcastShape(Array(shape.dropLast(2)), Array(other.shape.dropLast(2)), op: "matmul")
        let a = expand(batch + shape.suffix(2)), b = other.expand(batch + other.shape.suffix(2))
        return Tensor.gemm(a, b)
    }

    /// op(a) · op(b) over equal batch axes, where op transposes the last two axes when asked, in the precision in
    /// force (`GEMMLibrary.current`'s sgemm for fp32). The backward rules are gemms again, in the same precision,
    /// so the product is differentiable to any order.
    public static func gemm(_ a: Tensor, _ b: Tensor, transA: Bool = false, transB: Bool = false) -> Tensor {
        gemm(a, b, transA: transA, transB: transB, precision: MatmulPrecision.current)
    }

    static func gemm(_ a: Tensor, _ b: Tensor, transA: Bool = false, transB: Bool = false,
                     precision: MatmulPrecision) -> Tensor {
        require(a.rank >= 2 && a.rank == b.rank && a.shape.dropLast(2) == b.shape.dropLast(2),
                     "matmul: batch axes of \(a.shape) and \(b.shape) differ")
        let ar = a.shape[a.rank - 2], ac = a.shape[a.rank - 1], br = b.shape[b.rank - 2], bc = b.shape[b.rank - 1]
        let (m, k) = transA ? (ac, ar) : (ar, ac)
        let (kb, n) = transB ? (bc, br) : (br, bc)
        require(k == kb, "matmul: shapes \(a.shape)\(transA ? "ᵀ" : "") and \(b.shape)\(transB ? "ᵀ" : "") are not aligned (\(k) vs \(kb))")
        let batch = a.shape.dropLast(2).reduce(1, *)
        let out = Storage(count: batch * m * n)
        if m * n > 0 {
            for i in 0..<batch {
                gemmKernel(precision, transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1,
                           a.pointer + i * ar * ac, lda: Swift.max(ac, 1), b.pointer + i * br * bc, ldb: Swift.max(bc, 1),
                           beta: 0, out.pointer + i * m * n, ldc: Swift.max(n, 1))
            }
        }
        return result("matmul", Array(a.shape.dropLast(2)) + [m, n], out, [a, b]) { g, needs in
            [needs[0] ? (transA ? gemm(b, g, transA: transB, transB: true, precision: precision)
                                : gemm(g, b, transB: !transB, precision: precision)) : nil,
             needs[1] ? (transB ? gemm(g, a, transA: true, transB: transA, precision: precision)
                                : gemm(a, g, transA: !transA, precision: precision)) : nil]
        }
    }

    /// x · weightᵀ + bias over the last axis of `x`, weight [out, in] as `torch.nn.functional.linear`;
    /// the bias is written first and the GEMM accumulates onto it.
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
        require(weight.rank == 2 && x.rank >= 1 && x.shape[x.rank - 1] == weight.shape[1],
                     "linear: input \(x.shape) does not fit weight \(weight.shape)")
        if let bias { require(bias.shape == [weight.shape[0]], "linear: bias \(bias.shape) does not fit weight \(weight.shape)") }
        let (inF, outF) = (weight.shape[1], weight.shape[0])
        let rows = x.count / Swift.max(inF, 1)
        let x2 = x.reshaped([rows, inF])
        let out = Storage(count: rows * outF)
        if let bias {
            for r in 0..<rows { (out.pointer + r * outF).update(from: bias.pointer, count: outF) }
        }
        let precision = MatmulPrecision.current
        gemmKernel(precision, transA: false, transB: true, m: rows, n: outF, k: inF, alpha: 1, x2.pointer,
                   lda: Swift.max(inF, 1), weight.pointer, ldb: Swift.max(inF, 1), beta: bias == nil ? 0 : 1,
                   out.pointer, ldc: Swift.max(outF, 1))
        let inputs = bias.map { [x2, weight, $0] } ?? [x2, weight]
        let y = result("linear", [rows, outF], out, inputs) { g, needs in
            [needs[0] ? gemm(g, weight, precision: precision) : nil,
             needs[1] ? gemm(g, x2, transA: true, precision: precision) : nil,
             needs.count > 2 && needs[2] ? g.sum(axes: [0]) : nil]
        }
        return y.reshaped(Array(x.shape.dropLast()) + [outF])
    }
}
