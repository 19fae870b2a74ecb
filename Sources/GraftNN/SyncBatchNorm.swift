import GraftCore

extension BatchNorm {
    /// Training-mode batch norm whose statistics span every rank's rows, as PyTorch's `SyncBatchNorm`: the per-channel
    /// sums go through `sumAcrossRanks` (a differentiable sum over ranks, whose gradient is again a sum over ranks), so
    /// N ranks normalise exactly as one process would over the global batch. Every rank must call it in every step.
    func synchronisedForward(_ x: Tensor, sumAcrossRanks: (Tensor) -> Tensor) -> Tensor {
        let c = x.shape[1]
        let channel = [1, c] + [Int](repeating: 1, count: x.rank - 2)
        let axes = [0] + Array(2..<x.rank)
        let count = withNoGrad { sumAcrossRanks(Tensor([Float(x.count / c)], shape: [1])) }.item
        require(count > 1, "batchNorm: training needs more than one value per channel over all ranks, got \(Int(count))")
        let mean = sumAcrossRanks(x.sum(axes: axes)) * (1 / count)
        let centered = x - mean.reshaped(channel)
        let variance = sumAcrossRanks((centered * centered).sum(axes: axes)) * (1 / count)
        var y = centered / (variance + eps).sqrt().reshaped(channel)
        if let weight { y = y * weight.reshaped(channel) }
        if let bias { y = y + bias.reshaped(channel) }
        withNoGrad {
            // Running statistics as PyTorch keeps them: the unbiased variance of the global batch.
            let unbiased = variance * (count / (count - 1))
            for (running, batch) in [(runningMean, mean), (runningVar, unbiased)] {
                for i in 0..<c { running.pointer[i] = (1 - momentum) * running.pointer[i] + momentum * batch.pointer[i] }
            }
        }
        return y
    }
}
