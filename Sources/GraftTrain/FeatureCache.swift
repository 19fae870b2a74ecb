import GraftCore
import GraftData
import GraftDistributed
import GraftNN

/// Body features computed once: with the body frozen and in inference mode, `features(x)` of a row never changes,
/// so feature extraction trains the head on these rows instead of running the body every epoch.
public enum FeatureCache {
    /// `model.features` of every row of `data`, in row order, without recording; the model is left in eval mode.
    /// Each rank computes a contiguous share of the rows, in chunks of `chunkSize` to bound memory, and one sum over
    /// ranks of the zero-padded results assembles the whole cache on every rank. Batch norm uses its running
    /// statistics, as it does in a frozen body during training (`fixFrozenBatchNorm`).
    public static func features(of model: any BlockClassifier, inputs: Tensor, chunkSize: Int = 64,
                                communicator: any Communicator = LocalCommunicator(),
                                progress: ProgressReporter? = nil) throws -> Tensor {
        require(chunkSize > 0, "FeatureCache: chunk size must be positive, got \(chunkSize)")
        model.eval()
        let n = inputs.shape[0]
        let mine = Batches.share(n, rank: communicator.rank, of: communicator.size)
        progress?.begin("caching features", total: mine.count, unit: "rows")
        let chunks = withNoGrad {
            stride(from: mine.lowerBound, to: mine.upperBound, by: chunkSize).map { start in
                let rows = Array(start..<min(start + chunkSize, mine.upperBound))
                defer { progress?.advance(to: rows.last! + 1 - mine.lowerBound) }
                return model.features(inputs.indexSelect(axis: 0, Indices(rows, shape: [rows.count])))
            }
        }
        progress?.end()
        let width = Int(try communicator.allReduce(Int64(chunks.first?.shape[1] ?? 0), op: .max))
        let all = Storage(repeating: 0, count: n * width)
        var offset = mine.lowerBound * width
        for chunk in chunks {
            require(chunk.rank == 2 && chunk.shape[1] == width, "FeatureCache: features \(chunk.shape), expected [_, \(width)]")
            (all.pointer + offset).update(from: chunk.pointer, count: chunk.count)
            offset += chunk.count
        }
        try communicator.allReduce(all.buffer, op: .sum)
        return Tensor(shape: [n, width], storage: all)
    }

    /// `data` with its inputs replaced by their body features: same labels, batch size and shuffling.
    public static func cache(_ data: Batches, through model: any BlockClassifier, chunkSize: Int = 64,
                             communicator: any Communicator = LocalCommunicator(),
                             progress: ProgressReporter? = nil) throws -> Batches {
        // Features of the stored rows would freeze one version of rows that change every epoch.
        require(data.transform == nil, "FeatureCache.cache: rows transformed at batch time (augmentation) cannot be cached")
        return data.replacingInputs(try features(of: model, inputs: data.inputs, chunkSize: chunkSize, communicator: communicator,
                                          progress: progress))
    }
}
