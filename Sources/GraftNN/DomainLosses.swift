import GraftCore

// The losses of domain adaptation: each compares source and target features [rows, features] of one batch.

extension Tensor {
    /// DANN's gradient-reversal layer (Ganin & Lempitsky, 2015): the identity forward, −λ times the gradient backward,
    /// so that what follows learns to tell the domains apart while what precedes learns to hide them.
    public func reversingGradient(scale lambda: Float) -> Tensor {
        Tensor.custom("gradientReversal", output: detached(), inputs: [self]) { g, needs in
            [needs[0] ? g * -lambda : nil]
        }
    }

    /// Deep CORAL's loss (Sun & Saenko, 2016): ‖C_s − C_t‖²_F / (4d²), with C the unbiased covariance of the rows
    /// (divided by n − 1) of `source` [n, d] and `target` [m, d].
    public static func coralLoss(source: Tensor, target: Tensor) -> Tensor {
        checkFeatures(source, target, "coralLoss")
        require(source.shape[0] >= 2 && target.shape[0] >= 2,
                "coralLoss: a covariance needs at least 2 rows, got \(source.shape[0]) and \(target.shape[0])")
        let d = source.shape[1]
        let difference = covariance(source) - covariance(target)
        return (difference * difference).sum() / Float(4 * d * d)
    }

    /// The squared maximum mean discrepancy between the rows of `source` [n, d] and `target` [m, d] under the mean of
    /// Gaussian kernels k_j(x, y) = exp(−‖x − y‖² / (2σ_j²)), as in DAN (Long et al., 2015): the biased estimate
    /// mean k(s, s′) + mean k(t, t′) − 2 mean k(s, t) over all pairs, each kernel counted equally.
    public static func mmd(source: Tensor, target: Tensor, bandwidths: [Float]) -> Tensor {
        checkFeatures(source, target, "mmd")
        require(!bandwidths.isEmpty && bandwidths.allSatisfy { $0 > 0 && $0.isFinite },
                "mmd: bandwidths must be positive, got \(bandwidths)")
        let (n, m) = (source.shape[0], target.shape[0])
        require(n > 0 && m > 0, "mmd: both sides need rows, got \(n) and \(m)")
        let distances = squaredDistances(Tensor.concat([source, target], axis: 0))
        // w = (1/n, …, −1/m, …): wᵀ K w is the estimate for one kernel.
        let w = Tensor([Float](repeating: 1 / Float(n), count: n) + [Float](repeating: -1 / Float(m), count: m),
                       shape: [n + m, 1])
        let pairWeights = w.matmul(w.transposed())
        let kernels = bandwidths.map { sigma in (distances * (-1 / (2 * sigma * sigma))).exp() }
        return (kernels.dropFirst().reduce(kernels[0], +) * pairWeights).sum() / Float(bandwidths.count)
    }

    /// The median heuristic: σ with 2σ² the median squared distance between two different rows of `rows` [n, d]
    /// (the mean of the two middle values for an even count); not differentiated.
    public static func medianBandwidth(_ rows: Tensor) -> Float {
        let n = rows.shape[0]
        require(rows.shape.count == 2 && n >= 2, "medianBandwidth: need [rows ≥ 2, features], got \(rows.shape)")
        let d = withNoGrad { squaredDistances(rows) }
        var values: [Float] = []
        values.reserveCapacity(n * (n - 1) / 2)
        for i in 0..<n { for j in (i + 1)..<n { values.append(d.pointer[i * n + j]) } }
        values.sort()
        let c = values.count
        let median = c % 2 == 1 ? values[c / 2] : (values[c / 2 - 1] + values[c / 2]) / 2
        // All rows alike: any width gives a zero discrepancy; 1 keeps the kernels finite.
        return median > 0 ? (median / 2).squareRoot() : 1
    }

    /// ‖x_i − x_j‖² for the rows of x [n, d], as ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j clamped at 0 against rounding.
    static func squaredDistances(_ x: Tensor) -> Tensor {
        let norms = (x * x).sum(axes: [1], keepDims: true)
        return (norms + norms.transposed() - 2 * x.matmul(x.transposed())).clamp(min: 0)
    }

    private static func covariance(_ x: Tensor) -> Tensor {
        let centred = x - x.mean(axes: [0], keepDims: true)
        return centred.transposed().matmul(centred) / Float(x.shape[0] - 1)
    }

    private static func checkFeatures(_ source: Tensor, _ target: Tensor, _ op: String) {
        require(source.shape.count == 2 && target.shape.count == 2 && source.shape[1] == target.shape[1],
                "\(op): source \(source.shape) and target \(target.shape) must be [rows, features] of one width")
    }
}
