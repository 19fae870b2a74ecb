import GraftCore

/// The heads of a multi-task model: one shared body, and per task a linear head whose outputs are a block of columns
/// of the model's last layer. A Linear layer with Σ Kₜ outputs is exactly T independent Linear heads side by side
/// (no weight is shared between the blocks, and a task's loss reaches only its own block's rows of the weight), so
/// the model stays one classifier: strategies, checkpoints and cached features treat the heads as its head.
///
/// Every task's labels are a function of the data's main label (`labelOf`): the main task is the identity, derived
/// tasks (parity, digit ≥ 5, coarse groups) map each main class to one of theirs.
public struct TaskLayout: Sendable, Equatable {
    public struct Task: Sendable, Equatable {
        public let name: String
        public let classNames: [String]
        /// This task's class of each class of the main label.
        public let labelOf: [Int]
        /// The task's logits: these columns of the model's output.
        public let columns: Range<Int>
    }

    public let tasks: [Task]

    /// Tasks in order, their columns laid out one after the other.
    public init(_ specs: [(name: String, classNames: [String], labelOf: [Int])]) {
        require(!specs.isEmpty, "TaskLayout: no tasks")
        require(Set(specs.map(\.name)).count == specs.count, "TaskLayout: task names \(specs.map(\.name)) repeat")
        let mainClasses = specs[0].labelOf.count
        var start = 0
        tasks = specs.map { spec in
            require(spec.labelOf.count == mainClasses && spec.labelOf.allSatisfy { $0 >= 0 && $0 < spec.classNames.count },
                    "TaskLayout: task '\(spec.name)' maps \(spec.labelOf) into \(spec.classNames.count) classes")
            defer { start += spec.classNames.count }
            return Task(name: spec.name, classNames: spec.classNames, labelOf: spec.labelOf,
                        columns: start..<(start + spec.classNames.count))
        }
    }

    /// Outputs of the model's last layer: every task's classes.
    public var width: Int { tasks.last!.columns.upperBound }

    /// Task `k`'s logits [N, Kₖ] from the model's output [N, width].
    public func logits(_ output: Tensor, task k: Int) -> Tensor {
        require(output.rank == 2 && output.shape[1] == width, "TaskLayout: output \(output.shape) for \(width) task columns")
        return output.slice(axis: 1, tasks[k].columns)
    }

    /// Task `k`'s labels of rows whose main labels are `main`.
    public func labels(_ main: [Int], task k: Int) -> [Int] { main.map { tasks[k].labelOf[$0] } }

    /// Each task's loss (a mean over the rows, by `loss`) of the model's output for rows with main labels `main`.
    public func losses(_ output: Tensor, labels main: [Int],
                       loss: (Tensor, [Int]) -> Tensor = { Tensor.crossEntropy($0, targets: $1) }) -> [Tensor] {
        tasks.indices.map { loss(logits(output, task: $0), labels(main, task: $0)) }
    }
}

extension Loss {
    /// Σₖ wₖ·Lₖ of scalar task losses.
    public static func weightedSum(_ losses: [Tensor], weights: [Float]) -> Tensor {
        require(!losses.isEmpty && losses.count == weights.count, "weightedSum: \(losses.count) losses, \(weights.count) weights")
        return (Tensor.stack(losses.map { $0.reshaped([]) }) * Tensor(weights, shape: [weights.count])).sum()
    }

    /// Uncertainty weighting (Kendall, Gal & Cipolla, 2018) of scalar task losses Lₖ with learned log-variances
    /// sₖ = log σₖ²: Σₖ exp(−sₖ)·Lₖ + sₖ.
    ///
    /// For a softmax classifier whose logits are scaled by 1/σ², the paper's approximation gives (1/σ²)·L + log σ,
    /// i.e. exp(−s)·L + s/2. We use the regulariser s (not s/2), the form of their regression loss with the common
    /// factor ½ dropped and the one most implementations train: at its minimum over sₖ, exp(−sₖ) = 1/Lₖ, so each
    /// task is weighted by the inverse of its current loss, and sₖ → ∞ (ignoring a task) costs without bound. With s/2
    /// the minimum is at exp(−sₖ) = 1/(2Lₖ): every weight halves, the relative weighting is the same.
    public static func uncertaintyWeighted(_ losses: [Tensor], logVariances s: Tensor) -> Tensor {
        require(!losses.isEmpty && s.shape == [losses.count],
                "uncertaintyWeighted: \(losses.count) losses, log-variances \(s.shape)")
        let l = Tensor.stack(losses.map { $0.reshaped([]) })
        return ((-s).exp() * l + s).sum()
    }
}

/// The learned log-variances sₖ of uncertainty weighting, one per task, 0 (weight 1) to start: trained beside the
/// model as a parameter group of their own, state-dict key `log_variance`.
public final class TaskLogVariances: Module {
    public let logVariance: Tensor

    public init(tasks: Int) {
        require(tasks > 0, "TaskLogVariances: \(tasks) tasks")
        logVariance = Tensor.zeros([tasks], requiresGrad: true)
    }

    override public var parameters: [(String, Tensor)] { [("log_variance", logVariance)] }
}
