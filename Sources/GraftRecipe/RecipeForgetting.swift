import GraftCore
import GraftNN
import GraftTrain

/// `regularization:` — L2-SP for ordinary fine-tuning: Ω = α/2·‖w_body − w⁰_body‖² + β/2·‖w_head‖², w⁰ the
/// pretrained weights as loaded (every rank loads the same), the new head decayed towards 0 (Li, Grandvalet & Davoine
/// 2018). Its gradient joins each step's summed gradient once, for unfrozen parameters only.
public struct RegularizationSpec {
    /// α: pull of the body towards its pretrained weights; β: decay of the head towards 0.
    public var body: Float, head: Float

    init(_ f: inout Fields, model: Recipe.ModelSpec, optimizer: Recipe.OptimizerSpec, hasAdapters: Bool) throws {
        guard try f.choice("method", ["l2-sp"]) != nil else { throw f.error("method", "is required (l2-sp)") }
        body = Float(try f.double("body") ?? 0)
        head = Float(try f.double("head") ?? 0)
        if !(body >= 0) || !body.isFinite { throw f.error("body", "must be a number ≥ 0, got \(body)") }
        if !(head >= 0) || !head.isFinite { throw f.error("head", "must be a number ≥ 0, got \(head)") }
        if body == 0 && head == 0 { throw f.error("body", "and head are both 0, so l2-sp would do nothing; give α (body) or β (head)") }
        if model.weights == nil || !model.pretrained {
            throw f.error("method", "l2-sp pulls the body towards its pretrained weights, but the model has none (model.weights)")
        }
        if hasAdapters { throw f.error("method", "l2-sp with adapters is not supported: the pretrained body is frozen") }
        if optimizer.options.weightDecay > 0 {
            throw f.error("method", "l2-sp replaces weight decay, which pulls every weight towards 0: set optimizer.weight-decay: 0"
                + (optimizer.kind == .adamw ? " (AdamW's default is 0.01)" : "") + ", got \(optimizer.options.weightDecay)")
        }
    }

    /// The penalty for `model`, its body anchored at the values it has now.
    func penalty(for model: any BlockClassifier) -> QuadraticPenalty {
        let blocks = model.blocks
        return .l2sp(body: blocks.dropLast().flatMap { $0.1.namedParameters().map(\.1) },
                     head: blocks.last!.1.namedParameters().map(\.1), alpha: body, beta: head)
    }
}

/// `continual:` — a sequence of tasks trained one after the other (`graft continual`), each evaluated after every
/// later one. Task 0 is the data as it is; task t > 0 the same rows with their features in a fixed random order
/// (permuted MNIST), drawn from `seed` and t.
public struct ContinualSpec {
    public enum Method: String, CaseIterable, Sendable { case naive, l2sp = "l2-sp", ewc }

    public var count: Int
    public var seed: UInt64
    public var method: Method
    /// L2-SP: α/2·‖θ − θ_{t−1}‖² over every parameter, θ_{t−1} the previous task's final weights.
    public var alpha: Float = 0
    /// EWC: λ/2·Σ_{s<t} Σ_i F_{s,i} (θ_i − θ*_{s,i})², one penalty per earlier task s.
    public var lambda: Float = 0

    init(_ f: inout Fields, recipe: Recipe) throws {
        _ = try f.choice("tasks", ["permuted"], default: "permuted")
        count = try f.int("count", min: 1) ?? 5
        seed = try f.int("seed", min: 0).map(UInt64.init) ?? recipe.seed
        guard let name = try f.choice("method", Method.allCases.map(\.rawValue)) else {
            throw f.error("method", "is required (\(Method.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        method = Method(rawValue: name)!
        switch method {
        case .naive: break
        case .l2sp:
            guard let a = try f.double("alpha") else { throw f.error("alpha", "is required for l2-sp") }
            guard a >= 0 && a.isFinite else { throw f.error("alpha", "must be a number ≥ 0, got \(a)") }
            alpha = Float(a)
        case .ewc:
            guard let l = try f.double("lambda") else { throw f.error("lambda", "is required for ewc") }
            guard l >= 0 && l.isFinite else { throw f.error("lambda", "must be a number ≥ 0, got \(l)") }
            lambda = Float(l)
        }
        let fields = f
        let refuse = { (problem: String) in fields.error("method", problem) }
        if recipe.strategy.name != .full { throw refuse("continual trains the whole model: strategy.name must be full") }
        if recipe.adaptation != nil || recipe.adapters != nil {
            throw refuse("continual does not combine with adaptation or adapters")
        }
        if recipe.tasks != nil { throw refuse("continual trains one head: remove tasks (multi-task heads)") }
        if recipe.distillation != nil || recipe.contrastive != nil {
            throw refuse("continual does not combine with \(recipe.distillation != nil ? "distillation" : "contrastive pre-training")")
        }
        if recipe.schedule != nil { throw refuse("continual keeps each task's learning rate fixed: remove schedule") }
        if recipe.training.patience != nil { throw refuse("continual trains every task for training.epochs: remove training.patience") }
        if recipe.data.format == .textFolder { throw refuse("permuted tasks need numeric features, not text") }
        if recipe.data.trainPipeline.isRandom { throw refuse("permuted tasks do not support random train transforms") }
        if recipe.data.test == 0 { throw refuse("each task is scored on its test rows: set data.test > 0") }
    }
}

extension Recipe {
    /// Reads `regularization:` and `continual:` (after the optimizer and the rest, which they are checked against).
    mutating func readForgetting(_ top: inout Fields) throws {
        if top.has("regularization") {
            var r = try top.section("regularization")
            regularization = try RegularizationSpec(&r, model: model, optimizer: optimizer, hasAdapters: adapters != nil)
            try r.finish()
            if contrastive != nil { throw r.error("method", "L2-SP anchors a fine-tuned classifier; contrastive pre-training has none") }
        } else {
            _ = top.node("regularization")
        }
        if top.has("continual") {
            var c = try top.section("continual")
            continual = try ContinualSpec(&c, recipe: self)
            if regularization != nil {
                throw RecipeError(file: file, line: top.line(of: "regularization"), field: "regularization",
                                  "does not combine with continual: choose the method with continual.method")
            }
            try c.finish()
        } else {
            _ = top.node("continual")
        }
    }
}
