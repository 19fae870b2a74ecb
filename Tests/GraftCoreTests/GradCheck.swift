import Testing
@testable import GraftCore

/// Central finite differences in Double precision of a scalar function of Float tensors.
/// `f` must build a fresh graph from the given inputs on every call.
func numericGradients(_ inputs: [Tensor], eps: Float = 1e-2, _ f: ([Tensor]) -> Tensor) -> [[Double]] {
    inputs.indices.map { k in
        (0..<inputs[k].count).map { i in
            let p = inputs[k].pointer
            let saved = p[i]
            p[i] = saved + eps
            let up = Double(withNoGrad { f(inputs) }.sum().item)
            p[i] = saved - eps
            let down = Double(withNoGrad { f(inputs) }.sum().item)
            p[i] = saved
            return (up - down) / (2 * Double(eps))
        }
    }
}

/// Asserts that autograd's gradients of `f` (summed against a fixed random projection) match finite differences.
/// The projection makes every output element matter, with distinct weights.
func checkGradients(_ inputs: [Tensor], seed: UInt64 = 7, eps: Float = 1e-2, tolerance: Double = 2e-2,
                    _ f: @escaping ([Tensor]) -> Tensor, sourceLocation: SourceLocation = #_sourceLocation) {
    for t in inputs { t.requiresGrad = true }
    var rng = RandomGenerator(seed: seed)
    let probe = withNoGrad { f(inputs) }
    let weights = Tensor.randomNormal(probe.shape, using: &rng)
    let objective: ([Tensor]) -> Tensor = { (f($0) * weights).sum() }
    let analytic = grad(of: objective(inputs), wrt: inputs)
    let numeric = numericGradients(inputs, eps: eps, objective)
    for k in inputs.indices {
        #expect(analytic[k].shape == inputs[k].shape, sourceLocation: sourceLocation)
        let a = analytic[k].scalars.map(Double.init)
        let scale = max(1, numeric[k].map(abs).max() ?? 0)
        let worst = zip(a, numeric[k]).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= tolerance * scale, "input \(k) \(inputs[k].shape): max |analytic - numeric| = \(worst) (scale \(scale))",
                sourceLocation: sourceLocation)
    }
}

/// Checks second-order gradients: the gradient of ⟨∇f(x), v⟩ with respect to the inputs, built with
/// `createGraph: true`, against finite differences of the first-order gradient.
func checkSecondOrder(_ inputs: [Tensor], seed: UInt64 = 11, eps: Float = 1e-2, tolerance: Double = 3e-2,
                      _ f: @escaping ([Tensor]) -> Tensor, sourceLocation: SourceLocation = #_sourceLocation) {
    for t in inputs { t.requiresGrad = true }
    var rng = RandomGenerator(seed: seed)
    let probe = withNoGrad { f(inputs) }
    let weights = Tensor.randomNormal(probe.shape, using: &rng)
    let directions = inputs.map { Tensor.randomNormal($0.shape, using: &rng) }
    // h(x) = Σ_k ⟨∂(f·w)/∂x_k, v_k⟩, a scalar whose gradient is a Hessian-vector product.
    let h: ([Tensor]) -> Tensor = { xs in
        let gs = grad(of: (f(xs) * weights).sum(), wrt: xs, createGraph: true)
        return zip(gs, directions).map { ($0 * $1).sum() }.reduce(Tensor(scalar: 0), +)
    }
    let analytic = grad(of: h(inputs), wrt: inputs)
    let numeric = inputs.indices.map { k in
        (0..<inputs[k].count).map { i -> Double in
            let p = inputs[k].pointer
            let saved = p[i]
            p[i] = saved + eps
            let up = Double(h(inputs).item)
            p[i] = saved - eps
            let down = Double(h(inputs).item)
            p[i] = saved
            return (up - down) / (2 * Double(eps))
        }
    }
    for k in inputs.indices {
        let a = analytic[k].scalars.map(Double.init)
        let scale = max(1, numeric[k].map(abs).max() ?? 0)
        let worst = zip(a, numeric[k]).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= tolerance * scale, "second order, input \(k) \(inputs[k].shape): max error \(worst) (scale \(scale))",
                sourceLocation: sourceLocation)
    }
}

/// A tensor of uniform values in [low, high) from a fixed seed.
func sample(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    return Tensor.randomUniform(shape, low: low, high: high, using: &rng)
}

/// Asserts two float arrays agree to a relative tolerance.
func expectClose(_ a: [Float], _ b: [Float], rtol: Float = 1e-4, atol: Float = 1e-5,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "lengths \(a.count) vs \(b.count)", sourceLocation: sourceLocation)
    let bad = zip(a, b).enumerated().first { abs($0.element.0 - $0.element.1) > atol + rtol * abs($0.element.1) }
    #expect(bad == nil, "first mismatch at \(bad?.offset ?? -1): \(bad?.element.0 ?? 0) vs \(bad?.element.1 ?? 0)",
            sourceLocation: sourceLocation)
}

/// Asserts that an exit test's standard error contains `message` (shape errors name the op and the shapes).
func expectMessage(_ message: String, _ result: ExitTest.Result?, sourceLocation: SourceLocation = #_sourceLocation) {
    let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
    #expect(stderr.contains(message), "stderr was: \(stderr)", sourceLocation: sourceLocation)
}
