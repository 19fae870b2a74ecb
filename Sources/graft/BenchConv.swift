import GraftCore

extension BenchCore {
    /// conv2d forward + input and weight gradients on a ResNet-like layer (x [32, 64, 32, 32], 3×3, 64→64,
    /// padding 1), and raw sgemm on the GEMM the forward pass lowers to ([64, 576] · [576, 32·32·32]).
    func convolutionFigures(using rng: inout RandomGenerator) -> (graft: Double, sgemm: Double) {
        let x = Tensor.randomNormal([32, 64, 32, 32], using: &rng, requiresGrad: true)
        let w = Tensor.randomNormal([64, 64, 3, 3], std: 0.05, using: &rng, requiresGrad: true)
        let g = Tensor.randomNormal([32, 64, 32, 32], using: &rng)
        let flops = 3 * 2 * Double(32 * 64 * 64 * 9 * 32 * 32)
        let graft = flops / secondsPerCall(minimum: 1) {
            _ = grad(of: Tensor.conv2d(x, weight: w, padding: .symmetric(1, 1)), wrt: [x, w], gradOutput: g)
        } / 1e9
        let (m, k, n) = (64, 576, 32 * 32 * 32)
        let a = Storage(repeating: 0.5, count: m * k), b = Storage(repeating: 0.25, count: k * n), c = Storage(count: m * n)
        let sgemm = 2 * Double(m * k * n) / secondsPerCall {
            GEMMLibrary.current.sgemm(transA: false, transB: false, m: m, n: n, k: k, a.pointer, lda: k, b.pointer, ldb: n,
                                      beta: 0, c.pointer, ldc: n)
        } / 1e9
        return (graft, sgemm)
    }
}
