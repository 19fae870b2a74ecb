import Foundation
import Testing
import GraftCore
import GraftData
import GraftNN
@testable import GraftTrain

private func fixture() throws -> [String: Any] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/distillation.json")
    return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
}

private func tensor(_ any: Any?) -> Tensor {
    let d = any as! [String: Any]
    return Tensor((d["values"] as! [Double]).map(Float.init), shape: d["shape"] as! [Int])
}

private func close(_ a: [Float], _ b: [Float], rtol: Float, atol: Float, _ what: String,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(what): \(a.count) values, expected \(b.count)", sourceLocation: sourceLocation)
    let bad = zip(a, b).enumerated().first { abs($0.element.0 - $0.element.1) > atol + rtol * abs($0.element.1) }
    #expect(bad == nil, "\(what): first mismatch at \(bad?.offset ?? -1): \(bad?.element.0 ?? 0) vs \(bad?.element.1 ?? 0)",
            sourceLocation: sourceLocation)
}

/// A student with 4 features and a teacher with 3, both over 5 classes (their bodies are not used by `terms`).
private func objective(temperature: Float, alpha: Float, featureWeight: Float, smoothing: Float = 0,
                       cache: Bool = false, seed: UInt64 = 1) -> Distillation {
    var rng = RandomGenerator(seed: seed)
    let student = MLP(sizes: [2, 4, 5], using: &rng), teacher = MLP(sizes: [2, 3, 5], using: &rng)
    return Distillation(student: student, teacher: teacher, temperature: temperature, alpha: alpha, featureWeight: featureWeight,
                        cacheTeacher: cache, loss: { Tensor.crossEntropy($0, targets: $1, labelSmoothing: smoothing) }, using: &rng)
}

private func copy(_ source: Tensor, into target: Tensor) {
    for i in 0..<source.count { target.pointer[i] = source.pointer[i] }
}

@Suite struct DistillationObjective {
    /// Value and gradients (student logits, student features, projection weight and bias) against PyTorch's
    /// kl_div(batchmean)·T²·α + (1 − α)·cross_entropy + w·mse_loss(linear(…)).
    @Test func matchesPyTorch() throws {
        let f = try fixture()
        let labels = f["labels"] as! [Int]
        for c in f["cases"] as! [[String: Any]] {
            let (t, a, w) = (Float(c["temperature"] as! Double), Float(c["alpha"] as! Double), Float(c["feature_weight"] as! Double))
            let d = objective(temperature: t, alpha: a, featureWeight: w, smoothing: Float(c["label_smoothing"] as! Double))
            let logits = tensor(f["student"]), features = tensor(f["features"])
            logits.requiresGrad = true
            features.requiresGrad = true
            var inputs = [logits, features]
            if let p = d.projection {
                copy(tensor(f["weight"]), into: p.weight)
                copy(tensor(f["bias"]), into: p.bias!)
                inputs += [p.weight, p.bias!]
            }
            let loss = d.terms(studentFeatures: features, studentLogits: logits, labels: labels, teacherLogits: tensor(f["teacher"]),
                               teacherFeatures: tensor(f["teacher_features"])).total
            let what = "T \(t), α \(a), w \(w)"
            close([loss.item], [Float(c["value"] as! Double)], rtol: 1e-5, atol: 1e-6, "\(what) value")
            let expected = (c["grads"] as! [[Double]]).map { $0.map(Float.init) }
            for (k, g) in grad(of: loss, wrt: inputs).enumerated() {
                close(g.scalars, expected[k], rtol: 1e-4, atol: 1e-6, "\(what) gradient \(k)")
            }
            if d.projection == nil { #expect(expected[2].allSatisfy { $0 == 0 } && expected[3].allSatisfy { $0 == 0 }) }
        }
    }

    /// Autograd's gradients of the whole objective against central finite differences, per element.
    @Test func gradientsMatchFiniteDifferences() throws {
        let f = try fixture()
        let labels = f["labels"] as! [Int]
        let d = objective(temperature: 2.5, alpha: 0.6, featureWeight: 0.8, smoothing: 0.1)
        let p = d.projection!
        let inputs = [tensor(f["student"]), tensor(f["features"]), p.weight, p.bias!]
        for x in inputs { x.requiresGrad = true }
        let (teacher, teacherFeatures) = (tensor(f["teacher"]), tensor(f["teacher_features"]))
        func value() -> Tensor {
            d.terms(studentFeatures: inputs[1], studentLogits: inputs[0], labels: labels, teacherLogits: teacher,
                    teacherFeatures: teacherFeatures).total
        }
        let analytic = grad(of: value(), wrt: inputs)
        let eps: Float = 1e-2
        for (k, x) in inputs.enumerated() {
            for i in 0..<x.count {
                let saved = x.pointer[i]
                x.pointer[i] = saved + eps
                let up = Double(withNoGrad { value() }.item)
                x.pointer[i] = saved - eps
                let down = Double(withNoGrad { value() }.item)
                x.pointer[i] = saved
                let numeric = (up - down) / (2 * Double(eps))
                let a = Double(analytic[k].pointer[i])
                #expect(abs(a - numeric) <= 2e-3 + 1e-2 * abs(numeric), "input \(k)[\(i)]: autograd \(a), finite differences \(numeric)")
            }
        }
    }

    /// A rank's share is its rows' loss × rows / global rows: shares of two halves sum to the whole batch's loss and
    /// gradient; the teacher gets no gradient; cached teacher outputs give the same loss as running it again.
    @Test func sharesAddUpAndTheTeacherStaysFrozen() throws {
        var rng = RandomGenerator(seed: 3)
        let inputs = Tensor.randomNormal([8, 2], using: &rng)
        let data = Batches(inputs: inputs, labels: [0, 1, 2, 3, 4, 0, 1, 2], batchSize: 8, shuffle: true, seed: 9)
        func gradients(ranks: Int, cache: Bool) throws -> (loss: Double, grads: [[Float]], teacherGrads: Bool) {
            let d = objective(temperature: 3, alpha: 0.5, featureWeight: 0.5, cache: cache, seed: 4)
            d.student.train()
            let order = data.order(epoch: 0)
            let params = d.student.namedParameters().map(\.1) + [d.projection!.weight, d.projection!.bias!]
            var lossSum = 0.0
            for epoch in 0..<2 {  // the second pass reads the cache when there is one
                for p in params { p.grad = nil }
                lossSum = 0
                for rank in 0..<ranks {
                    let part = try d.share(of: data.batch(order, step: 0, rank: rank, of: ranks), at: StepPosition(
                        epoch: epoch, step: 0, stepsPerEpoch: 1))
                    lossSum += part.lossSum
                    part.loss?.backward()
                }
            }
            return (lossSum, params.map { $0.grad!.scalars }, d.teacher.namedParameters().contains { $0.1.grad != nil || $0.1.requiresGrad })
        }
        let one = try gradients(ranks: 1, cache: false)
        #expect(!one.teacherGrads)
        for (ranks, cache) in [(2, false), (3, true), (1, true)] {
            let other = try gradients(ranks: ranks, cache: cache)
            #expect(abs(other.loss - one.loss) < 1e-4 * abs(one.loss), "\(ranks) ranks, cache \(cache): loss \(other.loss) vs \(one.loss)")
            for (a, b) in zip(other.grads, one.grads) { close(a, b, rtol: 1e-4, atol: 1e-6, "\(ranks) ranks, cache \(cache)") }
            #expect(!other.teacherGrads)
        }
    }
}
