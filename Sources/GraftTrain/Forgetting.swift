import GraftCore
import GraftData
import GraftDistributed
import GraftNN

/// A penalty on parameter values added to every training step's loss (L2-SP, EWC). Its gradient is known in closed
/// form, and the trainer adds it once to the gradient already summed over ranks, on every rank alike: the data term
/// is split over ranks, the penalty is not, so N ranks train as one.
public protocol ParameterPenalty: AnyObject {
    /// The penalty at the parameters' current values.
    func value() -> Double
    /// Adds the penalty's gradient to the gradient of each of `parameters` it covers (a missing gradient counts as
    /// zeros); parameters it does not cover, and covered ones not passed (frozen), are left alone.
    func addGradient(to parameters: [Tensor])
}

/// A sum of weighted squared distances of parameters from anchors,
/// Ω = Σ_terms ½ Σ_i c_i (θ_i − a_i)²,
/// with c a strength per term (L2-SP) or per element (EWC's λ·F), and a an anchor per term (or 0). Its gradient is
/// c_i (θ_i − a_i) summed over the terms of θ.
public final class QuadraticPenalty: ParameterPenalty {
    /// One parameter pulled towards an anchor (nil: towards 0) with a strength, one for all elements or one each.
    public struct Term {
        public let parameter: Tensor
        public let anchor: [Float]?
        public let strength: Float
        public let elementStrengths: [Float]?

        public init(parameter: Tensor, anchor: [Float]?, strength: Float, elementStrengths: [Float]? = nil) {
            require(anchor.map { $0.count == parameter.count } ?? true, "QuadraticPenalty: anchor size differs from the parameter's")
            require(elementStrengths.map { $0.count == parameter.count } ?? true,
                    "QuadraticPenalty: element strengths differ in size from the parameter")
            (self.parameter, self.anchor, self.strength, self.elementStrengths) = (parameter, anchor, strength, elementStrengths)
        }

        /// c_i: the term's strength times the element's, if any.
        @inline(__always) func weight(_ i: Int) -> Float { strength * (elementStrengths?[i] ?? 1) }
    }

    /// The penalty's terms; a parameter may have several (EWC's one per earlier task).
    public private(set) var terms: [Term]

    public init(terms: [Term] = []) { self.terms = terms }

    /// Adds terms (EWC: the penalty of one more finished task).
    public func append(_ more: [Term]) { terms += more }

    /// Replaces every term (L2-SP in a sequence of tasks: a new anchor after each).
    public func replace(with new: [Term]) { terms = new }

    public func value() -> Double {
        var total = 0.0
        for term in terms {
            let p = term.parameter.pointer
            for i in 0..<term.parameter.count {
                let d = Double(p[i] - (term.anchor?[i] ?? 0))
                total += 0.5 * Double(term.weight(i)) * d * d
            }
        }
        return total
    }

    public func addGradient(to parameters: [Tensor]) {
        let passed = Set(parameters.map(ObjectIdentifier.init))
        // Each parameter's terms add into one fresh gradient: a gradient may share storage with others.
        var sums: [ObjectIdentifier: [Float]] = [:]
        for term in terms where passed.contains(ObjectIdentifier(term.parameter)) {
            let t = term.parameter, id = ObjectIdentifier(t)
            var g = sums[id] ?? t.grad.map(\.scalars) ?? [Float](repeating: 0, count: t.count)
            let p = t.pointer
            for i in 0..<t.count { g[i] += term.weight(i) * (p[i] - (term.anchor?[i] ?? 0)) }
            sums[id] = g
        }
        for t in parameters {
            if let g = sums[ObjectIdentifier(t)] { t.grad = Tensor(g, shape: t.shape) }
        }
    }

    /// L2-SP (Li, Grandvalet & Davoine 2018): Ω = α/2·‖w_body − w⁰_body‖² + β/2·‖w_head‖², the body pulled
    /// towards its starting point w⁰ (the values the parameters have now, copied) and the new head decayed towards 0.
    public static func l2sp(body: [Tensor], head: [Tensor], alpha: Float, beta: Float) -> QuadraticPenalty {
        QuadraticPenalty(terms: body.map { Term(parameter: $0, anchor: $0.scalars, strength: alpha) }
                             + head.map { Term(parameter: $0, anchor: nil, strength: beta) })
    }

    /// EWC's penalty for one earlier task (Kirkpatrick et al. 2017): λ/2·Σ_i F_i (θ_i − θ*_i)², with θ* the values
    /// the parameters have now (the task's final weights) and `fisher` the diagonal Fisher, one array per parameter.
    public static func ewcTerms(parameters: [Tensor], fisher: [[Float]], lambda: Float) -> [Term] {
        require(parameters.count == fisher.count, "EWC: \(fisher.count) Fisher diagonals for \(parameters.count) parameters")
        return zip(parameters, fisher).map { Term(parameter: $0, anchor: $0.scalars, strength: lambda, elementStrengths: $1) }
    }
}

/// The diagonal of the empirical Fisher information of `parameters` on `inputs` with their true labels:
/// F_i = (1/N) Σ_n (∂ log p(y_n | x_n) / ∂θ_i)², one squared gradient per row (of cross-entropy on that row alone),
/// averaged over the N rows. The model is evaluated in eval mode (no dropout). Row n is taken by rank n mod ranks, and
/// the sums are added over ranks in Double, so every rank gets the same Fisher, which does not depend on how many
/// ranks there are beyond rounding.
public func empiricalFisherDiagonal(model: Module, forward: (Tensor) -> Tensor, parameters: [Tensor], inputs: Tensor,
                                    labels: [Int], communicator: any Communicator = LocalCommunicator()) throws -> [[Float]] {
    require(inputs.shape.first == labels.count, "empiricalFisherDiagonal: \(labels.count) labels for inputs of \(inputs.shape)")
    let wasTraining = model.isTraining
    model.eval()
    defer { model.train(wasTraining) }
    let sizes = parameters.map(\.count)
    let offsets = sizes.reduce(into: [0]) { $0.append($0.last! + $1) }
    var sums = [Double](repeating: 0, count: offsets.last!)
    let recording = parameters.map(\.requiresGrad)
    for p in parameters { p.requiresGrad = true }
    defer { for (p, r) in zip(parameters, recording) { p.requiresGrad = r } }
    for n in stride(from: communicator.rank, to: labels.count, by: communicator.size) {
        let x = inputs.indexSelect(axis: 0, Indices([n], shape: [1]))
        let loss = Tensor.crossEntropy(forward(x), targets: [labels[n]])
        for (k, g) in grad(of: loss, wrt: parameters).enumerated() {
            let q = g.pointer
            for i in 0..<g.count { sums[offsets[k] + i] += Double(q[i]) * Double(q[i]) }
        }
    }
    try communicator.allReduce(&sums)
    let rows = Double(max(1, labels.count))
    return parameters.indices.map { k in (offsets[k]..<offsets[k + 1]).map { Float(sums[$0] / rows) } }
}
