import Testing
import GraftCore
import GraftOptim
import GraftMeta

/// Summing task contributions over tasks and ranks, and the optimizer step on their mean.
@Suite struct OuterStepTests {
    /// Two "ranks" each summing half the tasks, packed, added element-wise and unpacked, give the update of one rank
    /// that saw every task.
    @Test func packedSumsOverRanksEqualOneSum() {
        var rng = RandomGenerator(seed: 4)
        let model = MetaMLP(sizes: [1, 6, 1], using: &rng)
        let tasks = SinusoidTasks(shots: 5, queries: 5, seed: 8)
        let maml = MAML(innerSteps: 1, innerRate: 0.05)
        let results = (0..<4).map { maml.contribution(model, task: tasks.task(metaStep: 0, index: $0).task) }

        var whole = MetaUpdate(model, kind: .gradient)
        for r in results { whole.add(r) }
        var rank0 = MetaUpdate(model, kind: .gradient), rank1 = MetaUpdate(model, kind: .gradient)
        for r in results[..<2] { rank0.add(r) }
        for r in results[2...] { rank1.add(r) }
        var reduced = MetaUpdate(model, kind: .gradient)
        reduced.unpack(zip(rank0.packed, rank1.packed).map(+))
        #expect(reduced.tasks == 4 && whole.tasks == 4)
        for (a, b) in zip(reduced.mean, whole.mean) { expectClose(a.scalars, b.scalars, rtol: 1e-6, atol: 1e-9, "mean") }
        #expect(abs(reduced.meanLoss - whole.meanLoss) <= 1e-6 * whole.meanLoss)
        #expect(abs(whole.meanLoss - results.map(\.loss).reduce(0, +) / 4) < 1e-5)
        // The mean is the per-element average of the contributions.
        let first = (0..<results[0].contribution[0].count).map { i in results.map { $0.contribution[0].scalars[i] }.reduce(0, +) / 4 }
        expectClose(whole.mean[0].scalars, first, rtol: 1e-5, atol: 1e-7, "average")
    }

    /// The outer step hands the mean meta-gradient to Adam: on Adam's first step each parameter moves by
    /// −lr · g / (|g| + ε), and the gradients are cleared afterwards.
    @Test func adamStepsOnTheMeanGradient() throws {
        var rng = RandomGenerator(seed: 5)
        let model = MetaMLP(sizes: [2, 3, 1], using: &rng)
        let outer = try OuterStep.adam(model, learningRate: 0.01)
        var update = MetaUpdate(model, kind: .gradient)
        let gradients = model.parameterTensors.map { Tensor.randomNormal($0.shape, using: &rng) }
        update.add(TaskResult(loss: 1, accuracy: nil, kind: .gradient, contribution: gradients))
        update.add(TaskResult(loss: 3, accuracy: nil, kind: .gradient, contribution: gradients.map { $0 * 3 }))
        let before = model.parameterTensors.map(\.scalars)
        outer.apply(update)
        for ((p, b), g) in zip(zip(model.parameterTensors, before), gradients) {
            let mean = g.scalars.map { 2 * $0 }
            expectClose(p.scalars, zip(b, mean).map { $0 - 0.01 * $1 / (abs($1) + 1e-8) }, rtol: 1e-5, atol: 1e-6, "Adam step")
            #expect(p.grad == nil)
        }
        #expect(update.meanLoss == 2)
    }
}
