import Testing
import GraftCore
import GraftData
import GraftNN
import GraftOptim
@testable import GraftTrain

/// An MLP of four blocks (layers.0, layers.2, layers.4, layers.6: the head).
func fourBlockMLP() -> MLP {
    var rng = RandomGenerator(seed: 13)
    return MLP(sizes: [4, 6, 6, 6, 2], using: &rng)
}

func trainableNames(_ m: Module) -> [String] { m.namedParameters().filter { $0.1.requiresGrad }.map(\.0) }

@Suite struct StrategyTests {
    @Test func cachedFeatureExtractionEqualsTrainingThroughTheFrozenBody() throws {
        func run(cached: Bool) throws -> [Float] {
            let model = smallCNN(seed: 8)
            let (x, y) = halvesTask(rows: 20, seed: 6)
            let tuner = try FineTuner(model: model, strategy: .featureExtraction(lr: 0.01, cached: cached),
                                      configuration: .init(epochs: 3))
            try tuner.fit(Batches(inputs: x, labels: y, batchSize: 6, seed: 2))
            return model.fc.parameters.flatMap { $0.1.scalars }
        }
        let cached = try run(cached: true), direct = try run(cached: false)
        #expect(cached.count == direct.count)
        let worst = zip(cached, direct).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-6, "largest head weight difference \(worst)")
        #expect(cached != smallCNN(seed: 8).fc.parameters.flatMap { $0.1.scalars })
    }

    @Test func cachedHeadStageOfTwoStageEqualsTheUncachedRun() throws {
        func run(cached: Bool) throws -> [[Float]] {
            let model = smallCNN(seed: 8)
            let (x, y) = halvesTask(rows: 20, seed: 6)
            let strategy = FineTuningStrategy.twoStage(headEpochs: 2, headLR: 0.01, thenTopBlocks: 2, lr2: 0.005,
                                                       cachedHead: cached)
            let tuner = try FineTuner(model: model, strategy: strategy, configuration: .init(epochs: 4))
            let reports = try tuner.fit(Batches(inputs: x, labels: y, batchSize: 6, seed: 2),
                                    validation: Batches(inputs: x, labels: y, batchSize: 8, shuffle: false))
            #expect(reports.count == 4)
            return values(model)
        }
        let cached = try run(cached: true), direct = try run(cached: false)
        let worst = zip(cached.joined(), direct.joined()).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-6, "largest weight difference \(worst)")
        #expect(cached != values(smallCNN(seed: 8)))
    }

    @Test func cachedFeatureExtractionOfBertEqualsTheUncachedRunDespiteDropout() throws {
        func run(cached: Bool) throws -> [Float] {
            var config = BertConfig()
            (config.vocabularySize, config.hidden, config.layers, config.heads, config.intermediate) = (40, 8, 2, 2, 16)
            var rng = RandomGenerator(seed: 3)
            let model = BertClassifier(BertModel(config, using: &rng), classes: 2, pooling: .mean, using: &rng)
            // Odd rows end in two padding tokens.
            let ids: [Int] = (0..<48).map { i in i % 6 >= 4 && i % 12 > 6 ? 0 : 1 + (i * 7) % 39 }
            let tokens = Tensor(ids.map(Float.init), shape: [8, 6])
            let labels = (0..<8).map { $0 % 2 }
            let tuner = try FineTuner(model: model, strategy: .featureExtraction(lr: 0.05, cached: cached),
                                      configuration: .init(epochs: 3))
            try tuner.fit(Batches(inputs: tokens, labels: labels, batchSize: 3, seed: 4))
            #expect(tuner.trainer.optimizer.groups.last?.name == "unused" && tuner.trainer.optimizer.groups.last!.frozen)
            #expect(model.bert.pooler.weight.grad == nil)
            return model.classifier.parameters.flatMap { $0.1.scalars }
        }
        let cached = try run(cached: true), direct = try run(cached: false)
        let worst = zip(cached, direct).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-6, "largest head weight difference \(worst)")
    }

    @Test func earlyStoppingInTheHeadStageMovesOnToTheSecondStage() throws {
        let model = fourBlockMLP()
        var config = Trainer.Configuration(epochs: 5)
        config.patience = 1
        config.monitor = .custom(name: "scripted", higherIsBetter: false) { [1, 2, 0.5, 0.4, 0.3][$0.epoch] }
        let tuner = try FineTuner(model: model, strategy: .twoStage(headEpochs: 3, headLR: 0.01, thenTopBlocks: 3, lr2: 0.001),
                                  configuration: config)
        var seen: [[String]] = []
        tuner.trainer.onEpochStart.append { _ in seen.append(trainableNames(model)) }
        let (x, y) = blobs(rows: 8, seed: 1)
        let reports = try tuner.fit(Batches(inputs: x, labels: y, batchSize: 4, seed: 1))
        #expect(reports.count == 4)
        #expect(seen == [top(1), top(1), top(3), top(3)])
        #expect(tuner.trainer.bestEpoch == 3)
    }

    @Test func frozenBlocksRunInInferenceMode() throws {
        var config = BertConfig()
        (config.vocabularySize, config.hidden, config.layers, config.heads, config.intermediate) = (40, 8, 2, 2, 16)
        var rng = RandomGenerator(seed: 3)
        let model = BertClassifier(BertModel(config, using: &rng), classes: 2, using: &rng)
        let tuner = try FineTuner(model: model, strategy: .partial(.topBlocks(2), lr: 0.01), configuration: .init(epochs: 1))
        model.train()
        tuner.apply(epoch: 0)
        #expect(!model.bert.embeddings.dropout.isTraining && !model.bert.layers[0].isTraining)
        #expect(model.bert.pooler.isTraining && model.dropout.isTraining)
    }

    @Test func frozenBodyIsUntouchedAndGetsNoGradient() throws {
        let model = smallCNN(seed: 9)
        let before = values(model)
        let (x, y) = halvesTask(rows: 16, seed: 7)
        let tuner = try FineTuner(model: model, strategy: .featureExtraction(lr: 0.05, cached: false),
                                  configuration: .init(epochs: 2))
        tuner.apply(epoch: 0)
        let probe = try GradientProbe(groups: tuner.trainer.optimizer.groups)
        let probed = Trainer(model: model, optimizer: probe, configuration: .init(epochs: 2))
        try probed.fit(Batches(inputs: x, labels: y, batchSize: 4, seed: 1))
        #expect(probe.steps == 8)
        #expect(probe.bodyHadGradient == false && probe.headHadGradient)
        let body = model.namedParameters().filter { !$0.0.hasPrefix("fc.") }
        #expect(body.allSatisfy { !$0.1.requiresGrad })
        #expect(body.allSatisfy { $0.1.grad == nil })
        // Every body parameter and every batch-norm running statistic is bit-identical; the head moved.
        let after = model.stateDict()
        for ((name, t), old) in zip(after, before) where !name.hasPrefix("fc.") {
            #expect(t.scalars == old, "\(name) changed")
        }
        #expect(model.fc.parameters.map { $0.1.scalars } != Array(before.suffix(2)))
    }

    @Test func backwardLeavesNoGradientOnFrozenParameters() throws {
        let model = smallCNN(seed: 9)
        let tuner = try FineTuner(model: model, strategy: .partial(.topBlocks(2), lr: 0.01), configuration: .init(epochs: 1))
        tuner.apply(epoch: 0)
        let (x, y) = halvesTask(rows: 4, seed: 1)
        model.train()
        model.fixFrozenBatchNorm()
        Tensor.crossEntropy(model(x), targets: y).backward()
        for (name, p) in model.namedParameters() {
            let frozen = name.hasPrefix("conv1") || name.hasPrefix("bn1")
            #expect((p.grad == nil) == frozen, "\(name)")
        }
        #expect(!model.bn1.isTraining && model.bn2.isTraining)
    }

    @Test func partialKeepsFrozenBatchNormStatistics() throws {
        let model = smallCNN(seed: 10)
        let mean1 = model.bn1.runningMean.scalars, var1 = model.bn1.runningVar.scalars
        let mean2 = model.bn2.runningMean.scalars
        let (x, y) = halvesTask(rows: 16, seed: 3)
        try FineTuner(model: model, strategy: .partial(.topBlocks(2), lr: 0.01), configuration: .init(epochs: 2))
            .fit(Batches(inputs: x, labels: y, batchSize: 4, seed: 1))
        #expect(model.bn1.runningMean.scalars == mean1 && model.bn1.runningVar.scalars == var1)
        #expect(model.bn2.runningMean.scalars != mean2)
        #expect(trainableNames(model) == ["conv2.weight", "bn2.weight", "bn2.bias", "fc.weight", "fc.bias"])
    }

    /// Records, at each epoch start (after the strategy applied), the trainable parameters and group rates.
    func schedule(_ strategy: FineTuningStrategy, epochs: Int) throws -> [(names: [String], rates: [Float])] {
        let model = fourBlockMLP()
        let tuner = try FineTuner(model: model, strategy: strategy, configuration: .init(epochs: epochs))
        var seen: [(names: [String], rates: [Float])] = []
        tuner.trainer.onEpochStart.append { _ in
            seen.append((trainableNames(model), tuner.trainer.optimizer.groups.map(\.options.learningRate)))
        }
        let (x, y) = blobs(rows: 8, seed: 1)
        try tuner.fit(Batches(inputs: x, labels: y, batchSize: 4, seed: 1))
        return seen
    }

    static let blockParameters = [["layers.0.weight", "layers.0.bias"], ["layers.2.weight", "layers.2.bias"],
                                  ["layers.4.weight", "layers.4.bias"], ["layers.6.weight", "layers.6.bias"]]
    func top(_ k: Int) -> [String] { Self.blockParameters.suffix(k).flatMap { $0 } }

    @Test func twoStageUnfreezesTheTopBlocksAfterTheHeadEpochs() throws {
        let seen = try schedule(.twoStage(headEpochs: 2, headLR: 0.01, thenTopBlocks: 3, lr2: 0.001), epochs: 4)
        #expect(seen.map(\.names) == [top(1), top(1), top(3), top(3)])
        #expect(seen.map { $0.rates[3] } == [0.01, 0.01, 0.001, 0.001])
    }

    @Test func gradualUnfreezingAddsOneBlockEveryNEpochs() throws {
        let seen = try schedule(.gradualUnfreezing(every: 2, lr: 0.01, lowestRate: 0.001), epochs: 7)
        #expect(seen.map(\.names) == [top(1), top(1), top(2), top(2), top(3), top(3), top(4)])
        let rates = seen[0].rates
        #expect(abs(rates[0] - 0.001) < 1e-9 && abs(rates[3] - 0.01) < 1e-9)
        #expect(rates[0] < rates[1] && rates[1] < rates[2] && rates[2] < rates[3])
    }

    @Test func gradualUnfreezingLeavesStillFrozenBlocksUnchanged() throws {
        let model = fourBlockMLP()
        let tuner = try FineTuner(model: model, strategy: .gradualUnfreezing(every: 1, lr: 0.05), configuration: .init(epochs: 2))
        let first = model.layers.layers[0] as! Linear, second = model.layers.layers[2] as! Linear
        let w0 = first.weight.scalars, w2 = second.weight.scalars
        let (x, y) = blobs(rows: 8, seed: 1)
        try tuner.fit(Batches(inputs: x, labels: y, batchSize: 4, seed: 1))
        #expect(first.weight.scalars == w0 && second.weight.scalars == w2)
        tuner.trainer.configuration.epochs = 1
        try tuner.fit(Batches(inputs: x, labels: y, batchSize: 4, seed: 1))
        #expect(first.weight.scalars == w0 && second.weight.scalars != w2)
    }

    @Test func autoFollowsTheDecisionMatrix() {
        #expect(FineTuningStrategy.auto(datasetSize: 500, similarity: .high).strategy == .featureExtraction(lr: 1e-3))
        #expect(FineTuningStrategy.auto(datasetSize: 500, similarity: .low).strategy == .partial(.topBlocks(2), lr: 1e-4))
        #expect(FineTuningStrategy.auto(datasetSize: 5000, similarity: .high).strategy == .partial(.topBlocks(3), lr: 1e-4))
        #expect(FineTuningStrategy.auto(datasetSize: 50000, similarity: .high).strategy == .fullFineTuning(lr: 1e-4))
        #expect(FineTuningStrategy.auto(datasetSize: 50000, similarity: .low).strategy
                == .fullFineTuning(lr: 1e-3, lowestRate: 1e-4))
        let (_, reason) = FineTuningStrategy.auto(datasetSize: 999, similarity: .high)
        #expect(reason.contains("999") && !reason.contains("\n"))
    }

    @Test func blockDepthCounts() {
        #expect(BlockDepth.topFraction(0.3).count(of: 10) == 3)
        #expect(BlockDepth.topBlocks(9).count(of: 4) == 4)
        #expect(FineTuningStrategy.fullFineTuning(lr: 1).trainableBlocks(total: 5, epoch: 0) == 5)
    }
}

/// SGD that records, at each step, whether frozen (body) and trainable (head) parameters carry a gradient.
final class GradientProbe: Optimizer {
    let inner: SGD
    var steps = 0, bodyHadGradient = false, headHadGradient = false
    var groups: [ParameterGroup] {
        get { inner.groups }
        set { inner.groups = newValue }
    }

    init(groups: [ParameterGroup]) throws { inner = try SGD(groups: groups) }

    func namedState() -> [(String, Tensor)] { inner.namedState() }

    func loadState(_ state: [(String, Tensor)]) throws { try inner.loadState(state) }

    func setLearningRate(_ rate: Float, group: Int) throws { try inner.setLearningRate(rate, group: group) }

    func step() {
        steps += 1
        for group in groups {
            for (name, p) in group.parameters where p.grad != nil {
                if name.hasPrefix("fc.") { headHadGradient = true } else { bodyHadGradient = true }
            }
        }
        inner.step()
    }
}
