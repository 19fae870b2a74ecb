import Foundation
import GraftCore
import GraftData
import GraftDistributed
import GraftIO
import GraftNN
import GraftOptim
import GraftTrain

/// What `graft continual` reports (and writes to `results.json`).
public struct ContinualResult: Encodable {
    public let method: String
    public let tasks: Int
    /// accuracy[t][j]: accuracy on task j's test rows after training task t; nil for tasks not yet trained (j > t).
    public let accuracy: [[Double?]]
    /// The same on the validation rows, when the data has some (what to choose α or λ on).
    public let validationAccuracy: [[Double?]]?
    /// Mean of the last row of `accuracy`: every task after the last one.
    public let averageAccuracy: Double
    public let validationAverage: Double?
    /// BWT = 1/(T−1)·Σ_{j<T−1} (accuracy[T−1][j] − accuracy[j][j]): negative is forgetting; nil for one task.
    public let backwardTransfer: Double?
    public let seconds: Double
    public let ranks: Int

    enum CodingKeys: String, CodingKey {
        case method, tasks, accuracy, validationAccuracy = "validation_accuracy", averageAccuracy = "average_accuracy"
        case validationAverage = "validation_average", backwardTransfer = "backward_transfer", seconds, ranks
    }

    /// The average of the last row and backward transfer of an accuracy matrix.
    static func summary(_ r: [[Double?]]) -> (average: Double, backward: Double?) {
        let last = r[r.count - 1].compactMap { $0 }
        let average = last.reduce(0, +) / Double(max(1, last.count))
        guard r.count > 1 else { return (average, nil) }
        let drops = (0..<(r.count - 1)).map { j in (r[r.count - 1][j] ?? 0) - (r[j][j] ?? 0) }
        return (average, drops.reduce(0, +) / Double(drops.count))
    }
}

/// One line of `metrics.jsonl`: an epoch of a task, or (with `testAccuracy`) the scores after a task.
struct ContinualMetrics: Encodable {
    var task: Int
    var epoch: Int?
    var trainLoss, loss, accuracy, seconds: Double?
    var testAccuracy, validationAccuracy: [Double]?
    enum CodingKeys: String, CodingKey {
        case task, epoch, trainLoss = "train_loss", loss, accuracy, seconds
        case testAccuracy = "test_accuracy", validationAccuracy = "validation_accuracy"
    }
}

/// Trains a recipe's model on a sequence of tasks (`continual:`), one after the other with a fresh optimizer each,
/// keeping each task's last weights, and after each task scores every task so far on its test (and validation)
/// rows. Against forgetting, training task t > 0 adds L2-SP towards task t−1's final weights or EWC's penalty per
/// earlier task. Data-parallel as `graft train`: rank 0 alone logs and writes.
public final class ContinualRun {
    public let recipe: Recipe
    /// The recipe's `continual:` section.
    public let spec: ContinualSpec
    public let communicator: any Communicator
    /// Where rank 0's lines go.
    public var log: (String) -> Void = { print($0) }
    /// Shows how far each epoch and evaluation is, on rank 0 (nil: nothing).
    public var progress: ProgressReporter?

    /// Refuses a recipe without a `continual:` section.
    public init(_ recipe: Recipe, communicator: any Communicator = LocalCommunicator()) throws {
        guard let spec = recipe.continual else {
            throw RecipeError(file: recipe.file, line: nil, field: "continual", "is required by graft continual (a sequence of tasks)")
        }
        (self.recipe, self.spec, self.communicator) = (recipe, spec, communicator)
    }

    private func say(_ line: String) { if communicator.isRoot { log(line) } }

    /// Feature order of task `t`: the identity for task 0, else a permutation drawn from the spec's seed and t.
    public static func permutation(task t: Int, width: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<width)
        guard t > 0 else { return order }
        var rng = RandomGenerator(seed: seed).split(UInt64(t))
        for i in stride(from: width - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return order
    }

    /// Trains every task in turn and scores them; rank 0 writes `output` (an earlier run there only with `overwrite`).
    @discardableResult
    public func run(overwrite: Bool = false) throws -> ContinualResult {
        let files = RecipeRun(recipe, communicator: communicator)
        return try files.inPrecision { try train(files, overwrite: overwrite) }
    }

    private func train(_ files: RecipeRun, overwrite: Bool) throws -> ContinualResult {
        let start = Date()
        let output = recipe.output
        var rng = RandomGenerator(seed: recipe.seed)
        let (data, model) = try communicator.agree { () throws -> (RecipeData, any BlockClassifier) in
            if let output, communicator.isRoot {
                try files.checkOutput(output, overwrite: overwrite)
                try files.prepareOutput(output)
                try files.startOutput(output)
            }
            var data = try RecipeData.load(recipe.data, seed: recipe.seed, tokenizer: nil)
            if recipe.model.architecture == .mlp && data.inputShape.count > 1 { data = data.flattened() }
            data.notes.forEach(say)
            let (model, line) = try recipe.model.build(classes: data.classNames.count, inputShape: data.inputShape, padId: 0, using: &rng)
            say("model: \(line)")
            return (data, model)
        }
        let width = data.inputShape.reduce(1, *)
        let orders = (0..<spec.count).map { Self.permutation(task: $0, width: width, seed: spec.seed) }
        func task(_ rows: LabelledRows?, _ t: Int) -> LabelledRows? {
            guard let rows, t > 0 else { return rows }
            let flat = rows.inputs.reshaped([rows.count, width]).indexSelect(axis: 1, Indices(orders[t], shape: [width]))
            return LabelledRows(inputs: flat.reshaped(rows.inputs.shape), labels: rows.labels)
        }
        let t = recipe.training
        say("data: \(data.train.count) training, \(data.validation?.count ?? 0) validation, \(data.test?.count ?? 0) test rows per task; "
            + "\(spec.count) tasks (task 0 as is, the others with their \(width) features permuted, seed \(spec.seed))")
        say("continual: \(spec.method.rawValue)" + (spec.method == .l2sp ? ", α = \(spec.alpha) towards the previous task's weights"
            : spec.method == .ewc ? ", λ = \(spec.lambda), a penalty per earlier task with its empirical Fisher" : "")
            + "; \(t.epochs) epochs per task, batch \(t.batchSize)" + (communicator.size > 1 ? " over \(communicator.size) ranks" : ""))
        guard case let .fullFineTuning(lr, lowest)? = recipe.strategy.fixed else { fatalError("continual: the recipe checks strategy full") }
        let hasBatchNorm = model.namedModules().contains { $0.1 is BatchNorm }
        let batches = { (rows: LabelledRows, shuffle: Bool, task: Int) in
            Batches(inputs: rows.inputs, labels: rows.labels, batchSize: t.batchSize, shuffle: shuffle,
                    seed: self.recipe.seed &+ UInt64(task), dropLast: shuffle && hasBatchNorm && rows.count % t.batchSize != 0)
        }
        let parameters = model.namedParameters().map(\.1)
        let penalty = QuadraticPenalty()
        var testRows: [[Double?]] = [], validationRows: [[Double?]] = []
        for k in 0..<spec.count {
            let tuner = try FineTuner(model: model, strategy: .fullFineTuning(lr: lr, lowestRate: lowest),
                                      configuration: recipe.training.trainerConfiguration, base: recipe.optimizer.options, communicator: communicator,
                                      makeOptimizer: { [kind = recipe.optimizer.kind] in try kind.make($0) })
            let trainer = tuner.trainer
            if communicator.isRoot { trainer.progress = progress }
            if t.labelSmoothing > 0 {
                trainer.loss = { [s = t.labelSmoothing] in Tensor.crossEntropy($0, targets: $1, labelSmoothing: s) }
            }
            if spec.method != .naive && k > 0 { trainer.penalty = penalty }
            var epochStart = Date()
            trainer.onEpochStart.append { _ in epochStart = Date() }
            trainer.onEpochEnd.append { [unowned self, unowned trainer] report in
                let seconds = Date().timeIntervalSince(epochStart)
                say(String(format: "task %d  epoch %3d  train loss %.4f  %@ loss %.4f  acc %5.1f%%%@  %5.1f s", k, report.epoch + 1,
                           report.trainLoss, data.validation == nil ? "fit" : "val", report.evaluation.loss,
                           100 * report.evaluation.accuracy, trainer.penalty.map { String(format: "  penalty %.4f", $0.value()) } ?? "", seconds))
                if let output, communicator.isRoot {
                    try appendLine(try jsonText(ContinualMetrics(task: k, epoch: report.epoch, trainLoss: report.trainLoss,
                                                                 loss: report.evaluation.loss, accuracy: report.evaluation.accuracy,
                                                                 seconds: seconds), pretty: false), to: "\(output)/metrics.jsonl")
                }
                return .proceed
            }
            let train = task(data.train, k)!
            try tuner.fit(batches(train, true, k), validation: task(data.validation, k).map { batches($0, false, k) })
            func scores(_ rows: LabelledRows?) throws -> [Double?]? {
                guard let rows else { return nil }
                let done = try (0...k).map { try trainer.evaluate(batches(task(rows, $0)!, false, $0)).accuracy }
                return done + [Double?](repeating: nil, count: spec.count - k - 1)
            }
            let test = try scores(data.test)!
            testRows.append(test)
            if let v = try scores(data.validation) { validationRows.append(v) }
            say("after task \(k): test accuracy " + test.prefix(k + 1).map { String(format: "%.2f%%", 100 * $0!) }.joined(separator: "  "))
            if let output, communicator.isRoot {
                try appendLine(try jsonText(ContinualMetrics(task: k, testAccuracy: test.compactMap { $0 },
                                                             validationAccuracy: validationRows.last.map { $0.compactMap { $0 } }),
                                            pretty: false), to: "\(output)/metrics.jsonl")
            }
            guard k < spec.count - 1 else { break }
            switch spec.method {
            case .naive: break
            case .l2sp:
                penalty.replace(with: QuadraticPenalty.l2sp(body: parameters, head: [], alpha: spec.alpha, beta: 0).terms)
            case .ewc:
                let fisherStart = Date()
                let fisher = try empiricalFisherDiagonal(model: model, forward: { model($0) }, parameters: parameters,
                                                         inputs: train.inputs, labels: train.labels, communicator: communicator)
                penalty.append(QuadraticPenalty.ewcTerms(parameters: parameters, fisher: fisher, lambda: spec.lambda))
                let mean = fisher.flatMap { $0 }.reduce(0.0) { $0 + Double($1) } / Double(max(1, parameters.map(\.count).reduce(0, +)))
                let largest = fisher.flatMap { $0 }.max() ?? 0
                say(String(format: "task %d: empirical Fisher on its %d training rows (mean %.3g, largest %.3g) in %.1f s", k,
                           train.count, mean, largest, Date().timeIntervalSince(fisherStart)))
            }
        }
        let (average, backward) = ContinualResult.summary(testRows)
        let result = ContinualResult(method: spec.method.rawValue, tasks: spec.count, accuracy: testRows,
                                     validationAccuracy: validationRows.isEmpty ? nil : validationRows, averageAccuracy: average,
                                     validationAverage: validationRows.isEmpty ? nil : ContinualResult.summary(validationRows).average,
                                     backwardTransfer: backward, seconds: Date().timeIntervalSince(start), ranks: communicator.size)
        report(result)
        if let output {
            try communicator.agree {
                guard communicator.isRoot else { return }
                try AtomicDirectory.writeFile(try jsonText(result), named: "results.json", in: output)
                try AtomicDirectory.write("\(output)/last") { dir in
                    try SafeTensors.write(model.stateDict(), to: "\(dir)/model.safetensors", metadata: ["format": "pt"])
                }
            }
            say("wrote \(output)/metrics.jsonl, results.json, last/model.safetensors (the weights after the last task)")
        }
        return result
    }

    /// The accuracy matrix, the average after the last task and backward transfer.
    private func report(_ r: ContinualResult) {
        say("test accuracy (%), row: after task t, column: task j")
        func right(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        say(right("", 8) + (0..<r.tasks).map { right("task \($0)", 8) }.joined())
        for (t, row) in r.accuracy.enumerated() {
            say("after \(t)" + right("", 1 - "\(t)".count) + row.map { right($0.map { String(format: "%.2f", 100 * $0) } ?? "·", 8) }.joined())
        }
        say(String(format: "average accuracy after the last task: %.2f%%", 100 * r.averageAccuracy)
            + (r.backwardTransfer.map { String(format: "  backward transfer: %+.2f points", 100 * $0) } ?? "")
            + (r.validationAverage.map { String(format: "  (validation average %.2f%%)", 100 * $0) } ?? ""))
    }
}
