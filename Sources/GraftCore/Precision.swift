import CGraftBF16

/// The arithmetic matrix products (matmul, linear, attention's per-head products) run in. Tensors, parameters,
/// gradients and optimizer state stay fp32 either way: bf16 is PyTorch's autocast to bfloat16 on CPU, with fp32
/// master weights. Convolutions stay fp32.
public enum MatmulPrecision: String, Sendable, CaseIterable {
    /// fp32 products and sums (the default).
    case float32 = "fp32"
    /// Each operand element rounded to bfloat16 (nearest, ties to even) as the GEMM reads it; products summed in
    /// fp32. About 3 significant digits per operand, twice the multiply rate on AVX-512 BF16 CPUs.
    case bfloat16 = "bf16"

    /// The precision in force for this task; set with `withMatmulPrecision`.
    @TaskLocal public static var current = MatmulPrecision.float32

    /// Whether this CPU multiplies bfloat16 in hardware (AVX-512 BF16, checked at run time). Without it bf16 is
    /// emulated: the operands are rounded the same way, then multiplied by fp32 sgemm (the same results up to the
    /// order of the sums; slower than fp32).
    public static let hardware = graft_bf16_hardware() != 0
}

/// Runs `body` with matrix products in `precision`, as `torch.autocast("cpu", dtype=torch.bfloat16)` for bf16.
/// Backward rules keep the precision their forward op ran in.
public func withMatmulPrecision<R>(_ precision: MatmulPrecision, _ body: () throws -> R) rethrows -> R {
    try MatmulPrecision.$current.withValue(precision, operation: body)
}

/// c = alpha · op(a) · op(b) + beta · c, row-major (sgemm's arguments), in `precision`. With `parallel`, the
/// bf16 kernel splits c's rows over the worker threads (OpenBLAS threads itself); callers that already share
/// GEMMs out across threads pass false.
func gemmKernel(_ precision: MatmulPrecision, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, beta: Float,
                _ c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool = true) {
    guard m > 0 && n > 0 else { return }
    switch precision {
    case .float32:
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a, lda: lda, b, ldb: ldb, beta: beta, c,
              ldc: ldc)
    case .bfloat16 where MatmulPrecision.hardware:
        let rows = { (range: Range<Int>) in
            // Rows of op(a) are rows of a, or columns when transposed.
            graft_bf16_gemm(transA ? 1 : 0, transB ? 1 : 0, Int32(range.count), Int32(n), Int32(k), alpha,
                            a + range.lowerBound * (transA ? 1 : lda), Int32(lda), b, Int32(ldb), beta,
                            c + range.lowerBound * ldc, Int32(ldc))
        }
        // Each thread packs all of op(b); 64 rows of c per thread at least keep that packing a small share.
        if parallel { parallelChunks(m, grain: 64, rows) } else { rows(0..<m) }
    case .bfloat16:
        emulatedBF16Gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a, lda: lda, b, ldb: ldb,
                         beta: beta, c, ldc: ldc)
    }
}

/// The bf16 product without the hardware: both operands rounded as the kernel rounds them, then fp32 sgemm.
func emulatedBF16Gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, _ a: UnsafePointer<Float>,
                      lda: Int, _ b: UnsafePointer<Float>, ldb: Int, beta: Float, _ c: UnsafeMutablePointer<Float>,
                      ldc: Int) {
    let (ra, ca) = transA ? (k, m) : (m, k), (rb, cb) = transB ? (n, k) : (k, n)
    let roundedA = bf16Rounded(a, rows: ra, columns: ca, ld: lda)
    let roundedB = bf16Rounded(b, rows: rb, columns: cb, ld: ldb)
    defer { roundedA.deallocate(); roundedB.deallocate() }
    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, roundedA, lda: Swift.max(ca, 1), roundedB,
          ldb: Swift.max(cb, 1), beta: beta, c, ldc: ldc)
}

/// A rows × columns matrix (leading dimension `ld`) rounded to bfloat16 values, packed densely.
private func bf16Rounded(_ x: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int) -> UnsafeMutablePointer<Float> {
    let out = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(rows * columns, 1))
    for r in 0..<rows { graft_bf16_round(x + r * ld, out + r * columns, columns) }
    return out
}
