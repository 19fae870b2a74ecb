import Testing
import GraftCore
import GraftMeta

/// Reptile's adaptation delta and its serial and batched outer updates.
@Suite struct ReptileTests {
    /// One task with k = 1: the delta is −α∇L(θ), the loss at θ over the support and query rows together (or the
    /// support rows alone), and θ is left as it was.
    @Test func oneStepDeltaIsMinusRateTimesGradient() {
        var rng = RandomGenerator(seed: 8)
        let model = MetaMLP(sizes: [1, 8, 1], using: &rng)
        let task = SinusoidTasks(shots: 5, queries: 7, seed: 3).task(metaStep: 2, index: 1).task
        let theta = model.parameterTensors.map(\.scalars)
        for includesQuery in [true, false] {
            let reptile = Reptile(innerSteps: 1, innerRate: 0.03, includesQuery: includesQuery)
            let result = reptile.contribution(model, task: task)
            let (x, y) = includesQuery ? (task.allInputs, task.allTargets) : (task.supportInputs, task.supportTargets)
            let loss = y.loss(model(x))
            let g = grad(of: loss, wrt: model.parameterTensors)
            #expect(result.kind == .delta)
            #expect(result.loss == loss.item)
            for (d, gi) in zip(result.contribution, g) {
                expectClose(d.scalars, gi.scalars.map { -0.03 * $0 }, rtol: 1e-5, atol: 1e-7, "delta, includesQuery \(includesQuery)")
            }
        }
        #expect(model.parameterTensors.map(\.scalars) == theta)
    }

    /// k steps of Reptile equal k explicit gradient steps on the task's whole batch.
    @Test func severalStepsFollowPlainGradientDescent() {
        var rng = RandomGenerator(seed: 9)
        let model = MetaMLP(sizes: [1, 6, 1], using: &rng)
        let task = SinusoidTasks(shots: 4, queries: 4, seed: 5).task(metaStep: 0, index: 0).task
        let result = Reptile(innerSteps: 3, innerRate: 0.05).contribution(model, task: task)
        var phi = model.parameterTensors.map { Tensor($0.scalars, shape: $0.shape, requiresGrad: true) }
        for _ in 0..<3 {
            let g = grad(of: task.allTargets.loss(model(task.allInputs, parameters: phi)), wrt: phi)
            phi = zip(phi, g).map { Tensor(zip($0.scalars, $1.scalars).map { $0 - 0.05 * $1 }, shape: $0.shape, requiresGrad: true) }
        }
        for ((d, p), t) in zip(zip(result.contribution, phi), model.parameterTensors) {
            expectClose(d.scalars, zip(p.scalars, t.scalars).map { $0 - $1 }, rtol: 1e-4, atol: 1e-6, "3-step delta")
        }
    }

    /// The outer update is θ + ε·δ for one task and θ + ε·mean(δ) for a batch of tasks.
    @Test func outerUpdateMovesTowardsTheMeanDelta() {
        var rng = RandomGenerator(seed: 10)
        let model = MetaMLP(sizes: [1, 5, 1], using: &rng)
        let tasks = SinusoidTasks(shots: 5, queries: 5, seed: 11)
        let reptile = Reptile(innerSteps: 2, innerRate: 0.02)
        let epsilon: Float = 0.4

        // Serial: one task.
        let theta0 = model.parameterTensors.map(\.scalars)
        let single = reptile.contribution(model, task: tasks.task(metaStep: 0, index: 0).task)
        var serial = MetaUpdate(model, kind: .delta)
        serial.add(single)
        OuterStep.reptile(model, serial, stepSize: epsilon)
        for ((p, t0), d) in zip(zip(model.parameterTensors, theta0), single.contribution) {
            expectClose(p.scalars, zip(t0, d.scalars).map { $0 + epsilon * $1 }, rtol: 1e-6, atol: 1e-7, "serial")
        }

        // Batched: three tasks at the same θ.
        let theta1 = model.parameterTensors.map(\.scalars)
        let results = (0..<3).map { reptile.contribution(model, task: tasks.task(metaStep: 1, index: $0).task) }
        var batch = MetaUpdate(model, kind: .delta)
        for r in results { batch.add(r) }
        OuterStep.reptile(model, batch, stepSize: epsilon)
        for (k, (p, t1)) in zip(model.parameterTensors, theta1).enumerated() {
            let mean = (0..<p.count).map { i in results.map { $0.contribution[k].scalars[i] }.reduce(0, +) / 3 }
            expectClose(p.scalars, zip(t1, mean).map { $0 + epsilon * $1 }, rtol: 1e-5, atol: 1e-7, "batched")
        }
        // The tasks differ, so the mean is not any single task's delta.
        #expect(results[0].contribution[0].scalars != results[1].contribution[0].scalars)
    }
}
