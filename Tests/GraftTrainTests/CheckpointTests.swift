import Foundation
import GraftCore
import GraftData
import GraftNN
import GraftOptim
import Testing
@testable import GraftTrain

@Suite struct CheckpointTests {
    func directory() throws -> String {
        let path = NSTemporaryDirectory() + "graft-checkpoint-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func aSavedRunContinuesBitIdentically() throws {
        // Train 4 epochs straight; train 2, save, rebuild everything from the checkpoint, train 2 more.
        let (x, y) = blobs(rows: 37, seed: 5)
        let data = Batches(inputs: x, labels: y, batchSize: 6, seed: 2)
        func trainer() throws -> Trainer {
            var rng = RandomGenerator(seed: 3)
            let model = MLP(sizes: [4, 8, 2], using: &rng)
            let adam = try AdamW(groups: [ParameterGroup(name: "all", parameters: model.namedParameters(),
                                                         options: GroupOptions(learningRate: 0.02))])
            var configuration = Trainer.Configuration(epochs: 2)
            configuration.patience = 3
            configuration.schedule = try CosineAnnealing(tMax: 30)
            let t = Trainer(model: model, optimizer: adam, configuration: configuration)
            t.plateau = try ReduceOnPlateau(learningRate: 1, mode: .min, patience: 0)
            return t
        }
        let straight = try trainer()
        straight.configuration.epochs = 4
        try straight.fit(data)

        let first = try trainer()
        let reports = try first.fit(data)
        let dir = try directory()
        let state = CheckpointState(trainer: first, strategyEpoch: 2, recipe: ["a=1"], report: reports.last)
        try Checkpoint.save(first, state: state, to: "\(dir)/last")
        try Checkpoint.save(first, state: state, to: "\(dir)/best")

        let second = try trainer()
        let saved = try Checkpoint.loadState(from: "\(dir)/last")
        #expect(saved.epoch == 2 && saved.step == first.stepCount && saved.recipe == ["a=1"] && saved.ranks == 1)
        #expect(saved.stopping == first.stopping && saved.plateau == first.plateau?.state)
        try Checkpoint.loadModel(second.model, from: "\(dir)/last")
        try Checkpoint.loadOptimizer(second.optimizer, from: "\(dir)/last")
        try second.restore(saved, bestWeights: try Checkpoint.loadWeights(from: "\(dir)/best", over: second.model))
        second.pendingStopping = saved.stopping
        try second.fit(data)
        #expect(second.model.stateDict().map(\.1.scalars) == straight.model.stateDict().map(\.1.scalars))
        #expect(second.stepCount == straight.stepCount && second.epochCount == 4)
        #expect(second.bestEpoch == straight.bestEpoch && second.bestValue == straight.bestValue)
    }

    @Test func aDivergedEpochWritesNullsNotACrash() throws {
        let report = EpochReport(epoch: 0, trainLoss: .nan, evaluation: Evaluation(loss: .infinity, confusion: ConfusionMatrix(classes: 2)),
                                 monitored: .nan, improved: false, learningRates: [.infinity])
        let text = try jsonText(EpochMetrics(report), pretty: false)
        #expect(text.contains("\"loss\":null") || !text.contains("\"loss\""))
        let back = try JSONDecoder().decode(EpochMetrics.self, from: Data(text.utf8))
        #expect(back.trainLoss == nil && back.loss == nil && back.lr == [nil])
    }

    @Test func aMissingStateIsAnErrorNamingTheFile() throws {
        let dir = try directory()
        #expect(throws: CheckpointError.self) { try Checkpoint.loadState(from: dir) }
        try "{\"epoch\": 1}".write(toFile: "\(dir)/state.json", atomically: true, encoding: .utf8)
        do {
            _ = try Checkpoint.loadState(from: dir)
            Issue.record("a state without its fields loaded")
        } catch {
            #expect("\(error)".contains("\(dir)/state.json") && "\(error)".contains("missing"))
        }
    }
}
