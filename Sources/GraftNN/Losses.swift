import GraftCore

/// Training losses with PyTorch's definitions and mean reductions, built from recorded ops (differentiable to
/// any order). The unweighted cross-entropy is `Tensor.crossEntropy`, a fused kernel.
public enum Loss {
    /// Cross-entropy with per-class `weights`, as `F.cross_entropy(weight=…)`: each row counts with its target's
    /// weight and the mean divides by the sum of those weights; label smoothing spreads ε over the classes with
    /// the same weights.
    public static func crossEntropy(_ logits: Tensor, targets: [Int], weights: [Float], labelSmoothing eps: Float = 0,
                                    ignoreIndex: Int? = nil) -> Tensor {
        require(logits.rank == 2 && targets.count == logits.shape[0] && weights.count == logits.shape[1],
                "crossEntropy: logits \(logits.shape), \(targets.count) targets and \(weights.count) class weights do not fit")
        let classes = logits.shape[1]
        var hard = [Float](repeating: 0, count: logits.count), soft = [Float](repeating: 0, count: logits.count)
        var total: Float = 0
        for (r, t) in targets.enumerated() where t != ignoreIndex {
            require(t >= 0 && t < classes, "crossEntropy: target \(t) out of range for \(classes) classes")
            hard[r * classes + t] = weights[t]
            for c in 0..<classes { soft[r * classes + c] = weights[c] / Float(classes) }
            total += weights[t]
        }
        let logp = logits.logSoftmax(axis: -1)
        let nll = -(logp * Tensor(hard, shape: logits.shape)).sum() / total
        guard eps > 0 else { return nll }
        let smooth = -(logp * Tensor(soft, shape: logits.shape)).sum() / total
        return nll * (1 - eps) + smooth * eps
    }

    /// Binary cross-entropy on logits, stable for large |x|: mean of max(x, 0) − x·y + log(1 + e^(−|x|)),
    /// with `positiveWeight` scaling the positive term as `F.binary_cross_entropy_with_logits(pos_weight=…)`.
    public static func binaryCrossEntropyWithLogits(_ logits: Tensor, targets: Tensor, positiveWeight: Float = 1) -> Tensor {
        require(logits.shape == targets.shape, "binaryCrossEntropy: logits \(logits.shape) and targets \(targets.shape) differ")
        // log σ(x) = −softplus(−x), log(1 − σ(x)) = −softplus(x); softplus(z) = max(z, 0) + log(1 + e^(−|z|)).
        func softplus(_ z: Tensor) -> Tensor { z.relu() + ((-z.abs()).exp() + 1).log() }
        let loss = targets * softplus(-logits) * positiveWeight + (1 - targets) * softplus(logits)
        return loss.mean()
    }

    /// Mean squared error.
    public static func meanSquaredError(_ prediction: Tensor, _ target: Tensor) -> Tensor {
        require(prediction.shape == target.shape, "meanSquaredError: shapes \(prediction.shape) and \(target.shape) differ")
        let d = prediction - target
        return (d * d).mean()
    }

    /// Knowledge-distillation loss (Hinton et al.): T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over
    /// the batch, as `F.kl_div(log_softmax(s/T), softmax(t/T), reduction="batchmean") * T * T`.
    public static func distillation(student: Tensor, teacher: Tensor, temperature: Float) -> Tensor {
        require(student.shape == teacher.shape && student.rank == 2,
                "distillation: student \(student.shape) and teacher \(teacher.shape) must be the same [N, C]")
        require(temperature > 0, "distillation: temperature \(temperature) must be positive")
        let logQ = (student / temperature).logSoftmax(axis: -1)
        let logP = withNoGrad { (teacher / temperature).logSoftmax(axis: -1) }
        let kl = (logP.exp() * (logP - logQ)).sum() / Float(student.shape[0])
        return kl * (temperature * temperature)
    }
}
