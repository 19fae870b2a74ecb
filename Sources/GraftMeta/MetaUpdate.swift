import GraftCore
import GraftNN
import GraftOptim

/// What a task's contribution to the meta-update is.
public enum ContributionKind: Sendable, Equatable {
    /// A gradient of the task's meta-loss with respect to θ (MAML, first-order MAML, prototypical networks): the
    /// outer step hands the mean to an optimizer.
    case gradient
    /// The change φ − θ that adaptation made (Reptile): the outer step moves θ a fraction of the mean towards φ.
    case delta
}

/// One task's part in a meta-step: its loss and what it contributes to the meta-update, one plain tensor (no graph)
/// per meta-parameter, in the model's parameter order.
public struct TaskResult {
    /// The loss the contribution comes from: the query loss after adaptation for MAML, the query loss for
    /// prototypical networks, and the task loss at θ (before the first step) for Reptile.
    public let loss: Float
    /// The accuracy that goes with `loss`, for class targets.
    public let accuracy: Float?
    public let kind: ContributionKind
    public let contribution: [Tensor]

    public init(loss: Float, accuracy: Float?, kind: ContributionKind, contribution: [Tensor]) {
        (self.loss, self.accuracy, self.kind, self.contribution) = (loss, accuracy, kind, contribution)
    }
}

/// A meta-tested task's query loss and, for class targets, accuracy.
public struct TaskEvaluation: Equatable, Sendable {
    public let loss: Float
    public let accuracy: Float?

    public init(loss: Float, accuracy: Float?) { (self.loss, self.accuracy) = (loss, accuracy) }
}

/// A meta-learning algorithm, seen from the meta-training loop: what one task contributes to the meta-update, and
/// how a meta-tested task scores after adapting to its support set.
public protocol MetaLearner {
    /// The task's loss and contribution at the model's current θ. Every tensor the task built is released on
    /// return; θ is not changed.
    func contribution(_ model: any MetaModel, task: MetaTask) -> TaskResult
    /// The query loss (and accuracy) after adapting to the support set, θ unchanged.
    func evaluate(_ model: any MetaModel, task: MetaTask) -> TaskEvaluation
}

/// The sum of task contributions towards one meta-update, with the number of tasks and their summed loss and
/// accuracy: what each rank accumulates over its tasks, what ranks sum (`packed`, all-reduce, `unpack`), and what
/// the outer step averages.
///
/// Sums are kept in Double, so the order in which tasks arrive changes the result only by Double rounding.
public struct MetaUpdate {
    public let kind: ContributionKind
    public let shapes: [[Int]]
    /// The summed contributions, one flat array per meta-parameter.
    public private(set) var sums: [[Double]]
    public private(set) var tasks: Int = 0
    public private(set) var lossSum: Double = 0
    /// The summed accuracies, and how many tasks reported one.
    public private(set) var accuracySum: Double = 0
    public private(set) var accuracyTasks: Int = 0

    /// An empty sum for a model's meta-parameters.
    public init(_ model: any MetaModel, kind: ContributionKind) {
        self.init(shapes: model.parameters.map(\.1.shape), kind: kind)
    }

    public init(shapes: [[Int]], kind: ContributionKind) {
        (self.shapes, self.kind) = (shapes, kind)
        sums = shapes.map { [Double](repeating: 0, count: $0.product) }
    }

    /// Adds one task's result.
    public mutating func add(_ result: TaskResult) {
        require(result.kind == kind, "MetaUpdate: a \(result.kind) contribution added to a sum of \(kind) contributions")
        require(result.contribution.map(\.shape) == shapes,
                "MetaUpdate: contribution shapes \(result.contribution.map(\.shape)) differ from \(shapes)")
        for (i, t) in result.contribution.enumerated() {
            let p = t.pointer
            sums[i].withUnsafeMutableBufferPointer { s in for j in 0..<s.count { s[j] += Double(p[j]) } }
        }
        tasks += 1
        lossSum += Double(result.loss)
        if let a = result.accuracy { accuracySum += Double(a); accuracyTasks += 1 }
    }

    /// The mean contribution per task, one tensor per meta-parameter.
    public var mean: [Tensor] {
        require(tasks > 0, "MetaUpdate: no tasks to average")
        return zip(sums, shapes).map { s, shape in Tensor(s.map { Float($0 / Double(tasks)) }, shape: shape) }
    }

    public var meanLoss: Float { tasks > 0 ? Float(lossSum / Double(tasks)) : .nan }
    public var meanAccuracy: Float? { accuracyTasks > 0 ? Float(accuracySum / Double(accuracyTasks)) : nil }

    /// Everything summed, as one flat array: the sums in parameter order, then tasks, loss, accuracy and the count of
    /// tasks with an accuracy. Element-wise sums of the packed updates of several ranks, given to `unpack`, give the
    /// update over all their tasks.
    public var packed: [Double] {
        sums.flatMap { $0 } + [Double(tasks), lossSum, accuracySum, Double(accuracyTasks)]
    }

    /// Replaces this sum by the one `values` packs (the same layout as `packed`), e.g. after an all-reduce.
    public mutating func unpack(_ values: [Double]) {
        let total = shapes.map(\.product).reduce(0, +)
        require(values.count == total + 4, "MetaUpdate: \(values.count) packed values, expected \(total + 4)")
        var start = 0
        for i in sums.indices {
            sums[i] = Array(values[start..<(start + sums[i].count)])
            start += sums[i].count
        }
        let counts = values[total...].map { $0 }
        require(counts[0] >= 0 && counts[0] == counts[0].rounded() && counts[3] >= 0 && counts[3] == counts[3].rounded(),
                "MetaUpdate: packed task counts \(counts[0]) and \(counts[3]) are not whole numbers ≥ 0")
        (tasks, lossSum, accuracySum, accuracyTasks) = (Int(counts[0]), counts[1], counts[2], Int(counts[3]))
    }
}

/// The outer loop's update of θ from a meta-step's `MetaUpdate`.
public final class OuterStep {
    /// The meta-parameters, as the model lists them.
    public let parameters: [(String, Tensor)]
    public let optimizer: any Optimizer

    /// Steps `optimizer`, whose groups hold the model's meta-parameters, with the mean meta-gradient.
    public init(_ model: any MetaModel, optimizer: any Optimizer) {
        parameters = model.parameters
        self.optimizer = optimizer
        let held = Set(optimizer.groups.flatMap(\.parameters).map { ObjectIdentifier($0.1) })
        for (name, p) in parameters where !held.contains(ObjectIdentifier(p)) {
            fatalError("OuterStep: meta-parameter '\(name)' is in none of the optimizer's groups")
        }
    }

    /// Adam over the meta-parameters, the MAML paper's outer optimizer (β = (0.9, 0.999), ε = 1e-8): one group, or
    /// with `body` > 0 a group `body` of the first `body` tensors at `learningRate × bodyScale` (a pretrained body's
    /// discriminative rate) and a group `meta` of the rest.
    public static func adam(_ model: any MetaModel, learningRate: Float, body: Int = 0, bodyScale: Float = 1) throws -> OuterStep {
        let all = model.parameters
        require(body >= 0 && body < all.count, "OuterStep: \(body) body tensors of \(all.count) meta-parameters")
        var groups = [ParameterGroup(name: "meta", parameters: Array(all[body...]), options: GroupOptions(learningRate: learningRate))]
        if body > 0 {
            groups.insert(ParameterGroup(name: "body", parameters: Array(all[..<body]),
                                         options: GroupOptions(learningRate: learningRate * bodyScale)), at: 0)
        }
        return OuterStep(model, optimizer: try Adam(groups: groups))
    }

    /// Sets each meta-parameter's gradient to the mean of the summed meta-gradients, steps the optimizer, and clears
    /// the gradients again.
    public func apply(_ update: MetaUpdate) {
        require(update.kind == .gradient, "OuterStep: apply takes meta-gradients; a Reptile update goes to reptile(_:…)")
        require(update.shapes == parameters.map(\.1.shape),
                "OuterStep: update shapes \(update.shapes) differ from the meta-parameters' \(parameters.map(\.1.shape))")
        for ((_, p), g) in zip(parameters, update.mean) { p.grad = g }
        optimizer.step()
        for (_, p) in parameters { p.grad = nil }
    }

    /// Reptile's outer update θ ← θ + ε · mean(φ − θ), in place: with one task per update it is serial Reptile, with
    /// several the batched version.
    /// With `body` > 0 the first `body` tensors move by `epsilon × bodyScale` instead.
    public static func reptile(_ model: any MetaModel, _ update: MetaUpdate, stepSize epsilon: Float, body: Int = 0,
                               bodyScale: Float = 1) {
        require(update.kind == .delta, "OuterStep: reptile takes adaptation deltas, not meta-gradients")
        require(epsilon.isFinite && epsilon >= 0, "OuterStep: Reptile step size \(epsilon) must be finite and ≥ 0")
        let parameters = model.parameterTensors
        require(update.shapes == parameters.map(\.shape),
                "OuterStep: update shapes \(update.shapes) differ from the meta-parameters' \(parameters.map(\.shape))")
        require(update.tasks > 0, "OuterStep: a Reptile update needs at least one task")
        // The one sanctioned in-place write: an update of leaf parameters between steps.
        for (i, (p, s)) in zip(parameters, update.sums).enumerated() {
            let scale = Double(epsilon) * Double(i < body ? bodyScale : 1) / Double(update.tasks)
            let x = p.pointer
            for j in 0..<p.count { x[j] = Float(Double(x[j]) + scale * s[j]) }
        }
    }
}
