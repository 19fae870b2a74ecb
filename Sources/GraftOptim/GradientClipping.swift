import Foundation
import GraftCore

/// Scales the gradients of `parameters` so their combined `normType`-norm is at most `maxNorm`, as
/// `torch.nn.utils.clip_grad_norm_`, and returns the norm before clipping. Parameters without a gradient are ignored.
///
/// Clipped gradients are new tensors assigned to `grad`: a gradient may share storage with other leaves' gradients.
@discardableResult
public func clipGradientNorm(_ parameters: [Tensor], maxNorm: Float, normType: Float = 2) -> Float {
    require(normType > 0, "clipGradientNorm: normType must be > 0, got \(normType)")
    require(maxNorm >= 0, "clipGradientNorm: maxNorm must be ≥ 0, got \(maxNorm)")
    let grads = parameters.compactMap(\.grad)
    var total: Double = 0
    for g in grads {
        let x = g.pointer
        if normType == .infinity {
            for i in 0..<g.count { total = max(total, Double(abs(x[i]))) }
        } else if normType == 2 {
            for i in 0..<g.count { total += Double(x[i]) * Double(x[i]) }
        } else {
            for i in 0..<g.count { total += pow(Double(abs(x[i])), Double(normType)) }
        }
    }
    if normType == 2 { total = total.squareRoot() } else if normType != .infinity { total = pow(total, 1 / Double(normType)) }
    let norm = Float(total)
    let scale = maxNorm / (norm + 1e-6)
    if scale < 1 { scaleGradients(parameters) { $0 * scale } }
    return norm
}

/// Clamps every gradient element of `parameters` to [−limit, limit], as `torch.nn.utils.clip_grad_value_`,
/// writing new gradient tensors (gradients may share storage).
public func clipGradientValue(_ parameters: [Tensor], limit: Float) {
    require(limit >= 0, "clipGradientValue: limit must be ≥ 0, got \(limit)")
    scaleGradients(parameters) { min(max($0, -limit), limit) }
}

/// Replaces each parameter's gradient with `f` applied to every element, in fresh storage.
private func scaleGradients(_ parameters: [Tensor], _ f: (Float) -> Float) {
    for p in parameters {
        guard let g = p.grad else { continue }
        let out = Storage(count: g.count)
        let src = g.pointer, dst = out.pointer
        parallelChunks(g.count, grain: 1 << 15) { r in for i in r { dst[i] = f(src[i]) } }
        p.grad = Tensor(shape: g.shape, storage: out)
    }
}
