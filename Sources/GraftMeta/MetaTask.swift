import GraftCore
import GraftNN

/// What a task's rows are trained to predict, which also fixes the loss: class labels (cross-entropy, and accuracy
/// reported) or real values (mean squared error).
public enum TaskTargets {
    /// Class labels 0..<N, one per row; the model outputs logits [rows, N].
    case classes([Int])
    /// Target values shaped as the model's output, rows along axis 0.
    case values(Tensor)

    /// The number of rows.
    public var count: Int {
        switch self {
        case let .classes(labels): labels.count
        case let .values(t): t.shape.first ?? 0
        }
    }

    /// The task loss of `output`: mean cross-entropy for classes, mean squared error for values.
    public func loss(_ output: Tensor) -> Tensor {
        switch self {
        case let .classes(labels): Tensor.crossEntropy(output, targets: labels)
        case let .values(t): Loss.meanSquaredError(output, t)
        }
    }

    /// The fraction of rows whose largest logit is the label, or nil for value targets.
    public func accuracy(_ output: Tensor) -> Float? {
        guard case let .classes(labels) = self else { return nil }
        require(output.rank == 2 && output.shape[0] == labels.count,
                "accuracy: logits \(output.shape) do not fit \(labels.count) labels")
        guard !labels.isEmpty else { return nil }
        let predicted = output.argmax(axis: 1).values
        return Float(zip(predicted, labels).filter { $0 == $1 }.count) / Float(labels.count)
    }

    /// These targets followed by `other`'s (same kind).
    public func appending(_ other: TaskTargets) -> TaskTargets {
        switch (self, other) {
        case let (.classes(a), .classes(b)): return .classes(a + b)
        case let (.values(a), .values(b)): return .values(withNoGrad { Tensor.concat([a, b], axis: 0) })
        default: fatalError("TaskTargets: cannot join class labels with values")
        }
    }
}

/// One task of an episode: a support set to adapt on and a query set to measure the adapted model on, each rows of
/// inputs (axis 0) with their targets.
public struct MetaTask {
    public let supportInputs: Tensor
    public let supportTargets: TaskTargets
    public let queryInputs: Tensor
    public let queryTargets: TaskTargets

    public init(supportInputs: Tensor, supportTargets: TaskTargets, queryInputs: Tensor, queryTargets: TaskTargets) {
        for (name, x, t) in [("support", supportInputs, supportTargets), ("query", queryInputs, queryTargets)] {
            require(x.rank >= 1 && x.shape[0] == t.count,
                    "MetaTask: \(name) inputs \(x.shape) do not have one row per target (\(t.count) targets)")
        }
        switch (supportTargets, queryTargets) {
        case (.classes, .classes), (.values, .values): break
        default: fatalError("MetaTask: support and query targets must be of the same kind")
        }
        (self.supportInputs, self.supportTargets) = (supportInputs, supportTargets)
        (self.queryInputs, self.queryTargets) = (queryInputs, queryTargets)
    }

    /// The support rows followed by the query rows, as one batch.
    public var allInputs: Tensor { withNoGrad { Tensor.concat([supportInputs, queryInputs], axis: 0) } }

    /// The support targets followed by the query targets.
    public var allTargets: TaskTargets { supportTargets.appending(queryTargets) }
}

/// The generator for task `index` of meta-step `metaStep` under `seed`: a function of the three numbers alone, so a
/// task is the same whatever was drawn before it, on whichever rank it is drawn, and after a resume.
func taskGenerator(seed: UInt64, metaStep: Int, index: Int, op: String) -> RandomGenerator {
    require(metaStep >= 0 && index >= 0, "\(op): meta-step \(metaStep) and task index \(index) must be ≥ 0")
    return RandomGenerator(seed: seed).split(UInt64(metaStep)).split(UInt64(index))
}

extension RandomGenerator {
    /// Uniform in 0..<n by a 128-bit multiply (bias below n / 2⁶⁴): spelled out here so that draws stay the same
    /// across Swift versions, unlike `Int.random(in:using:)`, whose algorithm the standard library may change.
    mutating func nextIndex(below n: Int) -> Int {
        Int(UInt64(n).multipliedFullWidth(by: next()).high)
    }

    /// The first `k` elements of a uniformly random permutation of `values` (a partial Fisher–Yates shuffle).
    mutating func choose<T>(_ k: Int, from values: [T]) -> [T] {
        var pool = values
        for i in 0..<k { pool.swapAt(i, i + nextIndex(below: pool.count - i)) }
        return Array(pool.prefix(k))
    }
}
