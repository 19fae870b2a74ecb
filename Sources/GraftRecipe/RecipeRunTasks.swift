import Foundation
import GraftCore
import GraftNN
import GraftTrain

// Multi-task runs: the objective, and the test report per task.
extension RecipeRun {
    /// The tasks' training objective, its layout logged.
    func multiTaskObjective(_ spec: TasksSpec, layout: TaskLayout, loss: @escaping (Tensor, [Int]) -> Tensor) throws -> MultiTaskObjective {
        if communicator.isRoot {
            for task in layout.tasks {
                log("task \(task.name): \(task.classNames.count) classes (\(task.classNames.joined(separator: ", "))), "
                    + "logits \(task.columns.lowerBound)..<\(task.columns.upperBound) of the head")
            }
            log("task weighting: \(spec.weightingName); validation accuracy and macro-F1 are means over the tasks, "
                + "the loss their sum")
        }
        return MultiTaskObjective(layout: layout, weighting: spec.weighting, communicator: communicator, loss: loss)
    }

    /// Trains `trainer` with the tasks: its forward gives their logits, evaluation reports each.
    func use(_ tasks: MultiTaskObjective, in trainer: Trainer) {
        tasks.output = { [unowned trainer] in trainer.forward($0) }
        trainer.objective = tasks
        trainer.tasks = tasks.layout
    }

    /// The test lines of a multi-task run: the mean figures, then each task's with its classes.
    func taskTestLines(_ test: Evaluation, epoch: Int) -> [String] {
        [String(format: "test (weights of epoch %d): loss (sum over tasks) %.4f  mean accuracy %.2f%%  mean macro-F1 %.4f",
                epoch + 1, test.loss, 100 * test.accuracy, test.macroF1)]
            + test.tasks.flatMap { task in
                let e = task.evaluation
                return [String(format: "  task %@: loss %.4f  accuracy %.2f%%  macro-F1 %.4f", task.name, e.loss, 100 * e.accuracy, e.macroF1)]
                    + task.classNames.enumerated().map { c, name in
                        "    " + name.padding(toLength: max(14, name.count), withPad: " ", startingAt: 0) + String(format: " precision %.3f  recall %.3f  F1 %.3f", e.confusion.precision(c),
                               e.confusion.recall(c), e.confusion.f1(c))
                    }
            }
    }
}
