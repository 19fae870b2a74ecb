import Foundation
import Testing
import GraftCore
import GraftData
import GraftDistributed
import GraftNN
@testable import GraftTrain

/// The four blob classes as the main task and their parity as a second one.
private let blobTasks = TaskLayout([("class", ["0", "1", "2", "3"], [0, 1, 2, 3]), ("parity", ["even", "odd"], [0, 1, 0, 1])])

@Suite struct MultiTaskObjectiveTests {
    /// Losses of two epochs by hand: r = (1.5/2, 0.3/0.6, 0.6/0.7) = (0.75, 0.5, 0.857…); with T = 2,
    /// w = 3·exp(r/2)/Σ exp(r/2) = 3·(1.4550, 1.2840, 1.5351)/4.2741 = (1.0213, 0.9013, 1.0775).
    @Test func dwaWeighsByTheLastTwoEpochs() {
        let history = [[2.0, 0.6, 0.7], [1.5, 0.3, 0.6]]
        let w = dynamicWeights(history: history, tasks: 3, temperature: 2)
        for (a, b) in zip(w, [1.0213, 0.9013, 1.0775]) { #expect(abs(a - b) < 1e-4, "\(w)") }
        #expect(abs(w.reduce(0, +) - 3) < 1e-12)
        // PyTorch's 3·softmax(r/T) on the same losses (GraftCoreTests/Fixtures/make_multitask_fixtures.py).
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../GraftCoreTests/Fixtures/multitask_loss.json")
        let json = (try? Data(contentsOf: url)).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        let torch = json?["dwa_weights"] as? [Double] ?? []
        #expect(json?["dwa_history"] as? [[Double]] == history && torch.count == 3)
        for (a, b) in zip(w, torch) { #expect(abs(a - b) < 1e-12) }
    }

    @Test func dwaStartsWithWeightsOfOneAndSharpensWithASmallTemperature() {
        #expect(dynamicWeights(history: [], tasks: 2, temperature: 2) == [1, 1])
        #expect(dynamicWeights(history: [[1, 1]], tasks: 2, temperature: 2) == [1, 1])
        // The task whose loss fell least gets nearly all the weight at T → 0, without overflow.
        let w = dynamicWeights(history: [[1, 1], [0.5, 1]], tasks: 2, temperature: 1e-3)
        #expect(w[0] < 1e-6 && abs(w[1] - 2) < 1e-6, "\(w)")
    }

    /// The shares of two ranks' parts of a global batch add up to one rank's loss and gradients, the learned
    /// log-variances' included.
    @Test(arguments: [TaskWeighting.uncertainty, .fixed([1, 0.3]), .dwa(temperature: 2)])
    func sharesOfRanksAddUpToOneRank(weighting: TaskWeighting) throws {
        var rng = RandomGenerator(seed: 4)
        let model = MLP(sizes: [4, 8, blobTasks.width], using: &rng)
        let (x, y) = blobs(rows: 7, seed: 5)
        let data = Batches(inputs: x, labels: y.enumerated().map { ($0.offset + $0.element) % 4 }, batchSize: 7, shuffle: false)
        let objective = MultiTaskObjective(layout: blobTasks, weighting: weighting, communicator: LocalCommunicator(),
                                           output: { model($0) })
        let leaves = model.namedParameters().map(\.1) + (objective.logVariances.map { [$0.logVariance] } ?? [])
        let position = StepPosition(epoch: 0, step: 0, stepsPerEpoch: 1)
        let order = data.order(epoch: 0)
        let whole = try objective.share(of: data.batch(order, step: 0), at: position)
        let parts = try (0..<2).map { try objective.share(of: data.batch(order, step: 0, rank: $0, of: 2), at: position) }
        let sum = parts.compactMap(\.loss).reduce(Tensor(scalar: 0), +)
        expectNear([sum.item], [whole.loss!.item], 1e-5)
        let expected = grad(of: whole.loss!, wrt: leaves), found = grad(of: sum, wrt: leaves)
        for (e, f) in zip(expected, found) { expectNear(f.scalars, e.scalars, 1e-5) }
        #expect(parts.map(\.rows) == [4, 3] && abs(parts.map(\.lossSum).reduce(0, +) - whole.lossSum) < 1e-4)
    }

    /// Each epoch's mean task losses join the history when the next epoch starts, and a restored state continues.
    @Test func epochLossesFeedTheNextEpochsWeights() throws {
        var rng = RandomGenerator(seed: 6)
        let model = MLP(sizes: [4, 8, blobTasks.width], using: &rng)
        let (x, y) = blobs(rows: 8, seed: 7)
        let data = Batches(inputs: x, labels: y, batchSize: 4, shuffle: false)
        let objective = MultiTaskObjective(layout: blobTasks, weighting: .dwa(temperature: 2), communicator: LocalCommunicator(),
                                           output: { model($0) })
        for epoch in 0..<3 {
            for step in 0..<2 {
                _ = try objective.share(of: data.batch(data.order(epoch: epoch), step: step),
                                        at: StepPosition(epoch: epoch, step: step, stepsPerEpoch: 2))
            }
            #expect(objective.state.history.count == epoch && objective.epochLosses.count == 2)
            // Another model each epoch (as training would make it), so the task losses change unequally.
            for (_, p) in model.namedParameters() { for i in 0..<p.count { p.pointer[i] *= 1.5 } }
        }
        let state = objective.state
        #expect(objective.weights == dynamicWeights(history: state.history, tasks: 2, temperature: 2))
        #expect(objective.weights != [1, 1])
        let again = MultiTaskObjective(layout: blobTasks, weighting: .dwa(temperature: 2), communicator: LocalCommunicator())
        try again.restore(state)
        #expect(again.state == state && again.weights == objective.weights)
        var wrong = state
        wrong.history.append([1, 2, 3])
        #expect(throws: CheckpointError.self) { try again.restore(wrong) }
    }
}

private func expectNear(_ a: [Float], _ b: [Float], _ tolerance: Float, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, sourceLocation: sourceLocation)
    for (x, y) in zip(a, b) { #expect(abs(x - y) <= tolerance * max(1, abs(y)), "\(x) vs \(y)", sourceLocation: sourceLocation) }
}
