import GraftCore
import GraftData
import GraftDistributed
import GraftNN
import GraftOptim

/// What a step whose summed gradient holds NaN or infinity does.
public enum NonFinitePolicy: String, Sendable, CaseIterable {
    /// Ends training with an error naming the step and the first such parameter.
    case stop
    /// Drops the gradient and goes on, the schedule not advancing; the epoch's report counts the skipped steps.
    case skipStep = "skip-step"
}

/// A non-finite gradient under `NonFinitePolicy.stop`. Every rank sees the same summed gradient, so every rank throws
/// it at the same step.
public struct NonFiniteGradient: CollectiveError, CustomStringConvertible {
    public let epoch: Int, step: Int, parameter: String
    public var description: String {
        "non-finite gradient of \(parameter) at step \(step) (epoch \(epoch + 1)): the loss diverged or the data holds "
            + "NaN or infinity; lower the learning rate, clip gradients, or set training.on-non-finite: skip-step"
    }
}

/// The training loop, data-parallel over `communicator`: each rank trains on its part of every global batch,
/// gradients of the unfrozen parameters are summed over ranks (`GradientReducer`), and every rank takes the same
/// per-group step, so the replicas stay identical. Losses and metrics are reduced as sums and counts, which makes
/// every figure and decision (best epoch, early stopping, plateau) the same on every rank and the same as one
/// process would compute. One process is the special case of one rank.
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
        /// Compare a checksum of every parameter and buffer across ranks every this many steps (and at the start).
        public var checkReplicasEvery: Int?
        /// With several ranks, end the job when a step (or an evaluation batch) takes longer than this many seconds:
        /// a rank that died or hangs would otherwise leave the others waiting in a collective.
        public var stepTimeout: Double?
        /// What a step with a NaN or infinite gradient does.
        public var onNonFinite = NonFinitePolicy.stop
        /// Bytes per all-reduce bucket of gradients (read when the trainer is made).
        public var bucketBytes = GradientReducer.defaultBucketBytes

        public init(epochs: Int) { self.epochs = epochs }
    }

    public let model: Module
    /// Maps a batch of inputs to logits: the model itself, or only its head when training on cached features.
    public var forward: (Tensor) -> Tensor
    public let optimizer: any Optimizer
    public var configuration: Configuration
    public let communicator: any Communicator
    /// The training loss from logits and labels, a mean over the rows; cross-entropy by default.
    public var loss: (Tensor, [Int]) -> Tensor = { Tensor.crossEntropy($0, targets: $1) }
    /// Told how far each epoch and evaluation is (set on rank 0 for people to watch).
    public var progress: ProgressReporter?
    /// Replaces `loss` in training steps when set (domain adaptation, say); evaluation still uses `loss`.
    public var objective: (any StepObjective)?
    /// A penalty on the weights (L2-SP, EWC) whose gradient is added once to each step's summed gradient, for the
    /// trainable parameters only; the reported training loss leaves it out.
    public var penalty: (any ParameterPenalty)?
    /// A multi-task model's heads: evaluation then reports every task.
    public var tasks: TaskLayout?
    /// Replaces `Evaluation.of` the model's logits when set (contrastive pre-training scores its own loss); called on
    /// every rank, with a callback to call before each batch (the watchdog's and the progress line's marks).
    public var evaluator: ((Batches, _ onBatch: (Int) -> Void) throws -> Evaluation)?
    /// Learning rate of each optimizer group before scheduling; strategies change it between stages.
    public var baseRates: [Float]
    /// Called before each epoch (after `model.train()`), e.g. to unfreeze blocks.
    public var onEpochStart: [(Int) -> Void] = []
    /// Called after each epoch on every rank; any `.stop` ends training after this epoch. A hook that throws (rank
    /// 0's checkpoint writer, say) ends training on every rank: the others throw `PeerFailure`.
    public var onEpochEnd: [(EpochReport) throws -> EpochDecision] = []
    /// With adapters in the model: the state-dict entries that change in training (adapters, head, buffers), which
    /// checkpoints keep (`adapters.safetensors`); the rest is the frozen pretrained base. Nil saves the whole model.
    public var adapterStateKeys: Set<String>?
    /// Reduce-on-plateau, fed the monitored value after each epoch; its rate (started at 1) multiplies every
    /// group's scheduled rate, so `minLR` is a fraction of each group's base.
    public var plateau: ReduceOnPlateau?

    /// Optimizer steps taken: the schedule's position (carried across `fit` calls and stages).
    public internal(set) var stepCount = 0
    /// Epochs completed, across `fit` calls.
    public internal(set) var epochCount = 0
    public internal(set) var bestValue: Double?
    public internal(set) var bestEpoch: Int?
    /// Early-stopping state of the current stage (reset by each `fit` call, carrying the best value).
    public internal(set) var stopping: EarlyStopping?
    /// Asked after every optimizer step, on every rank (a signal arrived, say); when any rank says yes, every rank
    /// stops after that same step and `fit` throws `TrainingInterrupted`.
    public var stopRequested: () -> Bool = { false }
    /// Where the epoch under way stopped, after `TrainingInterrupted`: what a checkpoint needs to continue it.
    public internal(set) var interruptedAt: EpochPosition?
    /// Where the next epoch starts instead of at its first step (a resumed run).
    var resumeAt: EpochPosition?
    /// Early-stopping state to continue with in the next `fit` call instead of a fresh one (a resumed run).
    public var pendingStopping: EarlyStopping?
    private var bestState: [[Float]]?
    private let reducer: GradientReducer
    private var replicasSynchronised = false
    private var skippedSteps = 0
    private var watchdog: Watchdog?

    public init(model: Module, forward: ((Tensor) -> Tensor)? = nil, optimizer: any Optimizer,
                configuration: Configuration, communicator: any Communicator = LocalCommunicator()) {
        if forward == nil { require(model is any UnaryLayer, "Trainer: \(type(of: model)) needs a forward closure") }
        self.model = model
        self.forward = forward ?? { (model as! any UnaryLayer)($0) }
        self.optimizer = optimizer
        self.configuration = configuration
        self.communicator = communicator
        reducer = GradientReducer(communicator: communicator, bucketBytes: configuration.bucketBytes)
        baseRates = optimizer.groups.map(\.options.learningRate)
    }

    /// Trains for `configuration.epochs` epochs or until stopped; returns one report per epoch.
    @discardableResult
    public func fit(_ train: Batches, validation: Batches? = nil) throws -> [EpochReport] {
        let k = configuration.accumulationSteps
        require(k >= 1, "Trainer: accumulation steps must be ≥ 1, got \(k)")
        require(baseRates.count == optimizer.groups.count,
                "Trainer: \(baseRates.count) base rates for \(optimizer.groups.count) optimizer groups")
        if let plateau {
            require(plateau.mode == (configuration.monitor.higherIsBetter ? .max : .min),
                    "Trainer: reduce-on-plateau mode \(plateau.mode) disagrees with the monitored value's direction")
        }
        try synchroniseReplicas()
        let watchdog = communicator.size > 1 ? configuration.stepTimeout.map { Watchdog(timeout: $0, communicator: communicator) } : nil
        self.watchdog = watchdog
        watchdog?.start()
        defer { watchdog?.stop(); self.watchdog = nil }
        defer { pendingStopping = nil }
        stopping = pendingStopping ?? configuration.patience.map {
            EarlyStopping(patience: $0, minDelta: configuration.minDelta, higherIsBetter: configuration.monitor.higherIsBetter,
                          best: bestValue)
        }
        var reports: [EpochReport] = []
        for _ in 0..<configuration.epochs {
            let epoch = epochCount
            model.train()
            for hook in onEpochStart { hook(epoch) }
            // After the hooks: they may have frozen or unfrozen blocks.
            model.fixFrozenBatchNorm(keepTraining: configuration.trainFrozenBatchNorm)
            skippedSteps = 0
            let trainLoss = try runEpoch(train, epoch: epoch, accumulation: k)
            // Each rank's batch norm saw only its rows; rank 0's running statistics become everyone's.
            try communicator.broadcast(model.namedBuffers().map(\.1))
            let evaluation = try evaluate(validation ?? train)
            var report = EpochReport(epoch: epoch, trainLoss: trainLoss, evaluation: evaluation, monitored: 0,
                                     improved: false, learningRates: optimizer.groups.map(\.options.learningRate),
                                     skippedSteps: skippedSteps)
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
            epochCount += 1
            reports.append(report)
            if try endEpoch(report) || stop { break }
        }
        return reports
    }

    /// Runs the end-of-epoch hooks and agrees across ranks on what they decided: whether to stop, and whether any
    /// rank failed (its error is rethrown there; the others throw `PeerFailure`).
    private func endEpoch(_ report: EpochReport) throws -> Bool {
        var outcome: Int64 = 0  // 0 proceed, 1 stop, 2 failed
        var failure: Error?
        do {
            for hook in onEpochEnd where try hook(report) == .stop { outcome = 1 }
        } catch {
            (failure, outcome) = (error, 2)
        }
        let agreed = try communicator.allReduce(outcome, op: .max)
        if let failure { throw AgreedFailure(failure) }
        if agreed == 2 { throw PeerFailure(rank: communicator.rank) }
        return agreed == 1
    }

    /// One pass over this rank's part of every global batch; returns the mean training loss over all rows.
    private func runEpoch(_ data: Batches, epoch: Int, accumulation k: Int) throws -> Double {
        let (rank, ranks) = (communicator.rank, communicator.size)
        let order = data.order(epoch: epoch)
        let steps = data.batchCount
        // Loss sum and rows: this rank's, plus, on rank 0, the global sums of the steps done before a resume.
        var totals = [0.0, 0.0]
        let first = resumeAt?.step ?? 0
        if let resumeAt {
            if communicator.isRoot { totals = [resumeAt.lossSum, resumeAt.rows] }
            skippedSteps = resumeAt.skippedSteps
            self.resumeAt = nil
        }
        optimizer.zeroGradients()
        progress?.begin("epoch \(epoch + 1)", total: steps, unit: "steps")
        defer { progress?.end() }
        for s in first..<steps {
            watchdog?.mark(epoch: epoch, step: s)
            defer { progress?.advance(to: s + 1) }
            let batch = data.batch(order, step: s, rank: rank, of: ranks, epoch: epoch)
            // The step's loss is the mean over its global rows; with k micro-batches per step each counts 1/k (1/r
            // for a last group of r < k). A rank's share of that is its rows' mean times rows/global rows.
            let groupSize = min(k, steps - s / k * k)
            if let objective {
                let part = try withRowKeys(seed: data.seed, epoch: epoch, rows: batch.rows) {
                    try objective.share(of: batch, at: StepPosition(epoch: epoch, step: s, stepsPerEpoch: steps))
                }
                totals[0] += part.lossSum
                totals[1] += Double(part.rows)
                if let share = part.loss, share.requiresGrad { (groupSize == 1 ? share : share / Float(groupSize)).backward() }
            } else if !batch.labels.isEmpty {
                let lossValue = withRowKeys(seed: data.seed, epoch: epoch, rows: batch.rows) {
                    loss(forward(batch.inputs), batch.labels)
                }
                totals[0] += Double(lossValue.item) * Double(batch.labels.count)
                totals[1] += Double(batch.labels.count)
                // With every parameter frozen nothing was recorded.
                if lossValue.requiresGrad {
                    let scale = Float(batch.labels.count) / Float(batch.globalCount) / Float(groupSize)
                    (scale == 1 ? lossValue : lossValue * scale).backward()
                }
            }
            guard (s + 1) % k == 0 || s == steps - 1 else { continue }
            try step(epoch: epoch)
            if try communicator.allReduce(Int64(stopRequested() ? 1 : 0), op: .max) > 0 {
                var partial = totals
                try communicator.allReduce(&partial)
                interruptedAt = EpochPosition(step: s + 1, lossSum: partial[0], rows: partial[1], skippedSteps: skippedSteps)
                throw TrainingInterrupted(epoch: epoch, step: s + 1, steps: steps)
            }
        }
        try communicator.allReduce(&totals)
        return totals[1] == 0 ? 0 : totals[0] / totals[1]
    }

    /// The trainable parameters with their groups, in group order: what the reducer sums.
    private var trainable: [(group: String, name: String, tensor: Tensor)] {
        optimizer.groups.flatMap { g in g.frozen ? [] : g.parameters.filter { $0.1.requiresGrad }.map { (g.name, $0.0, $0.1) } }
    }

    /// Sums the gradients over ranks, clips, sets each group's scheduled rate, updates, and clears the gradients.
    private func step(epoch: Int) throws {
        let parameters = trainable
        try reducer.reduce(parameters)
        penalty?.addGradient(to: parameters.map(\.tensor))
        // After the sum, so that every rank decides alike.
        if let bad = parameters.first(where: { $0.tensor.grad.map { !allFinite($0) } ?? false }) {
            guard configuration.onNonFinite == .skipStep else {
                throw NonFiniteGradient(epoch: epoch, step: stepCount + 1, parameter: bad.name)
            }
            optimizer.zeroGradients()
            skippedSteps += 1
            return
        }
        if let maxNorm = configuration.clipGradientNorm {
            clipGradientNorm(parameters.map(\.tensor), maxNorm: maxNorm)
        }
        if configuration.schedule != nil || plateau != nil {
            let factor = plateau?.learningRate ?? 1
            // One-cycle and cyclic rates move the momentum (SGD, RMSprop) or β₁ (Adam) the other way, as PyTorch's do.
            let momentum = configuration.schedule?.momentum(step: stepCount)
            for i in optimizer.groups.indices {
                let scheduled = configuration.schedule?.learningRate(base: baseRates[i], step: stepCount) ?? baseRates[i]
                try optimizer.setLearningRate(scheduled * factor, group: i)
                if let momentum {
                    optimizer.groups[i].options.momentum = momentum
                    optimizer.groups[i].options.betas.0 = momentum
                }
            }
        }
        optimizer.step()
        optimizer.zeroGradients()
        stepCount += 1
        if let every = configuration.checkReplicasEvery, stepCount % every == 0 {
            try communicator.checkReplicas(model.stateDict())
        }
    }

    /// Makes every rank start from rank 0's weights (once), and checks it when replica checks are on.
    private func synchroniseReplicas() throws {
        guard !replicasSynchronised else { return }
        try communicator.broadcast(model.stateDict().map(\.1))
        if configuration.checkReplicasEvery != nil { try communicator.checkReplicas(model.stateDict()) }
        replicasSynchronised = true
    }

    /// Loss (mean over rows), accuracy and macro-F1 of the model on `data`, in eval mode without recording; each
    /// rank evaluates its part of every batch and the sums are reduced, so every rank gets the global figures.
    /// The model is left in eval mode; `fit` switches it back each epoch.
    public func evaluate(_ batches: Batches) throws -> Evaluation {
        progress?.begin("evaluating", total: batches.batchCount, unit: "batches")
        defer { progress?.end() }
        let onBatch = { [watchdog, epochCount, progress] (s: Int) in
            watchdog?.mark(epoch: epochCount, step: s)
            progress?.advance(to: s)
        }
        if let evaluator { return try evaluator(batches, onBatch) }
        return try Evaluation.of(model, forward: forward, on: batches, loss: loss, communicator: communicator,
                                 tasks: tasks, onBatch: onBatch)
    }

    /// Puts the weights (parameters and buffers) of the best epoch back into the model.
    public func restoreBest() {
        guard let bestState else { fatalError("Trainer.restoreBest: no epoch has been evaluated yet") }
        let tensors = model.stateDict()
        require(tensors.count == bestState.count, "Trainer: the model's state changed shape since the snapshot")
        for ((name, t), values) in zip(tensors, bestState) {
            require(t.count == values.count, "Trainer: '\(name)' has \(t.count) values, the snapshot \(values.count)")
            values.withUnsafeBufferPointer { t.pointer.update(from: $0.baseAddress!, count: values.count) }
        }
    }

    /// Continues from a checkpoint: epoch and step counters, the best value with its weights (by state-dict name),
    /// and the plateau's state. Early stopping is the caller's to set (`pendingStopping`): it depends on the stage.
    public func restore(_ state: CheckpointState, bestWeights: [(String, Tensor)]?) throws {
        (epochCount, stepCount) = (state.epoch, state.step)
        resumeAt = state.epochPosition
        (bestValue, bestEpoch) = (state.best?.value, state.best?.epoch)
        if let saved = state.plateau {
            guard let plateau else { throw CheckpointError(path: "state.json", "holds reduce-on-plateau state, the run has no plateau schedule") }
            plateau.state = saved
        }
        guard let bestWeights else { bestState = nil; return }
        let byName = Dictionary(bestWeights, uniquingKeysWith: { a, _ in a })
        bestState = try model.stateDict().map { name, t in
            guard let saved = byName[name], saved.shape == t.shape else {
                throw CheckpointError(path: "best/model.safetensors", "tensor '\(name)' is missing or has another shape")
            }
            return saved.scalars
        }
    }

    private func snapshot() -> [[Float]] { model.stateDict().map { $0.1.scalars } }
}

/// A position inside an epoch: steps done, the global training-loss sums over them, steps skipped.
public struct EpochPosition: Codable, Sendable, Equatable {
    public var step: Int
    public var lossSum: Double
    public var rows: Double
    public var skippedSteps: Int
}

/// Training stopped on request after a whole step, on every rank alike.
public struct TrainingInterrupted: CollectiveError, CustomStringConvertible {
    public let epoch: Int, step: Int, steps: Int
    public init(epoch: Int, step: Int, steps: Int) { (self.epoch, self.step, self.steps) = (epoch, step, steps) }
    public var description: String { "stopped after step \(step) of \(steps) of epoch \(epoch + 1)" }
}

/// Whether every value of `t` is finite: x·0 is 0 for a finite x and NaN for NaN or ±infinity.
private func allFinite(_ t: Tensor) -> Bool {
    var sum: Float = 0
    for i in 0..<t.count { sum += t.pointer[i] * 0 }
    return sum == 0
}

/// Runs `body` with per-row randomness keyed on (seed, epoch, row), so that dropout does not depend on the ranks.
func withRowKeys<T>(seed: UInt64, epoch: Int, rows: [Int], _ body: () throws -> T) rethrows -> T {
    // A salt per (seed, epoch), then the row: a row's key, and so its dropout masks, change each epoch.
    var epochStream = RandomGenerator(seed: seed).split(UInt64(epoch))
    let salt = epochStream.next()
    let keys = rows.map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 ^ salt }
    return try BatchRowKeys.$current.withValue(keys, operation: body)
}
