import Foundation
import Testing
import GraftCore
import GraftMeta

/// Prototypes, distance logits and the ProtoNets meta-gradient.
@Suite struct PrototypicalNetworkTests {
    /// An identity embedding on points in the plane: class 0's support {(0,0), (2,0)} has prototype (1,0), class 1's
    /// {(0,2), (0,4)} has (0,3); query (1,1) is at squared distances 1 and 5, query (0,2) at 5 and 1.
    @Test func prototypesAndLogitsOnAHandExample() {
        var rng = RandomGenerator(seed: 1)
        let identity = MetaMLP(sizes: [2, 2], using: &rng)
        let (w, b) = (identity.parameterTensors[0], identity.parameterTensors[1])
        for (i, v) in [Float(1), 0, 0, 1].enumerated() { w.pointer[i] = v }
        for i in 0..<2 { b.pointer[i] = 0 }
        let support = Tensor([0, 0, 2, 0, 0, 2, 0, 4], shape: [4, 2]), query = Tensor([1, 1, 0, 2], shape: [2, 2])
        let task = MetaTask(supportInputs: support, supportTargets: .classes([0, 0, 1, 1]),
                            queryInputs: query, queryTargets: .classes([0, 1]))

        let prototypes = PrototypicalNetworks.prototypes(support, labels: [0, 0, 1, 1], ways: 2)
        #expect(prototypes.shape == [2, 2] && prototypes.scalars == [1, 0, 0, 3])
        // Labels need not be grouped: rows in any order average the same.
        #expect(PrototypicalNetworks.prototypes(Tensor([0, 2, 2, 0, 0, 4, 0, 0], shape: [4, 2]), labels: [1, 0, 1, 0], ways: 2)
            .scalars == [1, 0, 0, 3])
        let logits = PrototypicalNetworks.logits(query, prototypes: prototypes)
        #expect(logits.shape == [2, 2])
        expectClose(logits.scalars, [-1, -5, -5, -1], atol: 1e-6, "logits")
        expectClose(PrototypicalNetworks().queryLogits(identity, task: task).scalars, [-1, -5, -5, -1], atol: 1e-6, "task logits")

        // Each query is nearer its own class by 4: loss log(1 + e⁻⁴), accuracy 1.
        let evaluation = PrototypicalNetworks().evaluate(identity, task: task)
        #expect(abs(Double(evaluation.loss) - log(1 + exp(-4.0))) < 1e-6)
        #expect(evaluation.accuracy == 1)
        let result = PrototypicalNetworks().contribution(identity, task: task)
        #expect(result.loss == evaluation.loss && result.accuracy == 1 && result.kind == .gradient)
    }

    /// The meta-gradient through an MLP embedding equals central differences of the loss computed in Double by a
    /// hand-written reference.
    @Test func metaGradientMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 12)
        let model = MetaMLP(sizes: [3, 6, 4], using: &rng)
        let support = Tensor.randomNormal([6, 3], using: &rng), query = Tensor.randomNormal([6, 3], using: &rng)
        let supportLabels = [0, 1, 2, 0, 1, 2], queryLabels = [2, 1, 0, 0, 1, 2]
        let task = MetaTask(supportInputs: support, supportTargets: .classes(supportLabels),
                            queryInputs: query, queryTargets: .classes(queryLabels))
        let reference = ReferenceMLP(sizes: [3, 6, 4])
        let (xs, xq) = (rows(support), rows(query))
        func loss(_ p: [[Double]]) -> Double {
            let es = reference.forward(p, xs).output, eq = reference.forward(p, xq).output
            let prototypes = (0..<3).map { c -> [Double] in
                let members = es.indices.filter { supportLabels[$0] == c }.map { es[$0] }
                return (0..<4).map { d in members.map { $0[d] }.reduce(0, +) / Double(members.count) }
            }
            var total = 0.0
            for (q, label) in zip(eq, queryLabels) {
                let logits = prototypes.map { p in -zip(q, p).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) }
                let m = logits.max()!
                total += m + log(logits.map { exp($0 - m) }.reduce(0, +)) - logits[label]
            }
            return total / Double(queryLabels.count)
        }
        let theta = doubles(model.parameterTensors)
        let result = PrototypicalNetworks().contribution(model, task: task)
        #expect(abs(Double(result.loss) - loss(theta)) < 1e-5 * max(1, loss(theta)))
        let numeric = numericGradient(theta, eps: 1e-6, loss)
        let worst = worstMismatch(doubles(result.contribution), numeric, rtol: 1e-3, atol: 1e-4)
        #expect(worst.excess <= 0, "ProtoNets gradient off finite differences at tensor \(worst.tensor)[\(worst.index)] by \(worst.excess)")
        #expect(numeric.flatMap { $0 }.map(abs).max()! > 1e-2, "the gradient must be large enough for the check to mean something")
    }
}
