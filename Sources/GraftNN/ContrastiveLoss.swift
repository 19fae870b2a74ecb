import GraftCore

// SimCLR's contrastive loss: two views of each row, embedded, each asked to pick out its partner among all views.

extension Tensor {
    /// SimCLR's NT-Xent (Chen et al., 2020) of embeddings `z` [2N, d] of N rows' two views, the views of row k at
    /// rows 2k and 2k + 1. Each row is normalised to unit length (PyTorch's `F.normalize`, ‖z‖ clamped to 1e-12);
    /// similarities are zᵢ·zⱼ / τ; each of the 2N views is an anchor whose positive is its partner and whose 2N − 2
    /// negatives are all other views (itself excluded). The loss is the mean over the anchors of the cross-entropy
    /// of picking the positive.
    public static func ntXent(_ z: Tensor, temperature: Float) -> Tensor {
        let logits = pairLogits(z, temperature: temperature)
        return Tensor.crossEntropy(logits, targets: partners(z.shape[0]))
    }

    /// How many of the 2N anchors of `z` (as in `ntXent`) have their positive as their most similar other view.
    public static func positivesRetrieved(_ z: Tensor, temperature: Float = 1) -> Int {
        let logits = withNoGrad { pairLogits(z, temperature: temperature) }
        let best = logits.argmax(axis: 1).values
        return zip(best, partners(z.shape[0])).filter { $0 == $1 }.count
    }

    /// Similarities / τ of the normalised rows, a view's similarity to itself pushed to −10⁹ so that it never
    /// counts (e^(−10⁹) is 0 in Float, and so is its gradient).
    private static func pairLogits(_ z: Tensor, temperature: Float) -> Tensor {
        require(z.rank == 2 && z.shape[0] >= 2 && z.shape[0] % 2 == 0,
                "ntXent: embeddings must be [2N, d] with N ≥ 1, got \(z.shape)")
        require(temperature > 0 && temperature.isFinite, "ntXent: temperature must be > 0, got \(temperature)")
        let n = z.shape[0]
        let norms = (z * z).sum(axes: [1], keepDims: true).sqrt().clamp(min: 1e-12)
        let unit = z / norms
        var mask = [Float](repeating: 0, count: n * n)
        for i in 0..<n { mask[i * n + i] = -1e9 }
        return unit.matmul(unit.transposed()) * (1 / temperature) + Tensor(mask, shape: [n, n])
    }

    /// Each view's partner: 2k ↔ 2k + 1.
    private static func partners(_ views: Int) -> [Int] { (0..<views).map { $0 ^ 1 } }
}
