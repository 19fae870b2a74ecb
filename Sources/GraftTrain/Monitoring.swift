import GraftCore
import GraftData
import GraftDistributed
import GraftNN

/// Loss, accuracy and macro-F1 over a data set, with the confusion matrix they come from.
public struct Evaluation: Sendable {
    public var loss: Double
    public var confusion: ConfusionMatrix
    /// A multi-task model's figures per task, in task order (empty otherwise); `loss` is then the sum of the task
    /// losses, accuracy and macro-F1 the means over tasks, `confusion` the first task's.
    public var tasks: [HeadEvaluation] = []
    public var accuracy: Double { tasks.isEmpty ? confusion.accuracy : tasks.map(\.evaluation.accuracy).reduce(0, +) / Double(tasks.count) }
    public var macroF1: Double { tasks.isEmpty ? confusion.macroF1 : tasks.map(\.evaluation.macroF1).reduce(0, +) / Double(tasks.count) }

    /// `model` (through `forward`) on `batches` in eval mode without recording, `loss` a mean over rows; each rank
    /// takes its part of every batch and the sums are reduced, so every rank gets the global figures. `onBatch` is
    /// told each batch's index first. With `tasks`, the output holds every task's logits and each is evaluated.
    public static func of(_ model: Module, forward: (Tensor) -> Tensor, on batches: Batches,
                          loss: (Tensor, [Int]) -> Tensor = { Tensor.crossEntropy($0, targets: $1) },
                          communicator: any Communicator = LocalCommunicator(), tasks: TaskLayout? = nil,
                          onBatch: (Int) -> Void = { _ in }) throws -> Evaluation {
        if let tasks {
            return try ofTasks(tasks, model: model, forward: forward, on: batches, loss: loss, communicator: communicator,
                               onBatch: onBatch)
        }
        model.eval()
        let data = batches.inOrder
        let order = data.order(epoch: 0)
        var lossSum = 0.0
        var confusion: ConfusionMatrix?
        withNoGrad {
            for s in 0..<data.batchCount {
                onBatch(s)
                let batch = data.batch(order, step: s, rank: communicator.rank, of: communicator.size)
                guard !batch.labels.isEmpty else { continue }
                let logits = forward(batch.inputs)
                lossSum += Double(loss(logits, batch.labels).item) * Double(batch.labels.count)
                if confusion == nil { confusion = ConfusionMatrix(classes: logits.shape[1]) }
                confusion!.add(logits: logits, targets: batch.labels)
            }
        }
        // A rank without rows has no logits to count the classes from.
        let classes = Int(try communicator.allReduce(Int64(confusion?.classes ?? 0), op: .max))
        guard classes > 0 else { return Evaluation(loss: 0, confusion: ConfusionMatrix(classes: 1)) }
        var totals = [lossSum] + (confusion?.counts ?? [Int](repeating: 0, count: classes * classes)).map(Double.init)
        try communicator.allReduce(&totals)
        let global = ConfusionMatrix(classes: classes, counts: totals.dropFirst().map { Int($0) })
        return Evaluation(loss: global.total == 0 ? 0 : totals[0] / Double(global.total), confusion: global)
    }
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
    /// Optimizer steps skipped this epoch for a non-finite gradient (`NonFinitePolicy.skipStep`).
    public var skippedSteps = 0
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
public struct EarlyStopping: Sendable, Codable, Equatable {
    public let patience: Int
    public let minDelta: Double
    public let higherIsBetter: Bool
    public internal(set) var best: Double?
    public internal(set) var epochsWithoutImprovement = 0

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
