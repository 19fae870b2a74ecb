import Foundation
import GraftCore
import GraftData
import GraftIO
import GraftNN
import GraftTrain

// The run directory of a recipe run: resuming from it, starting it, and what is written into it.
extension RecipeRun {
    /// Where the best epoch's weights of `saved` are: `best/` when it holds that epoch. A kill between an epoch's
    /// `last/` and `best/` leaves `best/` one improvement behind; the best epoch is then the last one completed, whose
    /// weights are `last/`'s (unless a later save inside the next epoch has replaced them, which cannot happen: that
    /// run rewrote `best/` when it resumed).
    func bestCheckpoint(of saved: CheckpointState, in directory: String) throws -> String? {
        guard let best = saved.best else { return nil }
        if (try? Checkpoint.loadState(from: "\(directory)/best"))?.epoch == best.epoch + 1 { return "\(directory)/best" }
        guard best.epoch == saved.epoch - 1 && saved.epochPosition == nil else {
            throw CheckpointError(path: "\(directory)/best", "does not hold epoch \(best.epoch + 1), the best one last/state.json names")
        }
        return "\(directory)/last"
    }

    /// Refuses to resume a run that finished or was made by another recipe.
    func checkResumable(_ saved: CheckpointState, directory: String) throws {
        if FileManager.default.fileExists(atPath: "\(directory)/results.json") {
            throw RecipeError(file: recipe.file, line: nil, field: "--resume", "\(directory) holds a finished run (results.json); nothing to resume")
        }
        // A longer run may continue a shorter one; the output is where it is resumed.
        let free: Set<String> = ["output", "training.epochs"]
        let old = Dictionary(saved.recipe.map { line in
            let eq = line.firstIndex(of: "=") ?? line.endIndex
            return (String(line[..<eq]), eq < line.endIndex ? String(line[line.index(after: eq)...]) : "")
        }, uniquingKeysWith: { a, _ in a })
        let new = Dictionary(recipe.fields.map { ($0.path, $0.value) }, uniquingKeysWith: { a, _ in a })
        let changed = Set(old.keys).union(new.keys).subtracting(free).filter { old[$0] != new[$0] }.sorted()
        guard changed.isEmpty else {
            throw RecipeError(file: recipe.file, line: nil, field: "--resume", "the recipe differs from the one \(directory) was trained with: "
                + changed.map { "\($0) \(old[$0] ?? "(absent)") → \(new[$0] ?? "(absent)")" }.joined(separator: ", "))
        }
    }

    /// Cuts `metrics.jsonl` back to the epochs before `epoch`: those after it are trained again.
    func keepMetrics(in directory: String, before epoch: Int) throws {
        let path = "\(directory)/metrics.jsonl"
        let text = (try? readRegularFile(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let kept = text.split(separator: "\n").filter { line in
            guard let m = try? JSONDecoder().decode(EpochMetrics.self, from: Data(line.utf8)) else { return false }
            return m.epoch < epoch
        }
        try AtomicDirectory.writeFile(kept.map { $0 + "\n" }.joined(), named: "metrics.jsonl", in: directory)
    }

    /// `curves.svg`: loss (training and evaluation) and the evaluation's accuracy and macro-F1 per epoch, from
    /// `metrics.jsonl` (so a resumed run draws its earlier epochs too).
    func writeCurves(in directory: String, validation: Bool) throws {
        let text = (try? readRegularFile("\(directory)/metrics.jsonl")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let epochs = text.split(separator: "\n").compactMap { try? JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)) }
        func points(_ value: (EpochMetrics) -> Double?) -> [(x: Double, y: Double)] {
            epochs.compactMap { m in value(m).map { (Double(m.epoch + 1), $0) } }
        }
        let on = validation ? "validation" : "training, eval mode"
        let loss = LineChart(title: "Loss", xLabel: "epoch", yLabel: "loss",
                             series: [.init("training", points(\.trainLoss)), .init(on, points(\.loss))])
        let rows = validation ? "validation rows" : "training rows (no validation split)"
        let scores = LineChart(title: "Evaluation on the \(rows)", xLabel: "epoch", yLabel: "%",
                               series: [.init("accuracy", points { $0.accuracy.map { 100 * $0 } }),
                                        .init("macro-F1", points { $0.macroF1.map { 100 * $0 } })])
        try AtomicDirectory.writeFile(LineChart.svg([loss, scores]), named: "curves.svg", in: directory)
    }

    /// Refuses to mix a new run into an earlier one unless asked to.
    func checkOutput(_ output: String, overwrite: Bool) throws {
        // What a run that failed before its first checkpoint leaves (the recipe copy, an empty log) is not a run.
        let existing = ((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? [])
            .filter { !["recipe.yaml", "metrics.jsonl"].contains($0) }
        if !existing.isEmpty && !overwrite {
            throw RecipeError(file: recipe.file, line: nil, field: "output",
                              "\(output) already holds a run (\(existing.sorted().joined(separator: ", "))); "
                                  + "choose another output, pass --overwrite, or --resume \(output)")
        }
    }

    /// Creates `output`; an earlier run in it stays as it is until this run's first checkpoint (`startOutput`).
    func prepareOutput(_ output: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            throw RecipeError(file: recipe.file, line: nil, field: "output", "cannot create \(output): \(error.localizedDescription)")
        }
    }

    /// Just before a new run's first checkpoint: the recipe copy and an empty metrics log replace the earlier run's,
    /// whose results go (its `best/` is replaced by this first checkpoint, the first epoch being the best so far).
    func startOutput(_ output: String) throws {
        let text = String(decoding: try readRegularFile(recipe.file), as: UTF8.self)
        try AtomicDirectory.writeFile(text, named: "recipe.yaml", in: output)
        try AtomicDirectory.writeFile("", named: "metrics.jsonl", in: output)
        try? FileManager.default.removeItem(atPath: "\(output)/results.json")
    }

    func writeResults(_ r: RunResult, classNames: [String], tasks: TaskLayout? = nil, seconds: Double, to output: String) throws {
        let best = r.bestEpoch.flatMap { b in r.reports.first { $0.epoch == b } }
        let results = Results(
            strategy: "\(r.strategy)", epochs: r.reports.count, seconds: seconds, autoReason: r.reason,
            bestEpoch: r.bestEpoch, bestEvaluation: best.map(EpochMetrics.init), testedEpoch: r.test == nil ? nil : r.testedEpoch,
            test: r.test.map { test in
                var figures = Results.Test(test, classNames: tasks == nil ? classNames : [])
                // A multi-task run: the means over the tasks, then each task's figures.
                if tasks != nil { figures.tasks = test.tasks.map { Results.Test($0.evaluation, classNames: $0.classNames, task: $0.name) } }
                return figures
            }, ranks: communicator.size, skippedSteps: r.reports.reduce(0) { $0 + $1.skippedSteps },
            adaptation: recipe.adaptation.map { a in
                Results.Adaptation(method: a.method.rawValue, selection: a.selection.rawValue,
                                   targetTest: r.targetTest.map { .init(loss: $0.loss.isFinite ? $0.loss : nil, accuracy: $0.accuracy,
                                                                        macroF1: $0.macroF1) })
            })
        try AtomicDirectory.writeFile(try jsonText(results), named: "results.json", in: output)
    }
}

/// `results.json`.
struct Results: Encodable {
    struct Test: Encodable {
        struct PerClass: Encodable {
            let name: String
            let precision, recall, f1: Double
            enum CodingKeys: String, CodingKey { case name = "class", precision, recall, f1 }
        }
        var task: String?
        let loss: Double?
        let accuracy, macroF1: Double
        let perClass: [PerClass]
        var tasks: [Test]?
        enum CodingKeys: String, CodingKey { case task, loss, accuracy, macroF1 = "macro_f1", perClass = "per_class", tasks }

        init(_ e: Evaluation, classNames: [String], task: String? = nil) {
            (self.task, loss, accuracy, macroF1) = (task, e.loss.isFinite ? e.loss : nil, e.accuracy, e.macroF1)
            perClass = classNames.enumerated().map { c, name in
                .init(name: name, precision: e.confusion.precision(c), recall: e.confusion.recall(c), f1: e.confusion.f1(c))
            }
        }
    }
    let strategy: String
    let epochs: Int
    let seconds: Double
    let autoReason: String?
    let bestEpoch: Int?
    let bestEvaluation: EpochMetrics?
    let testedEpoch: Int?
    let test: Test?
    let ranks: Int
    let skippedSteps: Int
    /// Domain adaptation: the method, how the weights were chosen (never with target labels), the target test.
    struct Adaptation: Encodable {
        struct TargetTest: Encodable {
            let loss: Double?
            let accuracy, macroF1: Double
            enum CodingKeys: String, CodingKey { case loss, accuracy, macroF1 = "macro_f1" }
        }
        let method, selection: String
        let targetTest: TargetTest?
        enum CodingKeys: String, CodingKey { case method, selection, targetTest = "target_test" }
    }
    let adaptation: Adaptation?
    enum CodingKeys: String, CodingKey {
        case strategy, epochs, seconds, autoReason = "auto_reason", bestEpoch = "best_epoch"
        case bestEvaluation = "best_evaluation", testedEpoch = "tested_epoch", test, ranks, skippedSteps = "skipped_steps"
        case adaptation
    }
}

/// The adaptation term's mean over the epoch, for the epoch line.
func adaptationSummary(_ objective: DomainAdaptation) -> String {
    let name = objective.method == .dann ? "domain loss" : "adaptation"
    var text = String(format: "  %@ %.4f", name, objective.epochMeanTerm)
    if case .pseudoLabel = objective.method { text += "  pseudo-labelled \(objective.pseudoLabelled)" }
    return text
}

func appendLine(_ line: String, to path: String) throws {
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
    /// Domain adaptation: those weights on the target domain's test rows.
    public let targetTest: Evaluation?
    /// Parameters the optimizer updated at the end of training (unfrozen groups).
    public let trainableParameters: Int
    /// Rows the model trained on.
    public let trainingRows: Int
}
