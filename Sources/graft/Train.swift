import ArgumentParser
import CBLAS
import Foundation
import GraftDistributed
import GraftRecipe
import GraftTrain

/// Fine-tunes a model as a recipe file says (see `recipes/`).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a pretrained model as a recipe file says.",
        discussion: """
            The recipe (YAML) names the data, the model and its weights, the strategy, the optimizer, the schedule and \
            the training options; see recipes/ for examples. --set overrides one field, e.g. --set training.epochs=3. \
            Results go to the recipe's output directory: best/ and last/ checkpoints, metrics.jsonl, results.json. \
            Under mpirun or srun the run is data-parallel: training.batch-size is the global batch, rank 0 prints and writes.
            """)

    @Argument(help: "The recipe file.") var recipe: String
    @Option(name: .customLong("set"), help: "Override a recipe field: field.path=value (repeatable).") var overrides: [String] = []
    @Option(help: "Write the run here instead of the recipe's output.") var output: String?
    @Flag(help: "Write into an output directory that already holds a run.") var overwrite = false
    @Option(help: "Continue the run in this directory from its last/ checkpoint.") var resume: String?
    @Option(help: "Threads for OpenBLAS (default: what OpenBLAS chooses).") var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1, got \(threads)") }
        if output?.isEmpty == true { throw ValidationError("--output is empty; name a directory") }
        if resume != nil && (output != nil || overwrite) {
            throw ValidationError("--resume continues a run where it is; it takes neither --output nor --overwrite")
        }
    }

    func run() throws {
        if let threads { openblas_set_num_threads(Int32(threads)) }
        let sets = overrides + (output.map { ["output=\($0)"] } ?? [])
        try runOnEveryRank("graft train") { communicator in
            // Every rank reads the recipe; they agree on the outcome, so a bad one is reported once.
            let loaded = try communicator.agree { try Recipe.load(path: recipe, overrides: sets) }
            let run = RecipeRun(loaded, communicator: communicator)
            run.progress = TextProgress()
            try StopSignals.stoppable { stopRequested in
                run.stopRequested = stopRequested
                try run.run(overwrite: overwrite, resume: resume)
            }
        }
    }
}

/// Runs `body` with the communicator of how this process was started, and turns its failure into one message on
/// stderr and a non-zero exit on every rank.
///
/// An error every rank has alike (`CollectiveError`) is printed by rank 0; one the ranks agreed on (`AgreedFailure`) by
/// the rank that had it, rank 0 speaking for all when it failed too; `PeerFailure` ranks stay silent. Any other error came from this rank alone while the others may be waiting in a
/// collective, so after printing it the whole job is aborted rather than left to hang.
func runOnEveryRank(_ command: String, _ body: (any Communicator) throws -> Void) throws {
    let communicator: any Communicator
    do { communicator = try launchCommunicator() } catch {
        FileHandle.standardError.write(Data("\(command): error: \(error)\n".utf8))
        throw ExitCode.failure
    }
    let prefix = communicator.size > 1 && !communicator.isRoot ? "[rank \(communicator.rank)/\(communicator.size)] " : ""
    do {
        try body(communicator)
    } catch let code as ExitCode {
        throw code
    } catch is PeerFailure {
        throw ExitCode.failure
    } catch is CollectiveError where !communicator.isRoot {
        // Every rank has the same error; rank 0 reports it.
        throw ExitCode.failure
    } catch {
        // Recipe, data and weight errors name their file and field; the message is the whole report.
        FileHandle.standardError.write(Data("\(prefix)\(command): error: \(error)\n".utf8))
        if communicator.size > 1 && !(error is CollectiveError) && !(error is AgreedFailure) { communicator.abort(code: 1) }
        throw ExitCode.failure
    }
}
