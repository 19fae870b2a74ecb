import ArgumentParser
import CBLAS
import Foundation
import GraftRecipe

/// Fine-tunes a model as a recipe file says (see `recipes/`).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a pretrained model as a recipe file says.",
        discussion: """
            The recipe (YAML) names the data, the model and its weights, the strategy, the optimizer, the schedule and \
            the training options; see recipes/ for examples. --set overrides one field, e.g. --set training.epochs=3. \
            Results go to the recipe's output directory: best/ and last/ checkpoints, metrics.jsonl, results.json.
            """)

    @Argument(help: "The recipe file.") var recipe: String
    @Option(name: .customLong("set"), help: "Override a recipe field: field.path=value (repeatable).") var overrides: [String] = []
    @Option(help: "Write the run here instead of the recipe's output.") var output: String?
    @Flag(help: "Write into an output directory that already holds a run.") var overwrite = false
    @Option(help: "Threads for OpenBLAS (default: what OpenBLAS chooses).") var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1, got \(threads)") }
    }

    func run() throws {
        if let threads { openblas_set_num_threads(Int32(threads)) }
        let sets = overrides + (output.map { ["output=\($0)"] } ?? [])
        do {
            try RecipeRun(try Recipe.load(path: recipe, overrides: sets)).run(overwrite: overwrite)
        } catch {
            // Recipe, data and weight errors name their file and field; the message is the whole report.
            FileHandle.standardError.write(Data("graft train: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
