import GraftCore
import GraftNN

/// An in-memory data set of inputs [N, …] and one class label per row, served as mini-batches in an order that
/// depends only on (seed, epoch): the same seed gives the same batches, run after run.
///
/// Sharding by rank belongs to the data-parallel sampler; this is the single-process order it will refine.
public struct Batches: @unchecked Sendable {
    /// All rows, [N, …].
    public let inputs: Tensor
    public let labels: [Int]
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64
    /// Drops a last batch smaller than `batchSize` (its statistics would differ from the others' under batch norm).
    public let dropLast: Bool

    public init(inputs: Tensor, labels: [Int], batchSize: Int, shuffle: Bool = true, seed: UInt64 = 0,
                dropLast: Bool = false) {
        require(inputs.rank >= 1 && inputs.shape[0] == labels.count,
                "Batches: \(labels.count) labels for inputs of shape \(inputs.shape)")
        require(batchSize > 0, "Batches: batch size must be positive, got \(batchSize)")
        (self.inputs, self.labels, self.batchSize) = (inputs.detached(), labels, batchSize)
        (self.shuffle, self.seed, self.dropLast) = (shuffle, seed, dropLast)
    }

    public var count: Int { labels.count }

    /// The number of batches per epoch.
    public var batchCount: Int { dropLast ? count / batchSize : (count + batchSize - 1) / batchSize }

    /// Row order for `epoch`: a seeded permutation (a fresh stream per epoch), or 0..<N without shuffling.
    public func order(epoch: Int) -> [Int] {
        var rows = Array(0..<count)
        guard shuffle else { return rows }
        var rng = RandomGenerator(seed: seed).split(UInt64(epoch))
        rows.shuffle(using: &rng)
        return rows
    }

    /// The mini-batches of `epoch`, in order.
    public func batches(epoch: Int) -> [(inputs: Tensor, labels: [Int])] {
        let rows = order(epoch: epoch)
        return stride(from: 0, to: batchCount * batchSize, by: batchSize).map { start in
            let chosen = Array(rows[start..<min(start + batchSize, count)])
            let x = withNoGrad { inputs.indexSelect(axis: 0, Indices(chosen, shape: [chosen.count])) }
            return (x, chosen.map { labels[$0] })
        }
    }

    /// The same rows with other inputs (cached features), keeping labels, batch size, seed and order.
    public func replacingInputs(_ newInputs: Tensor) -> Batches {
        Batches(inputs: newInputs, labels: labels, batchSize: batchSize, shuffle: shuffle, seed: seed, dropLast: dropLast)
    }
}

/// Body features computed once: with the body frozen and in inference mode, `features(x)` of a row never changes,
/// so feature extraction trains the head on these rows instead of running the body every epoch.
public enum FeatureCache {
    /// `model.features` of every row of `data`, in row order, without recording; the model is left in eval mode.
    /// Rows go through in chunks of `chunkSize` to bound memory. Batch norm uses its running statistics, as it does
    /// in a frozen body during training (`fixFrozenBatchNorm`).
    public static func features(of model: any BlockClassifier, inputs: Tensor, chunkSize: Int = 256) -> Tensor {
        require(chunkSize > 0, "FeatureCache: chunk size must be positive, got \(chunkSize)")
        model.eval()
        let n = inputs.shape[0]
        return withNoGrad {
            let chunks = stride(from: 0, to: n, by: chunkSize).map { start in
                let rows = Array(start..<min(start + chunkSize, n))
                return model.features(inputs.indexSelect(axis: 0, Indices(rows, shape: [rows.count])))
            }
            return chunks.count == 1 ? chunks[0] : Tensor.concat(chunks, axis: 0)
        }
    }

    /// `data` with its inputs replaced by their body features: same labels, batch size and shuffling.
    public static func cache(_ data: Batches, through model: any BlockClassifier, chunkSize: Int = 256) -> Batches {
        data.replacingInputs(features(of: model, inputs: data.inputs, chunkSize: chunkSize))
    }
}
