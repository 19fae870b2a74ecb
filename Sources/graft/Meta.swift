import ArgumentParser
import Foundation
import GraftDistributed
import GraftRecipe
import GraftTrain

/// Meta-trains a model as a meta-learning recipe says.
struct MetaTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meta-train",
        abstract: "Meta-train (MAML, first-order MAML, Reptile, prototypical networks) as a recipe says.",
        discussion: """
            The recipe names the tasks (sinusoids, rendered glyphs, or a labelled CSV split by class), the algorithm \
            with its inner and outer loops, and the model; see recipes/*-maml.yaml. Under mpirun each rank takes a \
            share of every meta-batch and rank 0 applies the outer step; the result is that of one process.
            """)

    @Argument(help: "The meta-learning recipe.") var recipe: String
    @Option(name: .customLong("set"), help: "Override a recipe field: field.path=value (repeatable).") var overrides: [String] = []
    @Option(help: "Write the run here instead of the recipe's output.") var output: String?
    @Flag(help: "Write into an output directory that already holds a run.") var overwrite = false
    @Option(help: "Continue the run in this directory from its last/ checkpoint.") var resume: String?

    func validate() throws {
        if output?.isEmpty == true { throw ValidationError("--output is empty; name a directory") }
        if resume != nil && (output != nil || overwrite) {
            throw ValidationError("--resume continues a run where it is; it takes neither --output nor --overwrite")
        }
    }

    func run() throws {
        let sets = overrides + (output.map { ["output=\($0)"] } ?? [])
        try runOnEveryRank("graft meta-train") { communicator in
            let loaded = try communicator.agree { try MetaRecipe.load(path: recipe, overrides: sets) }
            let run = MetaRun(loaded, communicator: communicator)
            if communicator.isRoot { run.progress = TextProgress() }
            try StopSignals.stoppable { stopRequested in
                run.stopRequested = stopRequested
                try run.run(overwrite: overwrite, resume: resume)
            }
        }
    }
}

/// Meta-tests a meta-trained run on held-out tasks.
struct MetaTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meta-test",
        abstract: "Mean accuracy (or MSE) with a 95 % interval over held-out tasks of a meta-trained run.",
        discussion: """
            Loads RUN_DIR's best meta-parameters and adapts them to each of --episodes meta-test tasks (from classes \
            or scripts never seen in meta-training; new sinusoids), reporting the mean query accuracy (MSE for \
            regression) and 1.96·σ/√n after each number of --steps.
            """)

    @Argument(help: ArgumentHelp("A run directory written by graft meta-train.", valueName: "RUN_DIR")) var directory: String
    @Option(help: "Test tasks.") var episodes = 600
    @Option(help: "Adaptation steps to report, comma-separated (default: the recipe's test-inner-steps).") var steps: String?
    @Option(name: .customLong("set"), help: "Override a field of the run's recipe for testing, e.g. tasks.shots=5.") var overrides: [String] = []

    func validate() throws {
        if episodes < 2 { throw ValidationError("--episodes must be ≥ 2, got \(episodes)") }
        if let steps, steps.split(separator: ",").contains(where: { Int($0).map { $0 < 0 } ?? true }) {
            throw ValidationError("--steps must be whole numbers ≥ 0 separated by commas, got \(steps)")
        }
    }

    func run() throws {
        try runOnEveryRank("graft meta-test") { communicator in
            let test = try communicator.agree {
                try MetaTest(directory, overrides: overrides, progress: communicator.isRoot ? TextProgress() : nil)
            }
            let recipe = test.setup.recipe
            let counts = steps.map { $0.split(separator: ",").map { Int($0)! } } ?? [recipe.meta.testInnerSteps]
            let rows = try test.run(episodes: episodes, steps: counts, communicator: communicator)
            guard communicator.isRoot else { return }
            let t = recipe.tasks
            let what = test.setup.classification ? "\(t.ways)-way \(t.shots)-shot accuracy" : "\(t.shots)-shot MSE"
            print("\(directory): \(recipe.meta.algorithm.rawValue), meta-step \(test.state.metaStep), \(episodes) test tasks")
            for (count, score) in rows {
                let after = recipe.meta.algorithm == .protonet ? "" : " after \(count) step\(count == 1 ? "" : "s")"
                print("  \(what)\(after): \(test.setup.figure(score))")
            }
        }
    }
}
