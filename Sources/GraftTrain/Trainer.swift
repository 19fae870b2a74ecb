import GraftCore
import GraftNN
import GraftOptim

/// Loss, accuracy and macro-F1 over a data set, with the confusion matrix they come from.
public struct Evaluation: Sendable {
    public var loss: Double
    public var confusion: ConfusionMatrix
    public var accuracy: Double { confusion.accuracy }
    public var macroF1: Double { confusion.macroF1 }
}

/// What one epoch did: the mean training loss, the evaluation (validation set, or the training set without one),
/// the monitored value, and whether it was the best so far.
public struct EpochReport: Sendable {
    public var epoch: Int
    public var trainLoss: Double
    public var evaluation: Evaluation
    public var monitored: Double
    public var improved: Bool
    /// Learning rate of each group at the end of the epoch.
    public var learningRates: [Float]
}

/// Whether training goes on after an epoch.
public enum EpochDecision: Sendable { case proceed, stop }

/// The value early stopping and best-model selection watch, and which way is better.
public enum Monitor: Sendable {
    case loss, accuracy, macroF1
    /// Any value of the report; `higherIsBetter` gives the direction.
    case custom(name: String, higherIsBetter: Bool, value: @Sendable (EpochReport) -> Double)

    public var higherIsBetter: Bool {
        switch self {
        case .loss: false
        case .accuracy, .macroF1: true
        case let .custom(_, higher, _): higher
        }
    }

    public func value(_ report: EpochReport) -> Double {
        switch self {
        case .loss: report.evaluation.loss
        case .accuracy: report.evaluation.accuracy
        case .macroF1: report.evaluation.macroF1
        case let .custom(_, _, value): value(report)
        }
    }
}

/// Stops after `patience` epochs without an improvement larger than `minDelta` (Keras/Lightning semantics).
public struct EarlyStopping: Sendable {
    public let patience: Int
    public let minDelta: Double
    public let higherIsBetter: Bool
    public private(set) var best: Double?
    public private(set) var epochsWithoutImprovement = 0

    /// `best`: a value to beat from an earlier stage of the same run.
    public init(patience: Int, minDelta: Double = 0, higherIsBetter: Bool, best: Double? = nil) {
        require(patience >= 0 && minDelta >= 0, "EarlyStopping: patience \(patience) and minDelta \(minDelta) must be ≥ 0")
        (self.patience, self.minDelta, self.higherIsBetter, self.best) = (patience, minDelta, higherIsBetter, best)
    }

    /// Records `value`; returns whether it improved on the best and whether to stop now.
    public mutating func update(_ value: Double) -> (improved: Bool, stop: Bool) {
        let improved = best.map { higherIsBetter ? value > $0 + minDelta : value < $0 - minDelta } ?? true
        if improved {
            best = value
            epochsWithoutImprovement = 0
        } else {
            epochsWithoutImprovement += 1
        }
        return (improved, epochsWithoutImprovement >= patience)
    }
}

/// The training loop: seeded mini-batches, forward, loss, backward toward unfrozen parameters only, optional
/// clipping and accumulation, a per-group scheduled learning rate, evaluation each epoch, early stopping, and the
/// best and last weights kept in memory.
public final class Trainer {
    public struct Configuration: Sendable {
        public var epochs: Int
        /// Micro-batches whose gradients add up to one optimizer step (each loss scaled by 1/k; by 1/r for a last
        /// group of r < k micro-batches).
        public var accumulationSteps = 1
        /// Clip the global 2-norm of the gradients to this before each step.
        public var clipGradientNorm: Float?
        /// Per-step schedule applied to each group's base rate; nil keeps the rates as set.
        public var schedule: (any LearningRateSchedule)?
        public var monitor: Monitor = .loss
        /// Early stopping after this many epochs without improvement; nil trains all `epochs`.
        public var patience: Int?
        public var minDelta: Double = 0
        /// Let batch norm in frozen blocks keep updating its running statistics.
        public var trainFrozenBatchNorm = false

        public init(epochs: Int) { self.epochs = epochs }
    }

    public let model: Module
    /// Maps a batch of inputs to logits: the model itself, or only its head when training on cached features.
    public var forward: (Tensor) -> Tensor
    public let optimizer: any Optimizer
    public var configuration: Configuration
    /// The training loss from logits and labels; cross-entropy by default.
    public var loss: (Tensor, [Int]) -> Tensor = { Tensor.crossEntropy($0, targets: $1) }
    /// Learning rate of each optimizer group before scheduling; strategies change it between stages.
    public var baseRates: [Float]
    /// Called before each epoch (after `model.train()`), e.g. to unfreeze blocks.
    public var onEpochStart: [(Int) -> Void] = []
    /// Called after each epoch; any `.stop` ends training after this epoch.
    public var onEpochEnd: [(EpochReport) -> EpochDecision] = []
    /// Reduce-on-plateau, fed the monitored value after each epoch; its rate (started at 1) multiplies every
    /// group's scheduled rate, so `minLR` is a fraction of each group's base.
    public var plateau: ReduceOnPlateau?
    /// Agrees on a stop decision across ranks. Single process: the identity. Data-parallel: rank 0's value
    /// broadcast, so no rank leaves the collectives early.
    public var agree: (Bool) -> Bool = { $0 }

    /// Optimizer steps taken: the schedule's position (carried across `fit` calls and stages).
    public private(set) var stepCount = 0
    /// Epochs completed, across `fit` calls.
    public private(set) var epochCount = 0
    public private(set) var bestValue: Double?
    public private(set) var bestEpoch: Int?
    private var bestState: [[Float]]?
    private var lastState: [[Float]]?

    public init(model: Module, forward: ((Tensor) -> Tensor)? = nil, optimizer: any Optimizer,
                configuration: Configuration) {
        if forward == nil { require(model is any UnaryLayer, "Trainer: \(type(of: model)) needs a forward closure") }
        self.model = model
        self.forward = forward ?? { (model as! any UnaryLayer)($0) }
        self.optimizer = optimizer
        self.configuration = configuration
        baseRates = optimizer.groups.map(\.options.learningRate)
    }

    /// Trains for `configuration.epochs` epochs or until stopped; returns one report per epoch.
    @discardableResult
    public func fit(_ train: Batches, validation: Batches? = nil) -> [EpochReport] {
        let k = configuration.accumulationSteps
        require(k >= 1, "Trainer: accumulation steps must be ≥ 1, got \(k)")
        require(baseRates.count == optimizer.groups.count,
                "Trainer: \(baseRates.count) base rates for \(optimizer.groups.count) optimizer groups")
        var stopping = configuration.patience.map {
            EarlyStopping(patience: $0, minDelta: configuration.minDelta, higherIsBetter: configuration.monitor.higherIsBetter,
                          best: bestValue)
        }
        if let plateau {
            require(plateau.mode == (configuration.monitor.higherIsBetter ? .max : .min),
                    "Trainer: reduce-on-plateau mode \(plateau.mode) disagrees with the monitored value's direction")
        }
        var reports: [EpochReport] = []
        for _ in 0..<configuration.epochs {
            let epoch = epochCount
            model.train()
            for hook in onEpochStart { hook(epoch) }
            // After the hooks: they may have frozen or unfrozen blocks.
            model.fixFrozenBatchNorm(keepTraining: configuration.trainFrozenBatchNorm)
            let trainLoss = runEpoch(train.batches(epoch: epoch), accumulation: k)
            let evaluation = evaluate(validation ?? train)
            var report = EpochReport(epoch: epoch, trainLoss: trainLoss, evaluation: evaluation, monitored: 0,
                                     improved: false, learningRates: optimizer.groups.map(\.options.learningRate))
            report.monitored = configuration.monitor.value(report)
            var stop = false
            if var s = stopping {
                (report.improved, stop) = s.update(report.monitored)
                stopping = s
            } else {
                report.improved = bestValue.map {
                    configuration.monitor.higherIsBetter ? report.monitored > $0 : report.monitored < $0
                } ?? true
            }
            if let plateau { plateau.step(metric: Float(report.monitored)) }
            if report.improved {
                (bestValue, bestEpoch) = (report.monitored, epoch)
                bestState = snapshot()
            }
            lastState = snapshot()
            epochCount += 1
            reports.append(report)
            for hook in onEpochEnd where hook(report) == .stop { stop = true }
            if agree(stop) { break }
        }
        return reports
    }

    /// One pass over `batches`; returns the mean (unscaled) training loss per batch.
    private func runEpoch(_ batches: [(inputs: Tensor, labels: [Int])], accumulation k: Int) -> Double {
        var total = 0.0
        optimizer.zeroGradients()
        for (i, batch) in batches.enumerated() {
            let lossValue = loss(forward(batch.inputs), batch.labels)
            total += Double(lossValue.item)
            // Each micro-batch's loss is divided by the size of its group, so a step sees the group's mean loss even
            // when the last group of an epoch is short. With every parameter frozen nothing is recorded.
            let groupSize = min(k, batches.count - i / k * k)
            if lossValue.requiresGrad { (groupSize == 1 ? lossValue : lossValue * (1 / Float(groupSize))).backward() }
            if (i + 1) % k == 0 || i == batches.count - 1 { step() }
        }
        return batches.isEmpty ? 0 : total / Double(batches.count)
    }

    /// Clips, sets each group's scheduled rate, updates, and clears the gradients.
    private func step() {
        if let maxNorm = configuration.clipGradientNorm {
            clipGradientNorm(optimizer.groups.filter { !$0.frozen }.flatMap { $0.parameters.map(\.1) }, maxNorm: maxNorm)
        }
        if configuration.schedule != nil || plateau != nil {
            let factor = plateau?.learningRate ?? 1
            for i in optimizer.groups.indices {
                let scheduled = configuration.schedule?.learningRate(base: baseRates[i], step: stepCount) ?? baseRates[i]
                optimizer.groups[i].options.learningRate = scheduled * factor
            }
        }
        optimizer.step()
        optimizer.zeroGradients()
        stepCount += 1
    }

    /// Loss (mean over rows), accuracy and macro-F1 of the model on `data`, in eval mode without recording.
    /// The model is left in eval mode; `fit` switches it back each epoch.
    public func evaluate(_ data: Batches) -> Evaluation {
        model.eval()
        return withNoGrad {
            var lossSum = 0.0
            var confusion: ConfusionMatrix?
            for batch in data.batches(epoch: 0) {
                let logits = forward(batch.inputs)
                lossSum += Double(loss(logits, batch.labels).item) * Double(batch.labels.count)
                if confusion == nil { confusion = ConfusionMatrix(classes: logits.shape[1]) }
                confusion!.add(logits: logits, targets: batch.labels)
            }
            return Evaluation(loss: data.count == 0 ? 0 : lossSum / Double(data.count),
                              confusion: confusion ?? ConfusionMatrix(classes: 1))
        }
    }

    /// Puts the weights (parameters and buffers) of the best epoch back into the model.
    public func restoreBest() {
        guard let bestState else { fatalError("Trainer.restoreBest: no epoch has been evaluated yet") }
        load(bestState)
    }

    /// Puts the weights after the last completed epoch back into the model.
    public func restoreLast() {
        guard let lastState else { fatalError("Trainer.restoreLast: no epoch has completed yet") }
        load(lastState)
    }

    private func snapshot() -> [[Float]] { model.stateDict().map { $0.1.scalars } }

    private func load(_ state: [[Float]]) {
        let tensors = model.stateDict()
        require(tensors.count == state.count, "Trainer: the model's state changed shape since the snapshot")
        for ((name, t), values) in zip(tensors, state) {
            require(t.count == values.count, "Trainer: '\(name)' has \(t.count) values, the snapshot \(values.count)")
            values.withUnsafeBufferPointer { t.pointer.update(from: $0.baseAddress!, count: values.count) }
        }
    }
}
