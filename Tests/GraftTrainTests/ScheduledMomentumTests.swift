import Testing
import GraftCore
import GraftData
import GraftNN
import GraftOptim
@testable import GraftTrain

@Suite struct ScheduledMomentumTests {
    /// The trainer sets the schedule's momentum (and β₁) before every step, as PyTorch's one-cycle scheduler does.
    @Test func theTrainerCyclesMomentumWithTheRate() throws {
        var rng = RandomGenerator(seed: 4)
        let model = MLP(sizes: [3, 4, 2], using: &rng)
        var options = GroupOptions(learningRate: 0.1)
        options.momentum = 0.5
        let optimizer = try SGD(groups: [ParameterGroup(name: "all", parameters: model.namedParameters(), options: options)])
        var configuration = Trainer.Configuration(epochs: 1)
        let schedule = try OneCycle(maxLR: 0.1, totalSteps: 5)
        configuration.schedule = schedule
        let trainer = Trainer(model: model, optimizer: optimizer, configuration: configuration)
        let data = Batches(inputs: Tensor.randomNormal([10, 3], using: &rng), labels: (0..<10).map { $0 % 2 }, batchSize: 2)
        try trainer.fit(data)
        #expect(trainer.stepCount == 5)
        #expect(optimizer.groups[0].options.momentum == schedule.momentum(step: 4))
        #expect(optimizer.groups[0].options.momentum != 0.5 && abs(optimizer.groups[0].options.momentum - 0.95) < 1e-3)
    }
}
