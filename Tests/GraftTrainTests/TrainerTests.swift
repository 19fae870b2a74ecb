import Testing
import GraftCore
import GraftData
import GraftNN
import GraftOptim
@testable import GraftTrain

/// Two classes of tiny grey images: class 0 bright on the left half, class 1 on the right, plus noise.
func halvesTask(rows: Int, side: Int = 8, seed: UInt64) -> (Tensor, [Int]) {
    var rng = RandomGenerator(seed: seed)
    var values: [Float] = [], labels: [Int] = []
    for r in 0..<rows {
        let label = r % 2
        for _ in 0..<side { for x in 0..<side {
            let bright = (x < side / 2) == (label == 0)
            values.append((bright ? 1 : 0) + 0.3 * rng.nextNormal())
        } }
        labels.append(label)
    }
    return (Tensor(values, shape: [rows, 1, side, side]), labels)
}

/// Four Gaussian blobs in 4-D, for MLP tests.
func blobs(rows: Int, seed: UInt64) -> (Tensor, [Int]) {
    var rng = RandomGenerator(seed: seed)
    var values: [Float] = [], labels: [Int] = []
    for r in 0..<rows {
        let label = r % 2
        for d in 0..<4 { values.append((d == label ? 2 : 0) + rng.nextNormal()) }
        labels.append(label)
    }
    return (Tensor(values, shape: [rows, 4]), labels)
}

func smallCNN(seed: UInt64) -> SmallCNN {
    var rng = RandomGenerator(seed: seed)
    return SmallCNN(inputChannels: 1, classes: 2, imageSize: 8, widths: (4, 8), using: &rng)
}

func values(_ m: Module) -> [[Float]] { m.stateDict().map { $0.1.scalars } }

@Suite struct TrainerTests {
    @Test func sameSeedGivesBitIdenticalWeights() throws {
        func run() throws -> [[Float]] {
            let model = smallCNN(seed: 7)
            let (x, y) = halvesTask(rows: 24, seed: 1)
            var base = GroupOptions(learningRate: 0.05)
            base.momentum = 0.9
            let optimizer = try SGD(groups: [ParameterGroup(name: "all", parameters: model.namedParameters(), options: base)])
            var config = Trainer.Configuration(epochs: 3)
            config.accumulationSteps = 2
            config.clipGradientNorm = 1
            config.schedule = try CosineAnnealing(tMax: 10)
            try Trainer(model: model, optimizer: optimizer, configuration: config)
                .fit(Batches(inputs: x, labels: y, batchSize: 4, seed: 3))
            return values(model)
        }
        let a = try run(), b = try run()
        #expect(a == b)
        #expect(a != values(smallCNN(seed: 7)))
    }

    @Test func batchesAreSeededPermutations() {
        let (x, y) = blobs(rows: 10, seed: 0)
        let data = Batches(inputs: x, labels: y, batchSize: 3, seed: 5)
        #expect(data.order(epoch: 1) == data.order(epoch: 1))
        #expect(data.order(epoch: 1) != data.order(epoch: 2))
        #expect(data.order(epoch: 0).sorted() == Array(0..<10))
        let order = data.order(epoch: 0)
        #expect((0..<data.batchCount).map { data.batch(order, step: $0).labels.count } == [3, 3, 3, 1])
    }

    @Test func accumulationMatchesOneLargeBatch() throws {
        func run(batch: Int, k: Int, rows: Int) throws -> [Float] {
            var rng = RandomGenerator(seed: 11)
            let model = MLP(sizes: [4, 8, 2], using: &rng)
            let optimizer = try SGD(groups: [ParameterGroup(name: "all", parameters: model.namedParameters(),
                                                            options: GroupOptions(learningRate: 0.1))])
            var config = Trainer.Configuration(epochs: 2)
            config.accumulationSteps = k
            let (x, y) = blobs(rows: rows, seed: 2)
            try Trainer(model: model, optimizer: optimizer, configuration: config)
                .fit(Batches(inputs: x, labels: y, batchSize: batch, seed: 9))
            return values(model).flatMap { $0 }
        }
        let one = try run(batch: 8, k: 1, rows: 16), accumulated = try run(batch: 4, k: 2, rows: 16)
        #expect(zip(one, accumulated).allSatisfy { abs($0 - $1) < 1e-6 })
        // 20 rows: micro-batch groups of 2, 2 and 1; the short last group is its own mean, as the last batch of 8 is.
        let shortOne = try run(batch: 8, k: 1, rows: 20), shortAccumulated = try run(batch: 4, k: 2, rows: 20)
        #expect(zip(shortOne, shortAccumulated).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    /// A scripted metric: improvements by more than minDelta at epochs 1 and 3, then none; patience 2 → stop after epoch 5.
    @Test func earlyStoppingStopsAtTheRightEpoch() throws {
        let script: [Double] = [5, 4, 4.5, 3.9, 3.95, 3.86, 3.99, 3.0, 2.0, 1.0]
        let (trainer, data) = try blobTrainer(epochs: 10)
        trainer.configuration.monitor = .custom(name: "scripted", higherIsBetter: false) { script[$0.epoch] }
        trainer.configuration.patience = 2
        trainer.configuration.minDelta = 0.05
        let reports = try trainer.fit(data)
        #expect(reports.count == 6)
        #expect(reports.map(\.improved) == [true, true, false, true, false, false])
        #expect(trainer.bestEpoch == 3 && trainer.bestValue == 3.9)
    }

    @Test func plateauCutsEveryGroupsRateWhenTheMonitorStalls() throws {
        let script: [Double] = [3, 2, 2.5, 2.4, 1, 1.5]
        let (trainer, data) = try blobTrainer(epochs: 6)
        trainer.configuration.monitor = .custom(name: "scripted", higherIsBetter: false) { script[$0.epoch] }
        trainer.plateau = try ReduceOnPlateau(learningRate: 1, factor: 0.5, patience: 1)
        let reports = try trainer.fit(data)
        // Two bad epochs after epoch 1 (patience 1) halve the rate from epoch 4's steps on.
        #expect(reports.map(\.learningRates[0]) == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05])
    }

    @Test func hookCanStopAndSeesEveryEpoch() throws {
        let (trainer, data) = try blobTrainer(epochs: 10)
        var started: [Int] = []
        trainer.onEpochStart.append { started.append($0) }
        trainer.onEpochEnd.append { $0.epoch == 2 ? .stop : .proceed }
        #expect(try trainer.fit(data).count == 3)
        #expect(started == [0, 1, 2])
    }

    @Test func restoreBestPutsBackTheBestEpochsWeights() throws {
        let script: [Double] = [0.5, 0.9, 0.7, 0.6]
        let (trainer, data) = try blobTrainer(epochs: 4)
        trainer.configuration.monitor = .custom(name: "scripted", higherIsBetter: true) { script[$0.epoch] }
        var perEpoch: [[[Float]]] = []
        trainer.onEpochEnd.append { _ in perEpoch.append(values(trainer.model)); return .proceed }
        try trainer.fit(data)
        #expect(trainer.bestEpoch == 1)
        #expect(values(trainer.model) == perEpoch[3])
        trainer.restoreBest()
        #expect(values(trainer.model) == perEpoch[1])
        #expect(perEpoch[1] != perEpoch[3])
    }

    @Test func smallCNNLearnsASeparableTask() throws {
        let model = smallCNN(seed: 3)
        let (x, y) = halvesTask(rows: 64, seed: 4)
        let (vx, vy) = halvesTask(rows: 32, seed: 5)
        let optimizer = try Adam(groups: [ParameterGroup(name: "all", parameters: model.namedParameters(),
                                                         options: GroupOptions(learningRate: 0.01))])
        let trainer = Trainer(model: model, optimizer: optimizer, configuration: .init(epochs: 4))
        let reports = try trainer.fit(Batches(inputs: x, labels: y, batchSize: 8, seed: 1),
                                  validation: Batches(inputs: vx, labels: vy, batchSize: 16, shuffle: false))
        #expect(reports.last!.evaluation.accuracy > 0.9)
        #expect(reports.last!.evaluation.macroF1 > 0.9)
        #expect(reports.last!.trainLoss < reports.first!.trainLoss)
    }
}

func blobTrainer(epochs: Int) throws -> (Trainer, Batches) {
    var rng = RandomGenerator(seed: 21)
    let model = MLP(sizes: [4, 8, 2], using: &rng)
    let optimizer = try SGD(groups: [ParameterGroup(name: "all", parameters: model.namedParameters(),
                                                    options: GroupOptions(learningRate: 0.1))])
    let (x, y) = blobs(rows: 16, seed: 2)
    return (Trainer(model: model, optimizer: optimizer, configuration: .init(epochs: epochs)),
            Batches(inputs: x, labels: y, batchSize: 4, seed: 1))
}
