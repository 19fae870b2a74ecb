import Foundation
import GraftCore
import GraftData
import GraftDistributed
import GraftNN

/// One task's evaluation in a multi-task model's.
public struct HeadEvaluation: Sendable {
    public var name: String
    public var classNames: [String]
    public var evaluation: Evaluation
}

extension Evaluation {
    /// A multi-task model on `batches`: each task's loss and confusion matrix from its columns of the output, summed
    /// over ranks as `of` does for one task.
    static func ofTasks(_ layout: TaskLayout, model: Module, forward: (Tensor) -> Tensor, on batches: Batches,
                        loss: (Tensor, [Int]) -> Tensor, communicator: any Communicator,
                        onBatch: (Int) -> Void) throws -> Evaluation {
        model.eval()
        let data = batches.inOrder
        let order = data.order(epoch: 0)
        var lossSums = [Double](repeating: 0, count: layout.tasks.count)
        var confusions = layout.tasks.map { ConfusionMatrix(classes: $0.classNames.count) }
        withNoGrad {
            for s in 0..<data.batchCount {
                onBatch(s)
                let batch = data.batch(order, step: s, rank: communicator.rank, of: communicator.size)
                guard !batch.labels.isEmpty else { continue }
                let output = forward(batch.inputs)
                for k in layout.tasks.indices {
                    let logits = layout.logits(output, task: k), labels = layout.labels(batch.labels, task: k)
                    lossSums[k] += Double(loss(logits, labels).item) * Double(labels.count)
                    confusions[k].add(logits: logits, targets: labels)
                }
            }
        }
        var totals = lossSums + confusions.flatMap(\.counts).map(Double.init)
        try communicator.allReduce(&totals)
        var offset = lossSums.count
        let tasks = layout.tasks.enumerated().map { k, task in
            let n = task.classNames.count
            defer { offset += n * n }
            let confusion = ConfusionMatrix(classes: n, counts: totals[offset..<(offset + n * n)].map { Int($0) })
            return HeadEvaluation(name: task.name, classNames: task.classNames, evaluation: Evaluation(
                loss: confusion.total == 0 ? 0 : totals[k] / Double(confusion.total), confusion: confusion))
        }
        return Evaluation(loss: tasks.map(\.evaluation.loss).reduce(0, +), confusion: tasks[0].evaluation.confusion,
                          tasks: tasks)
    }
}

/// One task's figures in a line of `metrics.jsonl` (under `tasks`); a non-finite value is null.
public struct TaskMetrics: Codable, Sendable {
    public var name: String
    /// Mean training loss over the epoch (unweighted), and the task's weight in it.
    public var trainLoss: Double?
    public var weight: Double?
    public var loss: Double?
    public var accuracy: Double?
    public var macroF1: Double?

    public init(_ task: HeadEvaluation, trainLoss: Double?, weight: Double?) {
        func finite(_ x: Double?) -> Double? { x.flatMap { $0.isFinite ? $0 : nil } }
        name = task.name
        (self.trainLoss, self.weight) = (finite(trainLoss), finite(weight))
        (loss, accuracy, macroF1) = (finite(task.evaluation.loss), finite(task.evaluation.accuracy), finite(task.evaluation.macroF1))
    }

    enum CodingKeys: String, CodingKey {
        case name, trainLoss = "train_loss", weight, loss, accuracy, macroF1 = "macro_f1"
    }
}

extension MultiTaskObjective {
    /// Each task's figures after an epoch: its evaluation, its mean training loss and weight this epoch.
    public func metrics(_ evaluation: Evaluation) -> [TaskMetrics] {
        let (train, w) = (epochLosses, weights)
        return evaluation.tasks.enumerated().map { k, task in
            TaskMetrics(task, trainLoss: k < train.count ? train[k] : nil, weight: k < w.count ? w[k] : nil)
        }
    }

    /// The epoch line's part for the tasks: accuracy and weight of each.
    public func summary(_ evaluation: Evaluation) -> String {
        let w = weights
        return zip(evaluation.tasks, w).map { task, weight in
            String(format: "  %@ %.1f%% (w %.2f)", task.name, 100 * task.evaluation.accuracy, weight)
        }.joined()
    }
}
