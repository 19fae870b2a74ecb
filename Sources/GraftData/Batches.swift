import GraftCore

/// An in-memory data set of inputs [N, …] and one class label per row, served as global mini-batches in an order
/// that depends only on (seed, epoch), each split across the ranks of a data-parallel run.
///
/// `batchSize` is the global batch: step s of an epoch takes rows `order[s·B ..< (s+1)·B]`, and rank r of N trains on
/// the r-th of N contiguous, near-equal parts of them. Every row is seen once per epoch whatever N is (without
/// `dropLast`), no row is repeated to pad a short part, and a rank whose part is empty still takes part in the step.
public struct Batches: @unchecked Sendable {
    /// All rows, [N, …].
    public let inputs: Tensor
    public let labels: [Int]
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64
    /// Drops a last batch smaller than `batchSize` (its statistics would differ from the others' under batch norm).
    public let dropLast: Bool
    /// Applied to each rank's rows as a batch is taken (augmentation); nil serves the stored inputs as they are.
    public let transform: RowTransform?

    /// What a rank's rows become at batch time: (their stored inputs, their row indices, the epoch) → model inputs.
    /// It must depend on nothing else (never on the rank), and must take zero rows too.
    public typealias RowTransform = @Sendable (_ inputs: Tensor, _ rows: [Int], _ epoch: Int) -> Tensor

    public init(inputs: Tensor, labels: [Int], batchSize: Int, shuffle: Bool = true, seed: UInt64 = 0,
                dropLast: Bool = false, transform: RowTransform? = nil) {
        require(inputs.rank >= 1 && inputs.shape[0] == labels.count,
                "Batches: \(labels.count) labels for inputs of shape \(inputs.shape)")
        require(batchSize > 0, "Batches: batch size must be positive, got \(batchSize)")
        (self.inputs, self.labels, self.batchSize) = (inputs.detached(), labels, batchSize)
        (self.shuffle, self.seed, self.dropLast, self.transform) = (shuffle, seed, dropLast, transform)
    }

    public var count: Int { labels.count }

    /// The number of (global) batches per epoch: the steps every rank takes.
    public var batchCount: Int { dropLast ? count / batchSize : (count + batchSize - 1) / batchSize }

    /// Row order for `epoch`: a seeded permutation (a fresh stream per epoch), or 0..<N without shuffling.
    public func order(epoch: Int) -> [Int] {
        var rows = Array(0..<count)
        guard shuffle else { return rows }
        var rng = RandomGenerator(seed: seed).split(UInt64(epoch))
        rows.shuffle(using: &rng)
        return rows
    }

    /// The rows of global batch `step` in `order`.
    public func globalRows(_ order: [Int], step: Int) -> ArraySlice<Int> {
        require(step >= 0 && step < batchCount, "Batches: step \(step) outside 0..<\(batchCount)")
        return order[step * batchSize..<min((step + 1) * batchSize, count)]
    }

    /// Rank `rank`'s part of global batch `step`: its inputs (through `transform` for `epoch`), labels and row
    /// indices, and the global batch's size.
    public func batch(_ order: [Int], step: Int, rank: Int = 0, of ranks: Int = 1, epoch: Int = 0) -> Batch {
        let global = globalRows(order, step: step)
        let part = Batches.share(global.count, rank: rank, of: ranks)
        let rows = Array(global[(global.startIndex + part.lowerBound)..<(global.startIndex + part.upperBound)])
        var x = rows.isEmpty ? Tensor(shape: [0] + inputs.shape.dropFirst(), storage: Storage(count: 0))
            : withNoGrad { inputs.indexSelect(axis: 0, Indices(rows, shape: [rows.count])) }
        if let transform { x = withNoGrad { transform(x, rows, epoch) } }
        return Batch(inputs: x, labels: rows.map { labels[$0] }, rows: rows, globalCount: global.count)
    }

    /// The part of `count` items rank `rank` of `ranks` takes: contiguous, sizes differing by at most one, the first
    /// `count % ranks` ranks taking one more.
    public static func share(_ count: Int, rank: Int, of ranks: Int) -> Range<Int> {
        require(ranks > 0 && rank >= 0 && rank < ranks, "Batches: rank \(rank) of \(ranks)")
        let base = count / ranks, extra = count % ranks
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// The same rows in order, every one of them: what evaluation goes through (a transform sees epoch 0).
    public var inOrder: Batches {
        Batches(inputs: inputs, labels: labels, batchSize: batchSize, shuffle: false, seed: seed, dropLast: false,
                transform: transform)
    }

    /// The same rows with other inputs (cached features), keeping labels, batch size, seed and order; the new
    /// inputs are served as they are, without `transform`.
    public func replacingInputs(_ newInputs: Tensor) -> Batches {
        Batches(inputs: newInputs, labels: labels, batchSize: batchSize, shuffle: shuffle, seed: seed, dropLast: dropLast)
    }
}

/// One rank's part of a global mini-batch.
public struct Batch: @unchecked Sendable {
    public let inputs: Tensor
    public let labels: [Int]
    /// Indices of the rows in the data set: what per-row randomness (dropout, augmentation) is keyed on.
    public let rows: [Int]
    /// Rows in the global batch over all ranks: what the loss of the step is averaged over.
    public let globalCount: Int
}
