import Foundation
import GraftCore
import GraftNN

/// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay, as `torch.optim.SGD`.
public final class SGD: CoreOptimizer {
    public init(groups: [ParameterGroup]) throws {
        try super.init(groups, slots: ["momentum_buffer"], check: { o, group in
            try checkMomentum(o, group)
            if o.nesterov && (o.momentum <= 0 || o.dampening != 0) {
                throw invalid(group, "nesterov", "true (momentum \(o.momentum), dampening \(o.dampening))",
                              "Nesterov momentum requires momentum > 0 and dampening 0")
            }
        }, update: { core in
            core.step { c, name, param, grad, o in
                let p = param.pointer, g = grad.pointer
                let lr = o.learningRate, wd = o.weightDecay, mu = o.momentum
                guard mu != 0 else {
                    parallelChunks(param.count, grain: optimizerGrain) { r in
                        for i in r { p[i] -= lr * (g[i] + wd * p[i]) }
                    }
                    return
                }
                // The first step's buffer is the gradient itself, not a damped blend with zero (PyTorch's rule).
                let (bufTensor, fresh) = c.slot(name, "momentum_buffer", like: param, zeroed: false)
                let buf = bufTensor.pointer, nesterov = o.nesterov, keep = Float(1 - decimalValue(o.dampening))
                parallelChunks(param.count, grain: optimizerGrain) { r in
                    for i in r {
                        let d = g[i] + wd * p[i]
                        let b = fresh ? d : buf[i] * mu + keep * d
                        buf[i] = b
                        p[i] -= lr * (nesterov ? d + mu * b : b)
                    }
                }
            }
        })
    }
}

private func checkAdam(_ o: GroupOptions, _ group: String) throws {
    try checkEps(o, group)
    for (i, beta) in [o.betas.0, o.betas.1].enumerated() where !(beta >= 0 && beta < 1) {
        throw invalid(group, "betas.\(i)", beta, "must be in [0, 1)")
    }
}

/// The slots `adamStep` creates.
private func adamSlots(amsgrad: Bool) -> [String] {
    ["step", "exp_avg", "exp_avg_sq"] + (amsgrad ? ["max_exp_avg_sq"] : [])
}

/// One Adam step over every trainable parameter; `decoupled` is AdamW's p ← p·(1 − lr·wd) instead of L2.
private func adamStep(_ core: inout OptimizerCore, amsgrad: Bool, decoupled: Bool) {
    core.step { c, name, param, grad, o in
        let t = Double(c.advanceStep(name))
        let expAvg = c.slot(name, "exp_avg", like: param).0.pointer
        let expAvgSq = c.slot(name, "exp_avg_sq", like: param).0.pointer
        let maxSq = amsgrad ? c.slot(name, "max_exp_avg_sq", like: param).0.pointer : expAvgSq
        let b1 = decimalValue(o.betas.0), b2 = decimalValue(o.betas.1), lr = decimalValue(o.learningRate)
        let stepSize = Float(lr / (1 - pow(b1, t)))
        let bc2Sqrt = Float((1 - pow(b2, t)).squareRoot())
        let decay = Float(1 - lr * decimalValue(o.weightDecay))
        let l2 = decoupled ? 0 : o.weightDecay, eps = o.eps, beta2 = o.betas.1
        let w1 = Float(1 - b1), w2 = Float(1 - b2)
        let p = param.pointer, g = grad.pointer
        parallelChunks(param.count, grain: optimizerGrain) { r in
            for i in r {
                if decoupled { p[i] *= decay }
                let d = g[i] + l2 * p[i]
                let m = lerp(expAvg[i], d, w1)
                let v = expAvgSq[i] * beta2 + w2 * (d * d)
                expAvg[i] = m
                expAvgSq[i] = v
                var vHat = v
                if amsgrad { vHat = max(maxSq[i], v); maxSq[i] = vHat }
                p[i] -= stepSize * (m / (vHat.squareRoot() / bc2Sqrt + eps))
            }
        }
    }
}

/// Adam with bias correction, L2 weight decay added to the gradient and optional AMSGrad, as `torch.optim.Adam`.
public final class Adam: CoreOptimizer {
    public let amsgrad: Bool

    public init(groups: [ParameterGroup], amsgrad: Bool = false) throws {
        self.amsgrad = amsgrad
        try super.init(groups, slots: adamSlots(amsgrad: amsgrad), check: checkAdam) {
            adamStep(&$0, amsgrad: amsgrad, decoupled: false)
        }
    }
}

/// Adam with decoupled weight decay (p ← p·(1 − lr·wd) before the Adam update), as `torch.optim.AdamW`.
public final class AdamW: CoreOptimizer {
    public let amsgrad: Bool

    public init(groups: [ParameterGroup], amsgrad: Bool = false) throws {
        self.amsgrad = amsgrad
        try super.init(groups, slots: adamSlots(amsgrad: amsgrad), check: checkAdam) {
            adamStep(&$0, amsgrad: amsgrad, decoupled: true)
        }
    }
}

/// RMSprop with optional centering, momentum and L2 weight decay, as `torch.optim.RMSprop`.
public final class RMSprop: CoreOptimizer {
    public init(groups: [ParameterGroup]) throws {
        try super.init(groups, slots: ["step", "square_avg", "grad_avg", "momentum_buffer"], check: { o, group in
            try checkMomentum(o, group)
            try checkEps(o, group)
            if !(o.alpha >= 0 && o.alpha <= 1) { throw invalid(group, "alpha", o.alpha, "must be in [0, 1]") }
        }, update: { core in
            core.step { c, name, param, grad, o in
                _ = c.advanceStep(name)
                let sq = c.slot(name, "square_avg", like: param).0.pointer
                let centered = o.centered, mu = o.momentum
                let avgG = centered ? c.slot(name, "grad_avg", like: param).0.pointer : sq
                // PyTorch starts the RMSprop momentum buffer at zero (unlike SGD's).
                let buf = mu > 0 ? c.slot(name, "momentum_buffer", like: param).0.pointer : sq
                let alpha = o.alpha, w = Float(1 - decimalValue(alpha)), wd = o.weightDecay, eps = o.eps
                let lr = o.learningRate
                let p = param.pointer, g = grad.pointer
                parallelChunks(param.count, grain: optimizerGrain) { r in
                    for i in r {
                        let d = g[i] + wd * p[i]
                        let s = sq[i] * alpha + w * (d * d)
                        sq[i] = s
                        let denom: Float
                        if centered {
                            let a = lerp(avgG[i], d, w)
                            avgG[i] = a
                            denom = (s - a * a).squareRoot() + eps
                        } else {
                            denom = s.squareRoot() + eps
                        }
                        if mu > 0 {
                            let b = buf[i] * mu + d / denom
                            buf[i] = b
                            p[i] -= lr * b
                        } else {
                            p[i] -= lr * (d / denom)
                        }
                    }
                }
            }
        })
    }
}

/// The optimizers by the names recipes and the command line use.
public enum OptimizerKind: String, CaseIterable, Sendable {
    case sgd, adam, adamw, rmsprop

    /// The kind named `name` (case-insensitive); an unknown name is an error listing the known ones.
    public init(named name: String) throws {
        guard let kind = OptimizerKind(rawValue: name.lowercased()) else { throw OptimizerError.unknownOptimizer(name) }
        self = kind
    }

    /// A new optimizer of this kind over `groups`.
    public func make(_ groups: [ParameterGroup]) throws -> any Optimizer {
        switch self {
        case .sgd: try SGD(groups: groups)
        case .adam: try Adam(groups: groups)
        case .adamw: try AdamW(groups: groups)
        case .rmsprop: try RMSprop(groups: groups)
        }
    }
}
