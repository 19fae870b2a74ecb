import ArgumentParser
import Foundation
import GraftDistributed
import GraftIO
import GraftRecipe
import GraftTrain

/// Runs one recipe under several fine-tuning strategies on the same split and compares them.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a recipe under several strategies on the same split and compare them.",
        discussion: """
            Each strategy replaces the recipe's strategy: scratch (every layer trained from fresh weights at \
            --head-lr), feature-extraction (the head alone at --head-lr), partial (the top --top-blocks blocks at \
            --lr), full (everything at --lr), two-stage (the head for a third of the epochs at --head-lr, then the top \
            blocks at --lr) and gradual-unfreezing (a block more each epoch, at --lr). Prints test accuracy, best \
            validation accuracy, the epoch it came at, trainable parameters and wall time per strategy, and draws \
            every strategy's validation accuracy in OUTPUT/compare.svg. Each run is kept in OUTPUT/<strategy>.
            """)

    @Argument(help: "The recipe.") var recipe: String
    @Option(help: "Comma-separated strategies.") var strategies = StrategyVariants.replacing.joined(separator: ",")
    @Option(name: .customLong("set"), help: "Override a recipe field: field.path=value (repeatable).") var overrides: [String] = []
    @OptionGroup var rates: StrategyOptions
    @Option(help: "Where the runs and compare.svg go.") var output = "runs/compare"
    @Flag(help: "Replace earlier runs in OUTPUT.") var overwrite = false

    func validate() throws { try StrategyVariants.check(strategies, known: StrategyVariants.replacing) }

    func run() throws {
        try runOnEveryRank("graft compare") { communicator in
            let base = try communicator.agree { try Recipe.load(path: recipe, overrides: overrides) }
            let variants = StrategyVariants(base, rates)
            var rows: [(name: String, result: RunResult, seconds: Double)] = []
            for name in strategies.split(separator: ",").map(String.init) {
                let (extra, description) = variants.overrides(name)
                let sets = overrides + extra + ["output=\(output)/\(name)"]
                let loaded = try communicator.agree { try Recipe.load(path: recipe, overrides: sets) }
                let run = RecipeRun(loaded, communicator: communicator)
                run.log = { print("[\(name)] \($0)") }
                if communicator.isRoot { print("== \(name): \(description)") }
                let start = Date()
                let result = try run.run(overwrite: overwrite)
                rows.append((name, result, Date().timeIntervalSince(start)))
            }
            guard communicator.isRoot else { return }
            print(table(rows))
            let chart = LineChart(title: "Validation accuracy by strategy", xLabel: "epoch", yLabel: "accuracy (%)",
                                  series: rows.map { row in
                                      .init(row.name, row.result.reports.map { (Double($0.epoch + 1), 100 * $0.evaluation.accuracy) })
                                  })
            try AtomicDirectory.writeFile(LineChart.svg([chart]), named: "compare.svg", in: output)
            print("wrote \(output)/compare.svg")
        }
    }

    private func table(_ rows: [(name: String, result: RunResult, seconds: Double)]) -> String {
        var lines = ["| strategy | test accuracy | best validation accuracy | epoch of best | trainable parameters | wall time |",
                     "|---|---|---|---|---|---|"]
        for (name, r, seconds) in rows {
            let best = r.bestEpoch.flatMap { b in r.reports.first { $0.epoch == b } }
            lines.append("| \(name) | " + (r.test.map { String(format: "%.2f %%", 100 * $0.accuracy) } ?? "–") + " | "
                + (best.map { String(format: "%.2f %%", 100 * $0.evaluation.accuracy) } ?? "–") + " | "
                + (r.bestEpoch.map { String($0 + 1) } ?? "–") + " | \(r.trainableParameters) | " + String(format: "%.1f s", seconds) + " |")
        }
        return lines.joined(separator: "\n")
    }
}
