import Foundation
import GraftCore
import GraftData
import GraftDistributed
import GraftNN

/// How the task losses of a multi-task model add up to the training loss.
public enum TaskWeighting: Sendable, Equatable {
    /// Σₖ Lₖ.
    case uniform
    /// Σₖ wₖ·Lₖ with the given weights.
    case fixed([Float])
    /// Σₖ exp(−sₖ)·Lₖ + sₖ with learned log-variances sₖ (`Loss.uncertaintyWeighted`).
    case uncertainty
    /// Dynamic weight averaging (Liu, Johns & Davison, 2019): Σₖ wₖ(t)·Lₖ with weights from the last two epochs'
    /// loss ratios (`dynamicWeights`), 1 for the first two epochs.
    case dwa(temperature: Double)
}

/// DWA's weights for the next epoch from the mean training losses per task of the epochs before it (oldest first):
/// wₖ = K·exp(rₖ/T) / Σᵢ exp(rᵢ/T) with rₖ = Lₖ(t−1)/Lₖ(t−2); all 1 until two epochs are done.
public func dynamicWeights(history: [[Double]], tasks: Int, temperature: Double) -> [Double] {
    guard history.count >= 2 else { return [Double](repeating: 1, count: tasks) }
    let last = history[history.count - 1], before = history[history.count - 2]
    require(last.count == tasks && before.count == tasks, "dynamicWeights: epoch losses for \(last.count) tasks, expected \(tasks)")
    let ratios = zip(last, before).map { $1 > 0 ? $0 / $1 : 1 }
    // Shifted by the largest ratio: the same weights, without overflow for a small temperature.
    let top = ratios.max()!
    let e = ratios.map { Foundation.exp(($0 - top) / temperature) }
    let sum = e.reduce(0, +)
    return e.map { Double(tasks) * $0 / sum }
}

/// Training of a multi-task model (`TaskLayout`): each step's loss is the weighted sum of the task losses, each a
/// mean over the global batch, so that a rank's share is its rows' loss times rows / global rows (and, for uncertainty
/// weighting, the regulariser Σ sₖ in the same proportion): the shares of N ranks add up to what one rank computes.
/// The epoch's mean loss per task is summed over ranks every step, so every rank holds the global figures and
/// computes the same DWA weights.
public final class MultiTaskObjective: StepObjective {
    public let layout: TaskLayout
    public let weighting: TaskWeighting
    /// Uncertainty weighting's sₖ: train it beside the model (an auxiliary module).
    public let logVariances: TaskLogVariances?
    /// The model's output for a batch's inputs: the trainer's forward (the head alone on cached features); set it
    /// before training.
    public var output: ((Tensor) -> Tensor)?
    /// The name under which the log-variances train beside the model (`task_weighting.log_variance`).
    public static let auxiliaryName = "task_weighting"
    let loss: (Tensor, [Int]) -> Tensor
    let communicator: any Communicator

    /// What a checkpoint keeps to continue: mean training loss per task of each completed epoch, and the global
    /// sums of the epoch under way (or just ended).
    public struct State: Codable, Sendable, Equatable {
        public var history: [[Double]] = []
        public var epoch: Int?
        public var sums: [Double] = []
        public var rows: Double = 0
    }

    public private(set) var state = State()

    public init(layout: TaskLayout, weighting: TaskWeighting, communicator: any Communicator,
                loss: @escaping (Tensor, [Int]) -> Tensor = { Tensor.crossEntropy($0, targets: $1) },
                output: ((Tensor) -> Tensor)? = nil) {
        if case let .fixed(w) = weighting {
            require(w.count == layout.tasks.count && w.allSatisfy { $0 >= 0 && $0.isFinite }, "MultiTaskObjective: weights \(w)")
        }
        if case let .dwa(t) = weighting { require(t > 0 && t.isFinite, "MultiTaskObjective: DWA temperature \(t)") }
        (self.layout, self.weighting, self.communicator, self.loss, self.output) = (layout, weighting, communicator, loss, output)
        logVariances = weighting == .uncertainty ? TaskLogVariances(tasks: layout.tasks.count) : nil
    }

    /// The weight of each task's loss in the current epoch (exp(−sₖ) for uncertainty weighting, as now learned).
    public var weights: [Double] {
        let k = layout.tasks.count
        switch weighting {
        case .uniform: return [Double](repeating: 1, count: k)
        case let .fixed(w): return w.map(Double.init)
        case .uncertainty: return logVariances!.logVariance.scalars.map { Foundation.exp(-Double($0)) }
        case let .dwa(t): return dynamicWeights(history: state.history, tasks: k, temperature: t)
        }
    }

    /// The mean training loss per task over the current epoch's steps so far, over every rank.
    public var epochLosses: [Double] { state.rows == 0 ? [] : state.sums.map { $0 / state.rows } }

    public func share(of batch: Batch, at position: StepPosition) throws -> ObjectiveShare {
        begin(epoch: position.epoch)
        let k = layout.tasks.count, rows = batch.labels.count
        var sums = [Double](repeating: 0, count: k + 1)
        var share: Tensor?
        if rows > 0 {
            guard let output else { preconditionFailure("MultiTaskObjective: no output closure set") }
            let losses = layout.losses(output(batch.inputs), labels: batch.labels, loss: loss)
            for (i, l) in losses.enumerated() { sums[i] = Double(l.item) * Double(rows) }
            sums[k] = Double(rows)
            let total = logVariances.map { Loss.uncertaintyWeighted(losses, logVariances: $0.logVariance) }
                ?? Loss.weightedSum(losses, weights: weights.map(Float.init))
            share = total * (Float(rows) / Float(batch.globalCount))
        }
        // The reported training loss is Σₖ Lₖ whatever the weighting, comparable between weightings.
        let own = sums.prefix(k).reduce(0, +)
        try communicator.allReduce(&sums)
        for i in 0..<k { state.sums[i] += sums[i] }
        state.rows += sums[k]
        return ObjectiveShare(loss: share, lossSum: own, rows: rows)
    }

    /// Starts the sums of `epoch`, the one before joining the history.
    private func begin(epoch: Int) {
        guard state.epoch != epoch else { return }
        if state.epoch != nil && state.rows > 0 { state.history.append(epochLosses) }
        state.epoch = epoch
        state.sums = [Double](repeating: 0, count: layout.tasks.count)
        state.rows = 0
    }

    /// Continues from a checkpoint's state.
    public func restore(_ saved: State) throws {
        let k = layout.tasks.count
        guard saved.sums.count == k || saved.epoch == nil, saved.history.allSatisfy({ $0.count == k }) else {
            throw CheckpointError(path: "state.json", "holds task losses for another number of tasks than the recipe's \(k)")
        }
        state = saved
    }
}
