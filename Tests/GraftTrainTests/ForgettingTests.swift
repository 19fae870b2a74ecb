import Foundation
import Testing
import GraftCore
import GraftData
import GraftDistributed
import GraftNN
import GraftOptim
@testable import GraftTrain

/// L2-SP and EWC penalties: gradients against central differences of their values, the empirical Fisher and EWC's
/// penalty against PyTorch (Fixtures/ewc.json, made by Fixtures/make_ewc_fixtures.py), and the trainer adding the
/// penalty's gradient once per step to trainable parameters only.
@Suite struct ForgettingTests {
    /// Central differences of `penalty.value()` in each element of `parameters`, against `addGradient`.
    func expectGradientMatchesDifferences(_ penalty: QuadraticPenalty, _ parameters: [Tensor],
                                          sourceLocation: SourceLocation = #_sourceLocation) {
        for p in parameters { p.grad = nil }
        penalty.addGradient(to: parameters)
        let eps: Float = 1e-2
        for (k, p) in parameters.enumerated() {
            let analytic = p.grad?.scalars ?? []
            #expect(analytic.count == p.count, sourceLocation: sourceLocation)
            for i in 0..<p.count {
                let saved = p.pointer[i]
                p.pointer[i] = saved + eps
                let up = penalty.value()
                p.pointer[i] = saved - eps
                let down = penalty.value()
                p.pointer[i] = saved
                let numeric = (up - down) / Double(2 * eps)
                let a = Double(analytic[i])
                #expect(abs(a - numeric) <= 1e-3 * max(1, abs(numeric)),
                        "parameter \(k) element \(i): analytic \(a), numeric \(numeric)", sourceLocation: sourceLocation)
            }
        }
    }

    func tensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return Tensor.randomNormal(shape, using: &rng)
    }

    /// Moves every element of `t` by a seeded normal step, so the parameters leave their anchors.
    func shift(_ t: Tensor, seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        for i in 0..<t.count { t.pointer[i] += rng.nextNormal() }
    }

    @Test func l2spGradientMatchesFiniteDifferences() {
        let body = [tensor([3, 4], seed: 1), tensor([4], seed: 2)], head = [tensor([2, 3], seed: 3)]
        let penalty = QuadraticPenalty.l2sp(body: body, head: head, alpha: 0.7, beta: 0.3)
        // At the start only the head's decay counts: β/2·‖w_head‖².
        #expect(abs(penalty.value() - 0.15 * head[0].scalars.reduce(0.0) { $0 + Double($1 * $1) }) < 1e-5)
        for (i, t) in (body + head).enumerated() { shift(t, seed: 10 + UInt64(i)) }
        expectGradientMatchesDifferences(penalty, body + head)
        // The exact form: α(w − w⁰) for the body, β·w for the head.
        let anchor = tensor([4], seed: 2).scalars
        penalty.addGradient(to: [])
        body[1].grad = nil
        penalty.addGradient(to: [body[1]])
        let expected = zip(body[1].scalars, anchor).map { 0.7 * ($0 - $1) }
        #expect(zip(body[1].grad!.scalars, expected).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test func ewcGradientWithSeveralTasksMatchesFiniteDifferences() {
        let params = [tensor([2, 5], seed: 4), tensor([5], seed: 5)]
        let penalty = QuadraticPenalty()
        var rng = RandomGenerator(seed: 6)
        for task in 0..<3 {
            let fisher = params.map { p in (0..<p.count).map { _ in rng.nextUniform() } }
            penalty.append(QuadraticPenalty.ewcTerms(parameters: params, fisher: fisher, lambda: 2.5))
            for (i, p) in params.enumerated() { shift(p, seed: 20 + UInt64(3 * task + i)) }
        }
        #expect(penalty.terms.count == 6 && penalty.value() > 0)
        expectGradientMatchesDifferences(penalty, params)
    }

    @Test func gradientAddsToTheDataGradientAndSkipsParametersNotPassed() {
        let a = tensor([3], seed: 7), frozen = tensor([3], seed: 8)
        let penalty = QuadraticPenalty.l2sp(body: [a, frozen], head: [], alpha: 2, beta: 0)
        shift(a, seed: 9)
        shift(frozen, seed: 10)
        a.grad = Tensor([1, 1, 1], shape: [3])
        frozen.grad = nil
        let before = a.scalars
        penalty.addGradient(to: [a])
        #expect(frozen.grad == nil)
        let anchor = tensor([3], seed: 7).scalars
        for i in 0..<3 { #expect(abs(a.grad!.scalars[i] - (1 + 2 * (before[i] - anchor[i]))) < 1e-5) }
    }

    /// The fixture's 4-5-3 MLP with PyTorch's weights, its rows and labels, and the JSON.
    func fixture() throws -> (MLP, Tensor, [Int], [String: Any]) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/ewc.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        var rng = RandomGenerator(seed: 0)
        let model = MLP(sizes: [4, 5, 3], using: &rng)
        let parameters = json["parameters"] as! [String: [String: Any]]
        for (name, t) in model.namedParameters() {
            let values = (parameters[name]!["values"] as! [Double]).map(Float.init)
            #expect(values.count == t.count, "\(name)")
            for i in 0..<t.count { t.pointer[i] = values[i] }
        }
        let inputs = Tensor((json["inputs"] as! [Double]).map(Float.init), shape: [7, 4])
        return (model, inputs, json["labels"] as! [Int], json)
    }

    @Test func empiricalFisherMatchesPyTorch() throws {
        let (model, inputs, labels, json) = try fixture()
        let named = model.namedParameters()
        let fisher = try empiricalFisherDiagonal(model: model, forward: { model($0) }, parameters: named.map(\.1),
                                                 inputs: inputs, labels: labels)
        let expected = json["fisher"] as! [String: [Double]]
        for ((name, _), values) in zip(named, fisher) {
            let reference = expected[name]!
            #expect(values.count == reference.count, "\(name)")
            for (v, r) in zip(values, reference) {
                #expect(abs(Double(v) - r) <= 1e-5 + 1e-4 * abs(r), "\(name): Graft \(v), PyTorch \(r)")
            }
        }
        #expect(fisher.flatMap { $0 }.contains { $0 > 1e-3 })
    }

    @Test func ewcPenaltyMatchesPyTorch() throws {
        let (model, inputs, labels, json) = try fixture()
        let named = model.namedParameters()
        let fisher = try empiricalFisherDiagonal(model: model, forward: { model($0) }, parameters: named.map(\.1),
                                                 inputs: inputs, labels: labels)
        let ewc = json["ewc"] as! [String: Any]
        let penalty = QuadraticPenalty(terms: QuadraticPenalty.ewcTerms(parameters: named.map(\.1), fisher: fisher,
                                                                        lambda: Float(ewc["lambda"] as! Double)))
        let shifts = ewc["shift"] as! [String: [Double]]
        for (name, t) in named { for i in 0..<t.count { t.pointer[i] += Float(shifts[name]![i]) } }
        let value = ewc["value"] as! Double
        #expect(abs(penalty.value() - value) <= 1e-4 * max(1, abs(value)), "Graft \(penalty.value()), PyTorch \(value)")
        penalty.addGradient(to: named.map(\.1))
        let gradients = ewc["gradient"] as! [String: [Double]]
        for (name, t) in named {
            for (g, r) in zip(t.grad!.scalars, gradients[name]!) {
                #expect(abs(Double(g) - r) <= 1e-5 + 1e-4 * abs(r), "\(name): Graft \(g), PyTorch \(r)")
            }
        }
    }

    /// One SGD step with the penalty is the step on the data gradient plus α(w − w⁰), once: not once per row or
    /// micro-batch. A frozen block's weights stay put.
    @Test func trainerAddsThePenaltyOncePerStep() throws {
        var rng = RandomGenerator(seed: 3)
        let model = MLP(sizes: [3, 4, 2], using: &rng)
        let inputs = Tensor.randomNormal([6, 3], using: &rng), labels = [0, 1, 1, 0, 1, 0]
        let named = model.namedParameters().map(\.1)
        let start = named.map(\.scalars)
        // Move the weights off the anchor so the penalty's gradient is not zero.
        let anchorShift: Float = 0.25
        let penalty = QuadraticPenalty.l2sp(body: Array(named.prefix(2)), head: Array(named.suffix(2)), alpha: 0.5, beta: 0.2)
        for t in named.prefix(2) { for i in 0..<t.count { t.pointer[i] -= anchorShift } }
        let shifted = named.map(\.scalars)
        let recomputed = grad(of: Tensor.crossEntropy(model(inputs), targets: labels), wrt: named)
        var configuration = Trainer.Configuration(epochs: 1)
        configuration.accumulationSteps = 3
        let lr: Float = 0.1
        let group = ParameterGroup(name: "all", parameters: model.namedParameters(), options: GroupOptions(learningRate: lr))
        let trainer = Trainer(model: model, optimizer: try SGD(groups: [group]), configuration: configuration)
        trainer.penalty = penalty
        try trainer.fit(Batches(inputs: inputs, labels: labels, batchSize: 2, shuffle: false))
        for (k, t) in named.enumerated() {
            for i in 0..<t.count {
                let pull = k < 2 ? 0.5 * (shifted[k][i] - start[k][i]) : 0.2 * shifted[k][i]
                let expected = shifted[k][i] - lr * (recomputed[k].scalars[i] + pull)
                #expect(abs(t.scalars[i] - expected) < 1e-5, "parameter \(k) element \(i): \(t.scalars[i]) vs \(expected)")
            }
        }
    }
}
