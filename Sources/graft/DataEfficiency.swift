import ArgumentParser
import Foundation
import GraftDistributed
import GraftIO
import GraftRecipe
import GraftTrain

/// Trains a recipe on training sets of several sizes (rows per class), under several strategies and seeds, and
/// reports test accuracy against size: how much labelled data transfer saves.
struct DataEfficiency: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data-efficiency",
        abstract: "Test accuracy against training rows per class, from scratch and with transfer.",
        discussion: """
            For each size in --per-class (training rows per class, data.train-per-class; all: every training row), \
            each strategy and each of --seeds seeds, trains the recipe and keeps its test accuracy. Validation and \
            test rows are the same in every run (data.split-seed is fixed to the recipe's); seed k runs with seed = \
            the recipe's seed + k, which chooses the training rows and the initial weights. Strategies: transfer (the \
            recipe's own), scratch (model.pretrained=false, every layer trained at --head-lr), and those of graft \
            compare. Prints a table of mean ± standard deviation over the seeds and writes every result to \
            OUTPUT/data-efficiency.json, the curves with their spread to OUTPUT/data-efficiency.svg; each run is kept \
            in OUTPUT/<strategy>-<N>-seed<k>.
            """)

    static let known = ["transfer"] + StrategyVariants.replacing

    @Argument(help: "The recipe.") var recipe: String
    @Option(help: "Comma-separated training rows per class; all for every training row.") var perClass = "5,10,20,50,all"
    @Option(help: "Seeds per size and strategy (the recipe's seed, +1, …).") var seeds = 3
    @Option(help: "Comma-separated strategies.") var strategies = "scratch,transfer"
    @Option(name: .customLong("set"), help: "Override a recipe field: field.path=value (repeatable).") var overrides: [String] = []
    @OptionGroup var rates: StrategyOptions
    @Option(help: "Where the runs, data-efficiency.json and data-efficiency.svg go.") var output = "runs/data-efficiency"
    @Flag(help: "Replace earlier runs in OUTPUT.") var overwrite = false

    /// A training-set size: at most `limit` rows per class, nil for all of them.
    struct Size: Equatable {
        let limit: Int?
        var name: String { limit.map(String.init) ?? "all" }
    }

    var sizes: [Size] { perClass.split(separator: ",").map { Size(limit: Int($0)) } }
    var names: [String] { strategies.split(separator: ",").map(String.init) }

    func validate() throws {
        try StrategyVariants.check(strategies, known: DataEfficiency.known)
        let items = perClass.split(separator: ",", omittingEmptySubsequences: false)
        for item in items where item != "all" && !(Int(item).map { $0 >= 1 } ?? false) {
            throw ValidationError("--per-class: '\(item)' is neither a number of rows ≥ 1 nor all")
        }
        if Set(items).count != items.count { throw ValidationError("--per-class names a size twice: \(perClass)") }
        if Set(names).count != names.count { throw ValidationError("--strategies names a strategy twice: \(strategies)") }
        if seeds < 1 { throw ValidationError("--seeds must be ≥ 1, got \(seeds)") }
        if output.isEmpty { throw ValidationError("--output is empty; name a directory") }
    }

    /// One finished run.
    struct Run: Codable {
        let strategy: String
        /// The size: training rows per class, or all.
        let perClass: String
        /// The seed's index k and the recipe seed it ran with.
        let seedIndex: Int, seed: UInt64
        let trainingRows: Int
        let testAccuracy: Double, testMacroF1: Double
        let bestEpoch: Int?, bestValidationAccuracy: Double?
        let seconds: Double
        let directory: String
        enum CodingKeys: String, CodingKey {
            case strategy, perClass = "per_class", seedIndex = "seed_index", seed, trainingRows = "training_rows"
            case testAccuracy = "test_accuracy", testMacroF1 = "test_macro_f1", bestEpoch = "best_epoch"
            case bestValidationAccuracy = "best_validation_accuracy", seconds, directory
        }
    }

    /// The mean and sample standard deviation of one (size, strategy) cell.
    struct Cell: Codable {
        let strategy: String
        let perClass: String
        let mean: Double, std: Double, seeds: Int
        enum CodingKeys: String, CodingKey { case strategy, perClass = "per_class", mean, std, seeds }
    }

    /// What `data-efficiency.json` holds.
    struct Report: Codable {
        let recipe: String
        let overrides: [String]
        let splitSeed: UInt64
        let perClass: [String], strategies: [String]
        let cells: [Cell]
        let runs: [Run]
        enum CodingKeys: String, CodingKey { case recipe, overrides, splitSeed = "split_seed", perClass = "per_class", strategies, cells, runs }
    }

    func run() throws {
        try runOnEveryRank("graft data-efficiency") { communicator in
            let base = try communicator.agree { () throws -> Recipe in
                let loaded = try Recipe.load(path: recipe, overrides: overrides)
                guard loaded.data.test > 0 else {
                    throw RecipeError(file: recipe, line: nil, field: "data.test",
                                      "is 0; graft data-efficiency reports test accuracy, so it needs test rows")
                }
                return loaded
            }
            let variants = StrategyVariants(base, rates)
            // Every run holds out the rows the recipe's own split holds out.
            let splitSeed = base.data.splitSeed ?? base.seed
            let say = { (line: String) in if communicator.isRoot { print(line) } }
            say("data-efficiency: \(sizes.count) sizes × \(names.count) strategies × \(seeds) seeds = "
                + "\(sizes.count * names.count * seeds) runs of \(recipe), split seed \(splitSeed), in \(output)/")
            for name in names { say("  \(name): \(variants.overrides(name).description)") }
            var runs: [Run] = []
            for size in sizes {
                for name in names {
                    for k in 0..<seeds {
                        runs.append(try train(size, name, seedIndex: k, base: base, variants: variants, splitSeed: splitSeed,
                                              communicator: communicator))
                        let r = runs.last!
                        say("\(name) \(size.name) per class, seed \(r.seed): test accuracy "
                            + String(format: "%.2f %%", 100 * r.testAccuracy) + " (\(r.trainingRows) training rows, "
                            + (r.bestEpoch.map { "best epoch \($0 + 1), " } ?? "") + String(format: "%.1f s)", r.seconds))
                    }
                }
            }
            guard communicator.isRoot else { return }
            let cells = sizes.flatMap { size in names.map { name in cell(runs.filter { $0.strategy == name && $0.perClass == size.name }) } }
            print(table(cells, runs: runs))
            let report = Report(recipe: recipe, overrides: overrides, splitSeed: splitSeed, perClass: sizes.map(\.name),
                                strategies: names, cells: cells, runs: runs)
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            try AtomicDirectory.writeFile(try jsonText(report), named: "data-efficiency.json", in: output)
            try AtomicDirectory.writeFile(LineChart.svg([chart(cells)]), named: "data-efficiency.svg", in: output)
            print("wrote \(output)/data-efficiency.json, \(output)/data-efficiency.svg")
        }
    }

    /// Trains the recipe under strategy `name` on `size` training rows per class with seed base + `seedIndex`.
    private func train(_ size: Size, _ name: String, seedIndex: Int, base: Recipe, variants: StrategyVariants,
                       splitSeed: UInt64, communicator: any Communicator) throws -> Run {
        let directory = "\(output)/\(name)-\(size.name)-seed\(seedIndex)"
        let seed = base.seed + UInt64(seedIndex)
        let sets = overrides + variants.overrides(name).sets + ["seed=\(seed)", "data.split-seed=\(splitSeed)", "output=\(directory)"]
            + (size.limit.map { ["data.train-per-class=\($0)"] } ?? [])
        let loaded = try communicator.agree { try Recipe.load(path: recipe, overrides: sets) }
        let run = RecipeRun(loaded, communicator: communicator)
        run.log = { _ in }
        let start = Date()
        let result = try run.run(overwrite: overwrite)
        guard let test = result.test else {
            throw RecipeError(file: recipe, line: nil, field: "data.test", "\(directory) has no test rows to report on")
        }
        let best = result.bestEpoch.flatMap { b in result.reports.first { $0.epoch == b } }
        return Run(strategy: name, perClass: size.name, seedIndex: seedIndex, seed: seed, trainingRows: result.trainingRows,
                   testAccuracy: test.accuracy, testMacroF1: test.macroF1,
                   bestEpoch: result.bestEpoch, bestValidationAccuracy: best?.evaluation.accuracy,
                   seconds: Date().timeIntervalSince(start), directory: directory)
    }

    /// The mean test accuracy of `runs` (one cell's seeds) and its sample standard deviation (0 for one seed).
    private func cell(_ runs: [Run]) -> Cell {
        let values = runs.map(\.testAccuracy), n = Double(values.count)
        let mean = values.reduce(0, +) / n
        let variance = values.count > 1 ? values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1) : 0
        return Cell(strategy: runs[0].strategy, perClass: runs[0].perClass, mean: mean, std: variance.squareRoot(), seeds: values.count)
    }

    /// Rows: sizes, with their training rows; columns: strategies; cells: test accuracy, mean ± std (n seeds).
    private func table(_ cells: [Cell], runs: [Run]) -> String {
        var lines = ["| rows per class | training rows | " + names.joined(separator: " | ") + " |",
                     "|---|---|" + String(repeating: "---|", count: names.count)]
        for size in sizes {
            let rows = Set(runs.filter { $0.perClass == size.name }.map(\.trainingRows)).sorted().map(String.init)
            let row = names.map { name -> String in
                let c = cells.first { $0.strategy == name && $0.perClass == size.name }!
                return String(format: "%.1f ± %.1f %%", 100 * c.mean, 100 * c.std) + " (\(c.seeds) seed\(c.seeds == 1 ? "" : "s"))"
            }
            lines.append("| \(size.name) | \(rows.joined(separator: "–")) | " + row.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// Mean test accuracy against rows per class (evenly spaced), a line per strategy, ± one standard deviation.
    private func chart(_ cells: [Cell]) -> LineChart {
        var chart = LineChart(title: "Test accuracy by training rows per class", xLabel: "training rows per class",
                              yLabel: "test accuracy (%)", series: names.map { name in
            let mine = sizes.map { size in cells.first { $0.strategy == name && $0.perClass == size.name }! }
            return .init(name, mine.enumerated().map { (Double($0.offset), 100 * $0.element.mean) }, spread: mine.map { 100 * $0.std })
        })
        chart.xCategories = sizes.map(\.name)
        return chart
    }
}
