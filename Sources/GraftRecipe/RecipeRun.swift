import Foundation
import GraftCore
import GraftData
import GraftIO
import GraftNN
import GraftOptim
import GraftTrain

/// What a finished run reports (and writes to `results.json`).
public struct RunResult {
    public let strategy: FineTuningStrategy
    public let reason: String?
    public let reports: [EpochReport]
    public let bestEpoch: Int?
    /// The epoch whose weights were tested: the best on validation, or the last without validation rows.
    public let testedEpoch: Int
    /// Those weights on the test rows; nil without test rows.
    public let test: Evaluation?
}

/// Carries out a recipe: data, model, strategy, optimizer and schedule, training with evaluation each epoch,
/// checkpoints `last/` (every epoch) and `best/` (each improvement) under `output`, then the best weights on the
/// test rows.
public final class RecipeRun {
    public let recipe: Recipe
    /// Where progress lines go.
    public var log: (String) -> Void = { print($0) }

    public init(_ recipe: Recipe) { self.recipe = recipe }

    @discardableResult
    public func run(overwrite: Bool = false) throws -> RunResult {
        let start = Date()
        if let output = recipe.output { try checkOutput(output, overwrite: overwrite) }
        var rng = RandomGenerator(seed: recipe.seed)

        let tokenizer = try recipe.model.tokenizer(vocabulary: recipe.data.vocabulary)
        if recipe.data.format == .textFolder && tokenizer == nil {
            throw RecipeError(file: recipe.file, line: nil, field: "model.architecture", "text data needs a bert model")
        }
        let data = try RecipeData.load(recipe.data, seed: recipe.seed, tokenizer: tokenizer)
        data.notes.forEach(log)
        log("data: \(data.train.count) training, \(data.validation?.count ?? 0) validation, \(data.test?.count ?? 0) test rows; "
            + "\(data.classNames.count) classes (\(data.classNames.joined(separator: ", ")))")

        let (model, modelLine) = try recipe.model.build(classes: data.classNames.count, inputShape: data.inputShape,
                                                        padId: tokenizer?.padId ?? 0, using: &rng)
        log("model: \(modelLine)")
        // Only now that data and weights have loaded is an earlier run in `output` replaced.
        if let output = recipe.output { try prepareOutput(output) }
        let (strategy, reason) = recipe.strategy.resolve(rows: data.train.count)
        log("strategy: \(strategy)")
        if let reason { log("  auto: \(reason)") }

        let t = recipe.training
        var configuration = Trainer.Configuration(epochs: t.epochs)
        configuration.accumulationSteps = t.accumulationSteps
        configuration.clipGradientNorm = t.clipGradientNorm
        configuration.monitor = t.monitor == "loss" ? .loss : t.monitor == "accuracy" ? .accuracy : .macroF1
        configuration.patience = t.patience
        configuration.minDelta = t.minDelta
        configuration.trainFrozenBatchNorm = t.trainFrozenBatchNorm
        let batchesPerEpoch = (data.train.count + t.batchSize - 1) / t.batchSize
        let steps = t.epochs * ((batchesPerEpoch + t.accumulationSteps - 1) / t.accumulationSteps)
        var plateau: ReduceOnPlateau?
        if let (kind, options) = recipe.schedule {
            do {
                switch try kind.make(options, totalSteps: steps) {
                case let .perStep(s): configuration.schedule = s
                case let .plateau(p): plateau = p
                }
            } catch { throw RecipeError(file: recipe.file, line: nil, field: "schedule", "\(error)") }
        }
        let kind = recipe.optimizer.kind
        let tuner = try FineTuner(model: model, strategy: strategy, configuration: configuration,
                                  base: recipe.optimizer.options, makeOptimizer: { try kind.make($0) })
        let trainer = tuner.trainer
        trainer.plateau = plateau
        if t.labelSmoothing > 0 {
            let smoothing = t.labelSmoothing
            trainer.loss = { Tensor.crossEntropy($0, targets: $1, labelSmoothing: smoothing) }
        }
        log("optimizer: \(kind.rawValue), \(steps) steps of \(t.batchSize)"
            + (t.accumulationSteps > 1 ? " × \(t.accumulationSteps) accumulated" : "")
            + (recipe.schedule.map { ", schedule \($0.kind.rawValue)" } ?? ""))

        let headGroup = tuner.blockNames.count - 1
        var epochStart = Date()
        trainer.onEpochStart.append { _ in epochStart = Date() }
        trainer.onEpochEnd.append { [unowned self] report in
            let seconds = Date().timeIntervalSince(epochStart)
            log(String(format: "epoch %3d  train loss %.4f  %@ loss %.4f  acc %5.1f%%  F1 %.3f  lr %.2e  %5.1f s%@",
                       report.epoch + 1, report.trainLoss, data.validation == nil ? "fit" : "val", report.evaluation.loss,
                       100 * report.evaluation.accuracy, report.evaluation.macroF1,
                       report.learningRates[headGroup], seconds, report.improved ? "  *" : ""))
            if let output = recipe.output {
                do {
                    try appendLine(jsonLine(report.jsonObject.merging(["seconds": seconds]) { a, _ in a }),
                                   to: "\(output)/metrics.jsonl")
                    try Checkpoint.save(trainer, report: report, to: "\(output)/last")
                    if report.improved { try Checkpoint.save(trainer, report: report, to: "\(output)/best") }
                } catch {
                    log("error: \(error)")
                    return .stop
                }
            }
            return .proceed
        }

        let batches = { (rows: LabelledRows, shuffle: Bool) in
            Batches(inputs: rows.inputs, labels: rows.labels, batchSize: t.batchSize, shuffle: shuffle, seed: self.recipe.seed)
        }
        let reports = tuner.fit(batches(data.train, true), validation: data.validation.map { batches($0, false) })
        // The best epoch is chosen on validation rows; without them the last weights stand.
        var weightsEpoch = trainer.epochCount - 1
        if data.validation != nil, let best = trainer.bestEpoch {
            trainer.restoreBest()
            weightsEpoch = best
        }
        let test = data.test.map { trainer.evaluate(batches($0, false)) }
        if let test {
            log(String(format: "test (weights of epoch %d): loss %.4f  accuracy %.2f%%  macro-F1 %.4f",
                       weightsEpoch + 1, test.loss, 100 * test.accuracy, test.macroF1))
            for (c, name) in data.classNames.enumerated() {
                log(String(format: "  %-16@ precision %.3f  recall %.3f  F1 %.3f", name, test.confusion.precision(c),
                           test.confusion.recall(c), test.confusion.f1(c)))
            }
        }
        let result = RunResult(strategy: strategy, reason: reason, reports: reports, bestEpoch: trainer.bestEpoch,
                               testedEpoch: weightsEpoch, test: test)
        if let output = recipe.output {
            try writeResults(result, classNames: data.classNames, seconds: Date().timeIntervalSince(start), to: output)
            log("wrote \(output)/best, \(output)/last, metrics.jsonl, results.json")
        }
        return result
    }

    /// Refuses to mix a new run into an earlier one unless asked to.
    private func checkOutput(_ output: String, overwrite: Bool) throws {
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        if !existing.isEmpty && !overwrite {
            throw RecipeError(file: recipe.file, line: nil, field: "output",
                              "\(output) already holds a run (\(existing.sorted().joined(separator: ", "))); "
                                  + "choose another output or pass --overwrite")
        }
    }

    /// Creates `output` with a copy of the recipe and an empty metrics log.
    private func prepareOutput(_ output: String) throws {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: output, withIntermediateDirectories: true)
            try? fm.removeItem(atPath: "\(output)/metrics.jsonl")
            let text = try String(contentsOfFile: recipe.file, encoding: .utf8)
            try AtomicDirectory.writeFile(text, named: "recipe.yaml", in: output)
        } catch let error as SafeTensorsError {
            throw error
        } catch {
            throw RecipeError(file: recipe.file, line: nil, field: "output", "cannot prepare \(output): \(error.localizedDescription)")
        }
    }

    private func writeResults(_ r: RunResult, classNames: [String], seconds: Double, to output: String) throws {
        var object: [String: Any] = ["strategy": "\(r.strategy)", "epochs": r.reports.count, "seconds": seconds]
        if let reason = r.reason { object["auto_reason"] = reason }
        if let best = r.bestEpoch, let report = r.reports.first(where: { $0.epoch == best }) {
            object["best_epoch"] = best
            object["best_evaluation"] = report.jsonObject
        }
        if let test = r.test {
            object["tested_epoch"] = r.testedEpoch
            object["test"] = [
                "loss": test.loss, "accuracy": test.accuracy, "macro_f1": test.macroF1,
                "per_class": classNames.enumerated().map { c, name in
                    ["class": name, "precision": test.confusion.precision(c), "recall": test.confusion.recall(c),
                     "f1": test.confusion.f1(c)] as [String: Any]
                },
            ] as [String: Any]
        }
        try AtomicDirectory.writeFile(jsonText(object), named: "results.json", in: output)
    }
}

private func jsonText(_ object: [String: Any]) -> String {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    return String(decoding: data, as: UTF8.self) + "\n"
}

private func jsonLine(_ object: [String: Any]) -> String {
    String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
}

private func appendLine(_ line: String, to path: String) throws {
    guard let handle = FileHandle(forWritingAtPath: path) ?? {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return FileHandle(forWritingAtPath: path)
    }() else {
        throw RecipeError(file: path, line: nil, field: "output", "cannot open for appending")
    }
    defer { try? handle.close() }
    try handle.seekToEnd()
    try handle.write(contentsOf: Data((line + "\n").utf8))
}
