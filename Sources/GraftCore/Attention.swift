/// Multi-head attention's products read and write the heads where a linear layer leaves them: q, k and v are
/// [B, S, heads · d], head h in columns h·d ..< (h + 1)·d, so each head's matrix is a strided view (leading dimension
/// heads · d) that sgemm takes as it is. No [B, heads, S, d] copies are made either way.
extension Tensor {
    /// Scores [B, heads, S, T] = alpha · Q_h K_hᵀ per batch row and head, for q [B, S, heads · d], k [B, T, heads · d].
    public static func headScores(_ q: Tensor, _ k: Tensor, heads: Int, alpha: Float = 1,
                                  precision: MatmulPrecision = .current) -> Tensor {
        let (b, s, t, d) = headShapes(q, k, heads: heads, op: "headScores")
        let out = Storage(count: b * heads * s * t)
        let width = heads * d
        forEachHead(batch: b, heads: heads) { n, h in
            gemmKernel(precision, transA: false, transB: true, m: s, n: t, k: d, alpha: alpha,
                       q.pointer + n * s * width + h * d, lda: width, k.pointer + n * t * width + h * d, ldb: width,
                       beta: 0, out.pointer + (n * heads + h) * s * t, ldc: t, parallel: false)
        }
        return result("head_scores", [b, heads, s, t], out, [q, k]) { g, needs in
            [needs[0] ? headMix(g, k, heads: heads, alpha: alpha, precision: precision) : nil,
             needs[1] ? headMix(g, q, heads: heads, transposed: true, alpha: alpha, precision: precision) : nil]
        }
    }

    /// [B, R, heads · d] with head h = alpha · P_h V_h, for p [B, heads, R, C] and v [B, C, heads · d]; `transposed`
    /// uses P_hᵀ instead (p [B, heads, C, R]). Attention's output is headMix(probabilities, v).
    public static func headMix(_ p: Tensor, _ v: Tensor, heads: Int, transposed: Bool = false, alpha: Float = 1,
                               precision: MatmulPrecision = .current) -> Tensor {
        require(p.rank == 4 && v.rank == 3 && p.shape[0] == v.shape[0] && p.shape[1] == heads,
                "headMix: weights \(p.shape) must be [B, \(heads), R, C] for values \(v.shape) [B, C, \(heads)·d]")
        let (b, width) = (v.shape[0], v.shape[2])
        let (r, c) = transposed ? (p.shape[3], p.shape[2]) : (p.shape[2], p.shape[3])
        require(width % heads == 0 && v.shape[1] == c,
                "headMix: values \(v.shape) do not fit weights \(p.shape)\(transposed ? "ᵀ" : "") and \(heads) heads")
        let d = width / heads
        let out = Storage(count: b * r * width)
        forEachHead(batch: b, heads: heads) { n, h in
            gemmKernel(precision, transA: transposed, transB: false, m: r, n: d, k: c, alpha: alpha,
                       p.pointer + (n * heads + h) * r * c, lda: transposed ? r : c, v.pointer + n * c * width + h * d,
                       ldb: width, beta: 0, out.pointer + n * r * width + h * d, ldc: width, parallel: false)
        }
        return result("head_mix", [b, r, width], out, [p, v]) { g, needs in
            [needs[0] ? (transposed ? headScores(v, g, heads: heads, alpha: alpha, precision: precision)
                                    : headScores(g, v, heads: heads, alpha: alpha, precision: precision)) : nil,
             needs[1] ? headMix(p, g, heads: heads, transposed: !transposed, alpha: alpha, precision: precision) : nil]
        }
    }

    /// softmax(self + mask) along the last axis, for self [B, …, T] and an additive mask of B · T values ([B, T] or
    /// BERT's [B, 1, 1, T]: 0 where a token is attended, a large negative number where it is padding), added to
    /// every row of its batch row as the row is read; the sum is never stored. The mask is a constant.
    public func softmax(addingRowMask mask: Tensor) -> Tensor {
        let t = shape.last ?? 0
        require(rank >= 2 && mask.count == shape[0] * t && mask.shape.first == shape[0] && mask.shape.last == t,
                "softmax: mask \(mask.shape) does not give one value per batch row and key of \(shape)")
        require(!mask.requiresGrad, "softmax: the additive mask \(mask.shape) is a constant and cannot require a gradient")
        let out = Storage(count: count)
        let rows = count / Swift.max(t, 1), rowsPerBatch = rows / Swift.max(shape[0], 1)
        let (px, py, pm) = (pointer, out.pointer, mask.pointer)
        parallelChunks(rows, grain: Swift.max(1, (1 << 14) / Swift.max(t, 1))) { range in
            for r in range {
                let x = px + r * t, y = py + r * t, m = pm + r / rowsPerBatch * t
                let inv = 1 / expShifted(y, y, t, shift: addRowMax(x, m, y, t))
                for i in 0..<t { y[i] *= inv }
            }
        }
        return Tensor.result("masked_softmax", shape, out, [self]) { g, _ in
            [Tensor.softmaxGradient(g, savedOutput(self.shape, out) { self.softmax(addingRowMask: mask) })]
        }
    }

    /// (B, S, T, d) for q [B, S, heads · d] and k [B, T, heads · d].
    private static func headShapes(_ q: Tensor, _ k: Tensor, heads: Int, op: String) -> (Int, Int, Int, Int) {
        require(heads > 0 && q.rank == 3 && k.rank == 3 && q.shape[0] == k.shape[0] && q.shape[2] == k.shape[2]
                    && q.shape[2] % heads == 0,
                "\(op): \(q.shape) and \(k.shape) must be [B, S, \(heads)·d] and [B, T, \(heads)·d]")
        return (q.shape[0], q.shape[1], k.shape[1], q.shape[2] / heads)
    }

    /// `body(batchRow, head)` for every pair. With several threads each takes a share of the pairs and OpenBLAS runs
    /// single-threaded: one head's GEMM is too small to split well.
    private static func forEachHead(batch: Int, heads: Int, _ body: (Int, Int) -> Void) {
        let pairs = batch * heads
        guard kernelThreads > 1 && pairs > 1 else {
            for p in 0..<pairs { body(p / heads, p % heads) }
            return
        }
        withSingleThreadedBLAS {
            parallelChunks(pairs, grain: 1) { range in
                for p in range { body(p / heads, p % heads) }
            }
        }
    }
}
