import GraftCore

/// Model-agnostic meta-learning (Finn et al., 2017), second order or first order.
///
/// Adaptation takes `innerSteps` gradient steps on the support loss, φ ← φ − α ∇φ L_support(φ) from φ = θ; the
/// meta-gradient is ∇θ L_query(φ). Second order, every inner gradient is recorded (`createGraph`), so the
/// meta-gradient carries the product of the (I − α H) factors of the support-loss Hessians along the path. First
/// order (`firstOrder`), the inner gradients are constants and the meta-gradient is ∇φ L_query(φ) itself.
///
/// Memory: one task's graph (k recorded inner steps, each a forward and a recorded backward on the support set, and
/// the query forward) lives only inside `contribution`, which returns plain tensors, so a meta-batch costs one
/// task's graph at a time plus the summed gradients.
public struct MAML: MetaLearner {
    public var innerSteps: Int
    /// The inner learning rate α.
    public var innerRate: Float
    public var firstOrder: Bool

    public init(innerSteps: Int = 1, innerRate: Float = 0.01, firstOrder: Bool = false) {
        require(innerSteps >= 0, "MAML: inner steps \(innerSteps) must be ≥ 0")
        require(innerRate.isFinite && innerRate >= 0, "MAML: inner rate \(innerRate) must be finite and ≥ 0")
        (self.innerSteps, self.innerRate, self.firstOrder) = (innerSteps, innerRate, firstOrder)
    }

    /// The adapted parameters φ after `steps` (default `innerSteps`) steps on the support set from θ.
    ///
    /// With `createGraph`, φ is recorded as a function of θ, differentiable to any order; otherwise φ is a list of
    /// fresh leaves that require a gradient (θ itself after zero steps).
    public func adapt(_ model: any MetaModel, to task: MetaTask, steps: Int? = nil, createGraph: Bool = false) -> [Tensor] {
        let steps = steps ?? innerSteps
        require(steps >= 0, "MAML: adaptation steps \(steps) must be ≥ 0")
        let theta = trainableParameters(model, op: "MAML")
        guard createGraph else {
            return gradientSteps(model, from: theta, inputs: task.supportInputs, targets: task.supportTargets,
                                 steps: steps, rate: innerRate).parameters
        }
        return withGrad {
            var phi = theta
            for _ in 0..<steps {
                let loss = task.supportTargets.loss(model(task.supportInputs, parameters: phi))
                let g = grad(of: loss, wrt: phi, createGraph: true)
                phi = zip(phi, g).map { $0 - $1 * innerRate }
            }
            return phi
        }
    }

    /// The query loss after adaptation and its meta-gradient ∇θ L_query(φ) (second order) or ∇φ L_query(φ) (first
    /// order), as plain tensors.
    public func contribution(_ model: any MetaModel, task: MetaTask) -> TaskResult {
        withGrad {
            let theta = model.parameterTensors
            let phi = adapt(model, to: task, createGraph: !firstOrder)
            let output = model(task.queryInputs, parameters: phi)
            let loss = task.queryTargets.loss(output)
            // First order, φ are leaves cut from θ (or θ itself after zero steps): d φ / d θ is taken as I.
            let g = grad(of: loss, wrt: firstOrder ? phi : theta)
            return TaskResult(loss: loss.item, accuracy: task.queryTargets.accuracy(output), kind: .gradient, contribution: g)
        }
    }

    /// The query loss and accuracy after `innerSteps` steps on the support set.
    public func evaluate(_ model: any MetaModel, task: MetaTask) -> TaskEvaluation {
        evaluate(model, task: task, steps: innerSteps)
    }

    /// The query loss and accuracy after `steps` steps on the support set (0: the loss at θ, before adaptation;
    /// meta-testing often takes more steps than meta-training).
    public func evaluate(_ model: any MetaModel, task: MetaTask, steps: Int) -> TaskEvaluation {
        let phi = adapt(model, to: task, steps: steps)
        return queryEvaluation(model, parameters: phi, task: task)
    }
}

/// The model's meta-parameters, all of which must require a gradient (they are the inputs of `grad`).
func trainableParameters(_ model: any MetaModel, op: String) -> [Tensor] {
    let named = model.parameters
    for (name, p) in named where !p.requiresGrad {
        fatalError("\(op): meta-parameter '\(name)' does not require a gradient")
    }
    return named.map(\.1)
}

/// `steps` plain gradient steps of rate `rate` on the loss of (inputs, targets), from `start` (tensors that require
/// a gradient), with no graph kept from one step to the next. Returns φ, fresh leaves that require a gradient
/// (`start` itself after zero steps), and the loss at `start` (nil after zero steps).
func gradientSteps(_ model: any MetaModel, from start: [Tensor], inputs: Tensor, targets: TaskTargets, steps: Int,
                   rate: Float) -> (parameters: [Tensor], firstLoss: Float?) {
    withGrad {
        var phi = start, first: Float?
        for step in 0..<steps {
            let loss = targets.loss(model(inputs, parameters: phi))
            if step == 0 { first = loss.item }
            let g = grad(of: loss, wrt: phi)
            phi = withNoGrad { zip(phi, g).map { $0 - $1 * rate } }
            for p in phi { p.requiresGrad = true }
        }
        return (phi, first)
    }
}

/// The query loss and accuracy of the model run on `parameters`, recording nothing.
func queryEvaluation(_ model: any MetaModel, parameters: [Tensor], task: MetaTask) -> TaskEvaluation {
    withNoGrad {
        let output = model(task.queryInputs, parameters: parameters)
        return TaskEvaluation(loss: task.queryTargets.loss(output).item, accuracy: task.queryTargets.accuracy(output))
    }
}
