import GraftCore
import GraftNN
import GraftOptim

/// How close the target data is to what the body was pretrained on.
public enum DomainSimilarity: Sendable { case high, low }

/// How many blocks from the top (the head counts as one) a partial fine-tune trains.
public enum BlockDepth: Sendable, Equatable {
    case topBlocks(Int)
    /// The top fraction of blocks, rounded up, as `ParameterSelector.topFraction`.
    case topFraction(Double)

    /// The number of blocks out of `total`, at least 1 (the head) and at most `total`.
    public func count(of total: Int) -> Int {
        switch self {
        case let .topBlocks(k): min(max(k, 1), total)
        case let .topFraction(f): min(max(Int((Double(total) * f).rounded(.up)), 1), total)
        }
    }
}

/// A transfer-learning recipe over a `BlockClassifier`'s blocks: which blocks train at each epoch and at what rate.
/// Everything is decided per epoch from the epoch number, so a resumed or data-parallel run reaches the same
/// trainable set on every rank without extra state.
public enum FineTuningStrategy: Sendable, Equatable, CustomStringConvertible {
    /// Body frozen (and in eval mode), head trained at `lr`; with `cached`, body features are computed once.
    case featureExtraction(lr: Float, cached: Bool = true)
    /// Every block trains: at `lr`, or with `lowestRate` spread geometrically from the first block up to `lr`
    /// at the head (fastai's `slice(lowestRate, lr)`).
    case fullFineTuning(lr: Float, lowestRate: Float? = nil)
    /// The top blocks train at `lr`; the rest stay frozen.
    case partial(BlockDepth, lr: Float)
    /// The head alone for `headEpochs` epochs at `headLR`, then the top `thenTopBlocks` blocks at `lr2`.
    case twoStage(headEpochs: Int, headLR: Float, thenTopBlocks: Int, lr2: Float)
    /// ULMFiT's gradual unfreezing: the head first, then one more block from the top every `every` epochs;
    /// with `lowestRate`, discriminative rates from `lowestRate` (first block) to `lr` (head).
    case gradualUnfreezing(every: Int, lr: Float, lowestRate: Float? = nil)

    public var description: String {
        switch self {
        case let .featureExtraction(lr, cached): "feature extraction (head only, lr \(lr)\(cached ? ", cached features" : ""))"
        case let .fullFineTuning(lr, lowest):
            "full fine-tuning (lr \(lr)\(lowest.map { ", discriminative from \($0)" } ?? ""))"
        case let .partial(depth, lr): "partial fine-tuning (\(depth), lr \(lr))"
        case let .twoStage(e, headLR, k, lr2): "two-stage (head for \(e) epochs at lr \(headLR), then top \(k) blocks at lr \(lr2))"
        case let .gradualUnfreezing(every, lr, lowest):
            "gradual unfreezing (one block every \(every) epochs, lr \(lr)\(lowest.map { ", discriminative from \($0)" } ?? ""))"
        }
    }

    /// How many blocks, counted from the top, train during `epoch` (0-based) of a model with `total` blocks.
    public func trainableBlocks(total: Int, epoch: Int) -> Int {
        switch self {
        case .featureExtraction: 1
        case .fullFineTuning: total
        case let .partial(depth, _): depth.count(of: total)
        case let .twoStage(headEpochs, _, k, _): epoch < headEpochs ? 1 : BlockDepth.topBlocks(k).count(of: total)
        case let .gradualUnfreezing(every, _, _): min(total, 1 + epoch / max(every, 1))
        }
    }

    /// The learning rate of each block (input first, head last) during `epoch`.
    public func learningRates(total: Int, epoch: Int) -> [Float] {
        switch self {
        case let .featureExtraction(lr, _), let .partial(_, lr): [Float](repeating: lr, count: total)
        case let .twoStage(headEpochs, headLR, _, lr2): [Float](repeating: epoch < headEpochs ? headLR : lr2, count: total)
        case let .fullFineTuning(lr, lowest), let .gradualUnfreezing(_, lr, lowest):
            lowest.map { DiscriminativeRates.spread($0, lr, blocks: total) } ?? [Float](repeating: lr, count: total)
        }
    }

    /// The decision matrix of data-set size × domain similarity, with a one-line reason for the choice.
    ///
    /// Thresholds follow the reference guides (Day 37 "Practical Guidelines": < 1K samples small, 1K–10K medium,
    /// > 10K large; Chapter 14: feature extraction below 1000 samples) and CS231n's "Transfer Learning" notes
    /// (small & similar: linear classifier on the features; small & different: classifier from earlier layers,
    /// i.e. fine-tune only the top; large: fine-tune the whole network, with a smaller rate for pretrained weights).
    /// Rates are Adam-scale, from the same table: 1e-3 for a fresh head, 1e-4 for pretrained blocks; the
    /// discriminative spread is ULMFiT's (Howard & Ruder 2018), the body's first block 10× below the head.
    public static func auto(datasetSize: Int, similarity: DomainSimilarity) -> (strategy: FineTuningStrategy, reason: String) {
        require(datasetSize > 0, "FineTuningStrategy.auto: data-set size must be positive, got \(datasetSize)")
        let size = datasetSize < 1000 ? "small (< 1,000)" : datasetSize < 10000 ? "medium (1,000–10,000)" : "large (≥ 10,000)"
        switch (datasetSize, similarity) {
        case (..<1000, .high):
            return (.featureExtraction(lr: 1e-3),
                    "\(datasetSize) rows is \(size) and the domain is similar: train only a new head on frozen features")
        case (..<1000, .low):
            return (.partial(.topBlocks(2), lr: 1e-4),
                    "\(datasetSize) rows is \(size) and the domain differs: fine-tune the top block and head at a low rate")
        case (..<10000, _):
            return (.partial(.topBlocks(3), lr: 1e-4),
                    "\(datasetSize) rows is \(size): fine-tune the top 2 blocks and the head at a low rate, early layers stay frozen")
        case (_, .high):
            return (.fullFineTuning(lr: 1e-4),
                    "\(datasetSize) rows is \(size) and the domain is similar: fine-tune the whole network at a low rate")
        case (_, .low):
            return (.fullFineTuning(lr: 1e-3, lowestRate: 1e-4),
                    "\(datasetSize) rows is \(size) and the domain differs: fine-tune everything, discriminative rates 1e-4 → 1e-3")
        }
    }
}

/// Trains a `BlockClassifier` with a strategy: one optimizer group per block, frozen and rated per epoch by the
/// strategy, on a `Trainer` (reached through `trainer` for hooks, evaluation and `restoreBest`).
public final class FineTuner {
    public let model: any BlockClassifier
    public let strategy: FineTuningStrategy
    public let trainer: Trainer
    /// Block labels, input first; optimizer group i holds block i.
    public let blockNames: [String]

    /// `makeOptimizer` receives one group per block (Adam by default); its group options beyond the learning rate
    /// come from `base`.
    public init(model: any BlockClassifier, strategy: FineTuningStrategy, configuration: Trainer.Configuration,
                base: GroupOptions? = nil,
                makeOptimizer: ([ParameterGroup]) throws -> any Optimizer = { try Adam(groups: $0) }) throws {
        let blocks = model.blocks
        require(!blocks.isEmpty, "FineTuner: \(type(of: model)) has no blocks")
        let rates = strategy.learningRates(total: blocks.count, epoch: 0)
        let trainable = strategy.trainableBlocks(total: blocks.count, epoch: 0)
        let specs = blocks.enumerated().map { i, block in
            var options = base ?? GroupOptions(learningRate: rates[i])
            options.learningRate = rates[i]
            return GroupSpec(block.0, .blocks([block.0]), options: options, frozen: i < blocks.count - trainable)
        }
        let groups = try makeGroups(model, blocks: blocks, specs: specs, base: base ?? GroupOptions(learningRate: rates[0]))
        let optimizer = try makeOptimizer(groups)
        let head = FeatureCache.head(of: model)
        let cached: Bool = if case .featureExtraction(_, true) = strategy { true } else { false }
        trainer = Trainer(model: model, forward: cached ? { head($0) } : { model($0) }, optimizer: optimizer,
                          configuration: configuration)
        (self.model, self.strategy, blockNames) = (model, strategy, blocks.map(\.0))
        trainer.onEpochStart.append { [unowned self] epoch in apply(epoch: epoch) }
    }

    /// Sets each group's frozen flag and base rate for `epoch`; freezing flips `requiresGrad`, read at every step.
    public func apply(epoch: Int) {
        let total = blockNames.count
        let trainable = strategy.trainableBlocks(total: total, epoch: epoch)
        let rates = strategy.learningRates(total: total, epoch: epoch)
        for i in 0..<total {
            let frozen = i < total - trainable
            if trainer.optimizer.groups[i].frozen != frozen { trainer.optimizer.groups[i].frozen = frozen }
            if trainer.baseRates[i] != rates[i] {
                trainer.baseRates[i] = rates[i]
                trainer.optimizer.groups[i].options.learningRate = rates[i]
            }
        }
    }

    /// Trains on `train` (feature extraction with caching: on its body features, computed once here).
    @discardableResult
    public func fit(_ train: Batches, validation: Batches? = nil) -> [EpochReport] {
        guard case .featureExtraction(_, true) = strategy else { return trainer.fit(train, validation: validation) }
        apply(epoch: trainer.epochCount)
        return trainer.fit(FeatureCache.cache(train, through: model),
                           validation: validation.map { FeatureCache.cache($0, through: model) })
    }
}
