import ArgumentParser
import Foundation
import GraftCore
import GraftData
import GraftDistributed
import GraftIO
import GraftRecipe
import GraftTrain

/// Evaluates a run's best weights on its test rows or on other data.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Loss, accuracy, macro-F1, per-class scores and the confusion matrix of a trained run.",
        discussion: """
            Loads RUN_DIR's best/ weights (last/ without one) with its recipe and evaluates them on the run's test \
            rows (the target domain's for a domain-adaptation run), split as in training, or on every row of --data, \
            read as the recipe reads its data. Under mpirun each rank takes a share of every batch; rank 0 prints.
            """)

    @Argument(help: ArgumentHelp("A run directory written by graft train.", valueName: "RUN_DIR")) var directory: String
    @Option(help: "Evaluate on every row of this data (a CSV file or a text folder, as the recipe's).") var data: String?
    @Option(help: "Write the confusion matrix as an SVG image here.") var svg: String?
    @Option(help: "Rows per batch.") var batchSize = 64

    func validate() throws {
        if batchSize < 1 { throw ValidationError("--batch-size must be ≥ 1, got \(batchSize)") }
    }

    func run() throws {
        try runOnEveryRank("graft evaluate") { communicator in
            let trained = try communicator.agree {
                let trained = try TrainedRun(directory)
                try trained.requireClassifier()
                return trained
            }
            if svg != nil && trained.tasks != nil {
                throw ValidationError("--svg draws one confusion matrix; \(directory) is a multi-task run, with one per task")
            }
            let (rows, what): (LabelledRows, String) = try communicator.agree {
                if let data {
                    return (try trained.data(at: data).train, "every row of \(data)")
                }
                guard let test = try trained.recipeData().test else {
                    throw RecipeError(file: trained.recipe.file, line: nil, field: "data.test",
                                      "the run held out no test rows; pass --data to evaluate on other data")
                }
                return (test, "the run's test rows")
            }
            let batches = Batches(inputs: rows.inputs, labels: rows.labels, batchSize: batchSize, shuffle: false)
            let model = trained.model
            let result = try Evaluation.of(model, forward: { model($0) }, on: batches, communicator: communicator,
                                           tasks: trained.tasks)
            guard communicator.isRoot else { return }
            print("\(trained.checkpoint) (epoch \(trained.state.epoch)) on \(what): \(rows.count) rows")
            if !result.tasks.isEmpty {
                print(String(format: "%d tasks: loss (sum) %.4f  mean accuracy %.2f%%  mean macro-F1 %.4f",
                             result.tasks.count, result.loss, 100 * result.accuracy, result.macroF1))
                for task in result.tasks { print("task \(task.name): " + report(task.evaluation, classNames: task.classNames)) }
                return
            }
            print(report(result, classNames: trained.classNames))
            if let svg {
                let url = URL(fileURLWithPath: svg)
                try AtomicDirectory.writeFile(confusionSVG(result.confusion, classNames: trained.classNames),
                                              named: url.lastPathComponent, in: url.deletingLastPathComponent().path)
                print("wrote \(svg)")
            }
        }
    }
}

/// Loss, accuracy and macro-F1, a line per class, and the confusion matrix (rows the true class).
func report(_ e: Evaluation, classNames: [String]) -> String {
    var lines = [String(format: "loss %.4f  accuracy %.2f%%  macro-F1 %.4f", e.loss, 100 * e.accuracy, e.macroF1)]
    let width = max(5, classNames.map(\.count).max() ?? 0)
    for (c, name) in classNames.enumerated() where c < e.confusion.classes {
        lines.append("  " + name.padding(toLength: width, withPad: " ", startingAt: 0)
            + String(format: "  precision %.3f  recall %.3f  F1 %.3f", e.confusion.precision(c), e.confusion.recall(c), e.confusion.f1(c)))
    }
    let n = e.confusion.classes
    let cell = max(5, String(e.confusion.counts.max() ?? 0).count + 1)
    lines.append("confusion (rows: true class, columns: predicted):")
    lines.append("  " + "".padding(toLength: width, withPad: " ", startingAt: 0)
        + (0..<n).map { String(classNames[$0].prefix(cell - 1)).leftPadded(cell) }.joined())
    for t in 0..<n {
        lines.append("  " + classNames[t].padding(toLength: width, withPad: " ", startingAt: 0)
            + (0..<n).map { String(e.confusion.counts[t * n + $0]).leftPadded(cell) }.joined())
    }
    return lines.joined(separator: "\n")
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}

/// The confusion matrix as an SVG heat map: each cell shaded by its share of the true class's rows, with its count.
func confusionSVG(_ confusion: ConfusionMatrix, classNames: [String]) -> String {
    let n = confusion.classes, cell = 44, margin = 12 + 7 * min(24, classNames.map(\.count).max() ?? 1)
    let side = margin + n * cell + 20
    func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
    var svg = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(side)\" height=\"\(side + 30)\" font-family=\"sans-serif\" font-size=\"12\">",
               "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
               "<text x=\"\(margin)\" y=\"16\" font-size=\"14\">Confusion matrix (rows: true class, columns: predicted)</text>"]
    for t in 0..<n {
        let rowTotal = max(1, (0..<n).map { confusion.counts[t * n + $0] }.reduce(0, +))
        let y = 30 + margin + t * cell
        svg.append("<text x=\"\(margin - 6)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"end\">\(escaped(String(classNames[t].prefix(24))))</text>")
        for p in 0..<n {
            let count = confusion.counts[t * n + p], share = Double(count) / Double(rowTotal)
            let shade = Int(255 - 200 * share)
            let x = margin + p * cell
            svg.append("<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"rgb(\(shade),\(shade),255)\" stroke=\"#ccc\"/>")
            svg.append("<text x=\"\(x + cell / 2)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"middle\" fill=\"\(share > 0.6 ? "white" : "black")\">\(count)</text>")
        }
    }
    for p in 0..<n {
        let x = margin + p * cell + cell / 2, y = 30 + margin - 6
        svg.append("<text x=\"\(x)\" y=\"\(y)\" text-anchor=\"start\" transform=\"rotate(-45 \(x) \(y))\">\(escaped(String(classNames[p].prefix(24))))</text>")
    }
    svg.append("</svg>")
    return svg.joined(separator: "\n") + "\n"
}
