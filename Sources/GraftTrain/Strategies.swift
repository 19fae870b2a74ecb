import Foundation
import GraftCore
import GraftData
import GraftDistributed
import GraftNN
import GraftOptim

/// How close the target data is to what the body was pretrained on.
public enum DomainSimilarity: Sendable { case high, low }

/// How many blocks from the top (the head counts as one) a partial fine-tune trains.
public enum BlockDepth: Sendable, Equatable, CustomStringConvertible {
    case topBlocks(Int)
    /// The top fraction of blocks, rounded up, as `ParameterSelector.topFraction`.
    case topFraction(Double)

    public var description: String {
        switch self {
        case let .topBlocks(k): k == 1 ? "the top block, the head" : "top \(k) blocks, the head one of them"
        case let .topFraction(f): "the top fraction \(f) of the blocks, the head one of them"
        }
    }

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
    /// The head alone for `headEpochs` epochs at `headLR`, then the top `thenTopBlocks` blocks at `lr2`; with
    /// `cachedHead`, the first stage trains on body features computed once.
    case twoStage(headEpochs: Int, headLR: Float, thenTopBlocks: Int, lr2: Float, cachedHead: Bool = true)
    /// ULMFiT's gradual unfreezing: the head first, then one more block from the top every `every` epochs;
    /// with `lowestRate`, discriminative rates from `lowestRate` (first block) to `lr` (head).
    case gradualUnfreezing(every: Int, lr: Float, lowestRate: Float? = nil)

    public var description: String {
        switch self {
        case let .featureExtraction(lr, cached): "feature extraction (head only, lr \(lr)\(cached ? ", cached features" : ""))"
        case let .fullFineTuning(lr, lowest):
            "full fine-tuning (lr \(lr)\(lowest.map { ", discriminative from \($0)" } ?? ""))"
        case let .partial(depth, lr): "partial fine-tuning (\(depth), lr \(lr))"
        case let .twoStage(e, headLR, k, lr2, cached):
            "two-stage (head for \(e) epochs at lr \(headLR)\(cached ? " on cached features" : ""), then top \(k) blocks at lr \(lr2), the head one of them)"
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
        case let .twoStage(headEpochs, _, k, _, _): epoch < headEpochs ? 1 : BlockDepth.topBlocks(k).count(of: total)
        case let .gradualUnfreezing(every, _, _): min(total, 1 + epoch / max(every, 1))
        }
    }

    /// The learning rate of each block (input first, head last) during `epoch`.
    public func learningRates(total: Int, epoch: Int) -> [Float] {
        switch self {
        case let .featureExtraction(lr, _), let .partial(_, lr): [Float](repeating: lr, count: total)
        case let .twoStage(headEpochs, headLR, _, lr2, _): [Float](repeating: epoch < headEpochs ? headLR : lr2, count: total)
        case let .fullFineTuning(lr, lowest), let .gradualUnfreezing(_, lr, lowest):
            lowest.map { DiscriminativeRates.spread($0, lr, blocks: total) } ?? [Float](repeating: lr, count: total)
        }
    }

    /// The strategy's stages: the epoch each ends at (nil: open-ended) and whether it trains on cached body
    /// features. Two-stage's head stage ends at `headEpochs`; the other strategies are one stage.
    public var stages: [(end: Int?, cached: Bool)] {
        switch self {
        case let .featureExtraction(_, cached): [(nil, cached)]
        case let .twoStage(headEpochs, _, _, _, cached): [(headEpochs, cached), (nil, false)]
        default: [(nil, false)]
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
/// strategy, on a `Trainer` (reached through `trainer` for hooks, evaluation and `restoreBest`). Blocks the
/// strategy freezes run in inference mode (dropout off, batch norm on running statistics), as a frozen body does in
/// feature extraction; `Trainer.Configuration.trainFrozenBatchNorm` keeps their batch norm training.
///
/// A model with LoRA adapters (`injectLoRA`) keeps its pretrained weights frozen throughout: in a block the strategy
/// trains, only the adapters train, while the head trains whole. Only those get gradients, so only theirs are summed
/// over ranks, and checkpoints hold only them with the head (`Trainer.adapterStateKeys`).
public final class FineTuner {
    public let model: any BlockClassifier
    public let strategy: FineTuningStrategy
    public let trainer: Trainer
    /// Block labels, input first; optimizer group i holds block i (a last, always frozen group "unused" holds any
    /// parameters outside every block, such as BERT's pooler under mean pooling).
    public let blockNames: [String]
    /// Epochs of the strategy done so far: the position in its stages, which early stopping can advance past
    /// the trainer's epoch count (a stopped first stage of two-stage skips to the second).
    public private(set) var strategyEpoch = 0
    /// With adapters: the body's own parameters, frozen whatever the strategy says (empty without adapters).
    public let frozenBase: [Tensor]

    /// `makeOptimizer` receives one group per block (Adam by default); its group options beyond the learning rate
    /// come from `base`.
    public init(model: any BlockClassifier, strategy: FineTuningStrategy, configuration: Trainer.Configuration,
                base: GroupOptions? = nil, communicator: any Communicator = LocalCommunicator(),
                auxiliaries: [(String, Module)] = [],
                makeOptimizer: ([ParameterGroup]) throws -> any Optimizer = { try Adam(groups: $0) }) throws {
        let blocks = model.blocks
        require(!blocks.isEmpty, "FineTuner: \(type(of: model)) has no blocks")
        let rates = strategy.learningRates(total: blocks.count, epoch: 0)
        let trainable = strategy.trainableBlocks(total: blocks.count, epoch: 0)
        var specs = blocks.enumerated().map { i, block in
            var options = base ?? GroupOptions(learningRate: rates[i])
            options.learningRate = rates[i]
            return GroupSpec(block.0, .blocks([block.0]), options: options, frozen: i < blocks.count - trainable)
        }
        // Auxiliary modules train from the start at the head's rate, each a group of its own.
        for (name, _) in auxiliaries {
            var options = base ?? GroupOptions(learningRate: rates[blocks.count - 1])
            options.learningRate = rates[blocks.count - 1]
            specs.append(GroupSpec(name, .regex("\(NSRegularExpression.escapedPattern(for: name))\\..*"), options: options))
        }
        let inBlocks = Set(blocks.flatMap { $0.1.namedParameters().map { ObjectIdentifier($0.1) } })
        if model.namedParameters().contains(where: { !inBlocks.contains(ObjectIdentifier($0.1)) }) {
            specs.append(GroupSpec("unused", .rest, frozen: true))
        }
        let trained: Module = auxiliaries.isEmpty ? model : WithAuxiliaries(model, auxiliaries)
        let groups = try makeGroups(trained, blocks: blocks, specs: specs, base: base ?? GroupOptions(learningRate: rates[0]))
        trainer = Trainer(model: trained, forward: { model($0) }, optimizer: try makeOptimizer(groups),
                          configuration: configuration, communicator: communicator)
        (self.model, self.strategy, blockNames) = (model, strategy, blocks.map(\.0))
        let adapters = model.loraLayers()
        if adapters.isEmpty {
            frozenBase = []
        } else {
            guard auxiliaries.isEmpty else { throw AdapterStrategyError("adapters with auxiliary modules (domain adaptation) are not supported") }
            try Self.checkAdaptersTrain(strategy, blocks: blocks, epochs: configuration.epochs)
            let own = Set(adapters.flatMap(\.1.adapterParameters).map(ObjectIdentifier.init))
                .union(blocks.last!.1.namedParameters().map { ObjectIdentifier($0.1) })
            let base = model.namedParameters().filter { !own.contains(ObjectIdentifier($0.1)) }
            frozenBase = base.map(\.1)
            trainer.adapterStateKeys = Set(model.stateDict().map(\.0)).subtracting(base.map(\.0))
            for p in frozenBase { p.requiresGrad = false }
        }
        trainer.onEpochStart.append { [unowned self] _ in apply(epoch: strategyEpoch) }
        trainer.onEpochEnd.append { [unowned self] _ in strategyEpoch += 1; return .proceed }
    }

    /// Sets each block's frozen flag, mode and base rate for `epoch` of the strategy; freezing flips
    /// `requiresGrad`, read at every step.
    public func apply(epoch: Int) {
        let total = blockNames.count
        let trainable = strategy.trainableBlocks(total: total, epoch: epoch)
        let rates = strategy.learningRates(total: total, epoch: epoch)
        let blocks = model.blocks
        for i in 0..<total {
            let frozen = i < total - trainable
            if trainer.optimizer.groups[i].frozen != frozen { trainer.optimizer.groups[i].frozen = frozen }
            if trainer.baseRates[i] != rates[i] {
                trainer.baseRates[i] = rates[i]
                trainer.optimizer.groups[i].options.learningRate = rates[i]
            }
            if frozen { blocks[i].1.eval() }
        }
        // Unfreezing a block's group unfroze its pretrained weights too; with adapters they stay frozen.
        for p in frozenBase { p.requiresGrad = false }
        if trainer.configuration.trainFrozenBatchNorm {
            for (_, m) in model.namedModules() where m is BatchNorm && model.isTraining { m.isTraining = true }
        }
    }

    /// Refuses a strategy under which no block holding adapters ever trains (feature extraction, or the top blocks
    /// only when the adapters sit lower): they would stay zero.
    private static func checkAdaptersTrain(_ strategy: FineTuningStrategy, blocks: [(String, Module)], epochs: Int) throws {
        let holders = blocks.indices.filter { !blocks[$0].1.loraLayers().isEmpty }
        let lowestTrained = (0..<max(epochs, 1)).map { blocks.count - strategy.trainableBlocks(total: blocks.count, epoch: $0) }.min()!
        guard let top = holders.last, top >= lowestTrained else {
            throw AdapterStrategyError("\(strategy) trains only the top \(blocks.count - lowestTrained) block(s) "
                + "(\(blocks.suffix(blocks.count - lowestTrained).map(\.0).joined(separator: ", "))), which hold no adapters, so they would "
                + "stay zero; with adapters use full (every block's adapters and the head), partial with more top blocks, two-stage or "
                + "gradual-unfreezing")
        }
    }

    /// Continues a run from a checkpoint's strategy position and early-stopping state: within a stage the stopping
    /// state carries on; a stage that had already decided to stop is over, as it would have been without the break.
    public func resume(strategyEpoch epoch: Int, stopping: EarlyStopping?) {
        strategyEpoch = epoch
        let stageStart = strategy.stages.compactMap(\.end).filter { $0 <= epoch }.max() ?? 0
        guard let stopping, epoch > stageStart else { return }
        if stopping.epochsWithoutImprovement >= stopping.patience {
            strategyEpoch = strategy.stages.compactMap(\.end).first { $0 > epoch } ?? Int.max
        } else {
            trainer.pendingStopping = stopping
        }
    }

    /// Trains `trainer.configuration.epochs` more epochs of the strategy, stage by stage; a cached stage trains
    /// the head on body features computed once here (`FeatureCache`), the others the whole model. Early stopping
    /// ends a stage: in two-stage's head stage the run moves on to the second stage, otherwise the call ends.
    @discardableResult
    public func fit(_ train: Batches, validation: Batches? = nil) throws -> [EpochReport] {
        let epochs = trainer.configuration.epochs
        defer { trainer.configuration.epochs = epochs }
        let target = strategyEpoch + epochs
        var reports: [EpochReport] = []
        for (end, cached) in strategy.stages {
            let stageEnd = min(end ?? target, target)
            guard strategyEpoch < stageEnd else { continue }
            trainer.configuration.epochs = stageEnd - strategyEpoch
            if cached {
                apply(epoch: strategyEpoch)
                let comm = trainer.communicator
                let cachedTrain = try FeatureCache.cache(train, through: model, communicator: comm, progress: trainer.progress)
                let cachedValidation = try validation.map {
                    try FeatureCache.cache($0, through: model, communicator: comm, progress: trainer.progress)
                }
                trainer.forward = { [model] in model.head($0) }
                defer { trainer.forward = { [model] in model($0) } }
                reports += try trainer.fit(cachedTrain, validation: cachedValidation)
            } else {
                reports += try trainer.fit(train, validation: validation)
            }
            guard strategyEpoch < stageEnd else { continue }
            // Stopped early: a stage with a fixed end hands over to the next one; an open-ended one ends the call.
            guard let end, end < target else { break }
            strategyEpoch = end
        }
        return reports
    }
}

/// A strategy that cannot train a model's adapters.
public struct AdapterStrategyError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
