import GraftCore

/// Reptile (Nichol, Achiam and Schulman, 2018): adapt to a task with `innerSteps` plain gradient steps of rate α,
/// then move θ towards the adapted φ, θ ← θ + ε · mean over tasks of (φ − θ) (`OuterStep.reptile`).
///
/// Each inner step is a full-batch step on the task's rows: support and query together (`includesQuery`, the task's
/// whole batch as in the paper's training tasks) or the support set alone. No graph is kept between steps, so a task
/// costs one step's graph at a time.
public struct Reptile: MetaLearner {
    public var innerSteps: Int
    /// The inner learning rate α.
    public var innerRate: Float
    /// Whether meta-training steps run on the support and query rows together, or on the support rows alone.
    public var includesQuery: Bool

    public init(innerSteps: Int = 5, innerRate: Float = 0.01, includesQuery: Bool = true) {
        require(innerSteps >= 1, "Reptile: inner steps \(innerSteps) must be ≥ 1")
        require(innerRate.isFinite && innerRate >= 0, "Reptile: inner rate \(innerRate) must be finite and ≥ 0")
        (self.innerSteps, self.innerRate, self.includesQuery) = (innerSteps, innerRate, includesQuery)
    }

    /// The adapted parameters φ after `steps` (default `innerSteps`) steps on the support set alone: meta-test
    /// adaptation, where the query rows are what is being predicted.
    public func adapt(_ model: any MetaModel, to task: MetaTask, steps: Int? = nil) -> [Tensor] {
        let steps = steps ?? innerSteps
        require(steps >= 0, "Reptile: adaptation steps \(steps) must be ≥ 0")
        return gradientSteps(model, from: trainableParameters(model, op: "Reptile"), inputs: task.supportInputs,
                             targets: task.supportTargets, steps: steps, rate: innerRate).parameters
    }

    /// The delta φ − θ after `innerSteps` steps on the task, and the task loss at θ (the first step's loss).
    public func contribution(_ model: any MetaModel, task: MetaTask) -> TaskResult {
        let theta = trainableParameters(model, op: "Reptile")
        let inputs = includesQuery ? task.allInputs : task.supportInputs
        let targets = includesQuery ? task.allTargets : task.supportTargets
        let (phi, loss) = gradientSteps(model, from: theta, inputs: inputs, targets: targets, steps: innerSteps, rate: innerRate)
        let delta = withNoGrad { zip(phi, theta).map { $0 - $1 } }
        return TaskResult(loss: loss!, accuracy: nil, kind: .delta, contribution: delta)
    }

    /// The query loss and accuracy after `innerSteps` steps on the support set.
    public func evaluate(_ model: any MetaModel, task: MetaTask) -> TaskEvaluation {
        evaluate(model, task: task, steps: innerSteps)
    }

    /// The query loss and accuracy after `steps` steps on the support set (0: at θ).
    public func evaluate(_ model: any MetaModel, task: MetaTask, steps: Int) -> TaskEvaluation {
        queryEvaluation(model, parameters: adapt(model, to: task, steps: steps), task: task)
    }
}
