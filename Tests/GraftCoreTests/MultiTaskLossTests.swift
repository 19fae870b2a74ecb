import Foundation
import Testing
@testable import GraftCore
@testable import GraftNN

/// Digit (10 classes), parity and digit ≥ 5 as three heads of 14 logits, as in Fixtures/make_multitask_fixtures.py.
private let digitTasks = TaskLayout([
    ("digit", (0..<10).map(String.init), Array(0..<10)),
    ("parity", ["even", "odd"], (0..<10).map { $0 % 2 }),
    ("high", ["low", "high"], (0..<10).map { $0 >= 5 ? 1 : 0 }),
])

/// PyTorch's numbers for the multi-task losses (Fixtures/multitask_loss.json).
nonisolated(unsafe) private let fixture: [String: Any] = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/multitask_loss.json")
    guard let data = try? Data(contentsOf: url), let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        Issue.record("cannot read \(url.path)")
        return [:]
    }
    return json
}()

private func floats(_ key: String) -> [Float] { (fixture[key] as? [Double] ?? []).map(Float.init) }

@Suite struct MultiTaskLossTests {
    @Test func theLayoutGivesEachTaskItsColumnsAndLabels() {
        #expect(digitTasks.width == 14)
        #expect(digitTasks.tasks.map(\.columns) == [0..<10, 10..<12, 12..<14])
        #expect(digitTasks.labels([3, 8, 5], task: 1) == [1, 0, 1])
        #expect(digitTasks.labels([3, 8, 5], task: 2) == [0, 1, 1])
        let output = Tensor((0..<28).map(Float.init), shape: [2, 14])
        #expect(digitTasks.logits(output, task: 1).scalars == [10, 11, 24, 25])
    }

    /// Σ exp(−sₖ)·Lₖ + sₖ against finite differences, with respect to the logits and the log-variances alike.
    @Test func uncertaintyWeightingMatchesFiniteDifferences() {
        let logits = sample([5, 14], seed: 1, low: -2, high: 2), s = sample([3], seed: 2)
        let digits = [3, 8, 0, 5, 9]
        checkGradients([logits, s], eps: 1e-2, tolerance: 1e-2) { x in
            Loss.uncertaintyWeighted(digitTasks.losses(x[0], labels: digits), logVariances: x[1])
        }
    }

    @Test func aWeightedSumMatchesFiniteDifferences() {
        let logits = sample([5, 14], seed: 3, low: -2, high: 2)
        checkGradients([logits], eps: 1e-2, tolerance: 1e-2) { x in
            Loss.weightedSum(digitTasks.losses(x[0], labels: [1, 2, 7, 7, 4]), weights: [1, 0.5, 2])
        }
    }

    /// Task losses, both weightings and their gradients as PyTorch computes them.
    @Test func theLossesMatchPyTorch() {
        let digits = fixture["digits"] as? [Int] ?? []
        let logits = Tensor(floats("logits"), shape: [digits.count, 14], requiresGrad: true)
        let s = Tensor(floats("log_variances"), shape: [3], requiresGrad: true)
        let losses = digitTasks.losses(logits, labels: digits)
        expectClose(losses.map(\.item), floats("task_losses"), rtol: 1e-5, atol: 1e-6)
        let uncertainty = Loss.uncertaintyWeighted(losses, logVariances: s)
        expectClose([uncertainty.item], [Float(fixture["uncertainty"] as? Double ?? .nan)], rtol: 1e-5, atol: 1e-6)
        let g = grad(of: uncertainty, wrt: [logits, s])
        expectClose(g[0].scalars, floats("uncertainty_grad_logits"), rtol: 1e-4, atol: 1e-6)
        expectClose(g[1].scalars, floats("uncertainty_grad_log_variances"), rtol: 1e-4, atol: 1e-6)
        let weighted = Loss.weightedSum(digitTasks.losses(logits, labels: digits), weights: floats("weights"))
        expectClose([weighted.item], [Float(fixture["weighted"] as? Double ?? .nan)], rtol: 1e-5, atol: 1e-6)
        expectClose(grad(of: weighted, wrt: [logits])[0].scalars, floats("weighted_grad_logits"), rtol: 1e-4, atol: 1e-6)
    }

    /// At sₖ = log Lₖ the gradient with respect to sₖ vanishes: the learned weight exp(−sₖ) is 1/Lₖ.
    @Test func theLogVariancesSettleAtTheLogOfTheLoss() {
        let losses = [Tensor(scalar: 2.5), Tensor(scalar: 0.4)]
        let s = Tensor([Float(Foundation.log(2.5)), Float(Foundation.log(0.4))], shape: [2], requiresGrad: true)
        let g = grad(of: Loss.uncertaintyWeighted(losses, logVariances: s), wrt: [s])[0]
        expectClose(g.scalars, [0, 0], rtol: 0, atol: 1e-6)
    }
}
