import ArgumentParser
import CBLAS
import GraftRecipe
import GraftTrain

/// Trains one model on a sequence of tasks and measures how much of each it keeps (`continual:` in the recipe).
struct Continual: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "continual",
        abstract: "Train on a sequence of tasks (permuted MNIST), naive, with L2-SP or with EWC, and measure forgetting.",
        discussion: """
            The recipe is an ordinary one (data, model, strategy full, optimizer, training) with a continual: section: \
            tasks: permuted, count (5), seed (the recipe's), method naive | l2-sp (alpha: α, towards the previous task's \
            final weights) | ewc (lambda: λ, one penalty per earlier task with its empirical Fisher). Each task trains \
            training.epochs epochs with a fresh optimizer; after each, every task so far is scored on its test rows. The \
            accuracy matrix, the average accuracy after the last task and backward transfer are printed and written to \
            results.json, with metrics.jsonl and the final weights (last/model.safetensors), in the recipe's output. Under \
            mpirun the run is data-parallel as graft train: N ranks give what 1 rank gives.
            """)

    @Argument(help: "The recipe file (with a continual: section).") var recipe: String
    @Option(name: .customLong("set"), help: "Override a recipe field: field.path=value (repeatable).") var overrides: [String] = []
    @Option(help: "Write the run here instead of the recipe's output.") var output: String?
    @Flag(help: "Write into an output directory that already holds a run.") var overwrite = false
    @Option(help: "Threads for OpenBLAS (default: what OpenBLAS chooses).") var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1, got \(threads)") }
        if output?.isEmpty == true { throw ValidationError("--output is empty; name a directory") }
    }

    func run() throws {
        if let threads { openblas_set_num_threads(Int32(threads)) }
        let sets = overrides + (output.map { ["output=\($0)"] } ?? [])
        try runOnEveryRank("graft continual") { communicator in
            let run = try communicator.agree { try ContinualRun(try Recipe.load(path: recipe, overrides: sets), communicator: communicator) }
            run.progress = TextProgress()
            try run.run(overwrite: overwrite)
        }
    }
}
