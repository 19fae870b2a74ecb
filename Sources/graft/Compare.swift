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

    static let known = ["scratch", "feature-extraction", "partial", "full", "two-stage", "gradual-unfreezing"]

    @Argument(help: "The recipe.") var recipe: String
    @Option(help: "Comma-separated strategies.") var strategies = Compare.known.joined(separator: ",")
    @Option(name: .customLong("set"), help: "Override a recipe field: field.path=value (repeatable).") var overrides: [String] = []
    @Option(help: "Rate for fine-tuning pretrained blocks (default: the recipe's fine-tuning rate, else 1e-4).") var lr: Double?
    @Option(help: "Rate for a new head alone and for training from scratch (default: the recipe's head rate, else 10 × --lr).")
    var headLr: Double?
    @Option(help: "Blocks below the head that partial and two-stage fine-tune.") var topBlocks = 2
    @Option(help: "Where the runs and compare.svg go.") var output = "runs/compare"
    @Flag(help: "Replace earlier runs in OUTPUT.") var overwrite = false

    func validate() throws {
        for name in strategies.split(separator: ",") where !Compare.known.contains(String(name)) {
            throw ValidationError("unknown strategy '\(name)' (known: \(Compare.known.joined(separator: ", ")))")
        }
        if topBlocks < 1 { throw ValidationError("--top-blocks must be ≥ 1, got \(topBlocks)") }
        for (flag, rate) in [("--lr", lr), ("--head-lr", headLr)] where rate.map({ !($0 > 0) }) ?? false {
            throw ValidationError("\(flag) must be > 0")
        }
    }

    func run() throws {
        try runOnEveryRank("graft compare") { communicator in
            let base = try communicator.agree { try Recipe.load(path: recipe, overrides: overrides) }
            // Defaults from the recipe's own strategy: its head rate for heads, its fine-tuning rate for blocks.
            var (recipeRate, recipeHeadRate): (Double?, Double?) = (nil, nil)
            switch base.strategy.fixed {
            case let .featureExtraction(head, _)?: recipeHeadRate = Double(head)
            case let .twoStage(_, head, _, rate, _)?: (recipeRate, recipeHeadRate) = (Double(rate), Double(head))
            case let .fullFineTuning(rate, _)?, let .partial(_, rate)?, let .gradualUnfreezing(_, rate, _)?: recipeRate = Double(rate)
            case nil: break
            }
            let rate = lr ?? recipeRate ?? 1e-4
            let headRate = headLr ?? recipeHeadRate ?? 10 * rate
            let headEpochs = max(1, base.training.epochs / 3)
            var rows: [(name: String, result: RunResult, seconds: Double)] = []
            for name in strategies.split(separator: ",").map(String.init) {
                let strategy: String
                var extra: [String] = []
                switch name {
                case "scratch": strategy = "{name: full, lr: \(headRate)}"; extra = ["model.pretrained=false"]
                case "feature-extraction": strategy = "{name: feature-extraction, lr: \(headRate)}"
                case "partial": strategy = "{name: partial, top-blocks: \(topBlocks), lr: \(rate)}"
                case "full": strategy = "{name: full, lr: \(rate)}"
                case "two-stage":
                    strategy = "{name: two-stage, head-epochs: \(headEpochs), head-lr: \(headRate), top-blocks: \(topBlocks), lr: \(rate)}"
                default: strategy = "{name: gradual-unfreezing, every: 1, lr: \(rate)}"
                }
                let sets = overrides + extra + ["strategy=\(strategy)", "output=\(output)/\(name)"]
                let loaded = try communicator.agree { try Recipe.load(path: recipe, overrides: sets) }
                let run = RecipeRun(loaded, communicator: communicator)
                run.log = { print("[\(name)] \($0)") }
                if communicator.isRoot { print("== \(name): strategy \(strategy)\(extra.isEmpty ? "" : ", \(extra.joined(separator: ", "))")") }
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
