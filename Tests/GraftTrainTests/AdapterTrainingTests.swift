import Foundation
import GraftCore
import GraftData
import GraftIO
import GraftNN
import GraftOptim
import Testing
@testable import GraftTrain

/// Fine-tuning a model with LoRA adapters: what trains under each strategy, what checkpoints hold, and the checks
/// on loading them.
@Suite struct AdapterTrainingTests {
    /// An MLP [4, 8, 8, 2] standing for a pretrained model, with LoRA on its two hidden layers (the head is layers.4).
    private func model(seed: UInt64 = 3) throws -> MLP {
        var rng = RandomGenerator(seed: seed)
        let mlp = MLP(sizes: [4, 8, 8, 2], using: &rng)
        try mlp.injectLoRA(targets: ["layers.0", "layers.2"], excluding: ["layers.4"], LoRAConfiguration(rank: 2), using: &rng)
        return mlp
    }

    private func tuner(_ model: MLP, _ strategy: FineTuningStrategy, epochs: Int = 2) throws -> FineTuner {
        try FineTuner(model: model, strategy: strategy, configuration: Trainer.Configuration(epochs: epochs),
                      makeOptimizer: { try AdamW(groups: $0) })
    }

    private let adapterNames = ["layers.0.lora_A.weight", "layers.0.lora_B.weight", "layers.2.lora_A.weight", "layers.2.lora_B.weight"]

    /// Only adapters and the head get gradients and move, under full fine-tuning and as gradual unfreezing opens
    /// blocks; the wrapped weights stay as they were.
    @Test func onlyAdaptersAndHeadTrain() throws {
        let (x, y) = blobs(rows: 30, seed: 5)
        let data = Batches(inputs: x, labels: y, batchSize: 8, seed: 2)
        for strategy in [FineTuningStrategy.fullFineTuning(lr: 0.05), .gradualUnfreezing(every: 1, lr: 0.05)] {
            let mlp = try model()
            let before = Dictionary(uniqueKeysWithValues: mlp.namedParameters().map { ($0.0, $0.1.scalars) })
            let t = try tuner(mlp, strategy, epochs: 3)
            try t.fit(data)
            let trainable = Set(adapterNames + ["layers.4.weight", "layers.4.bias"])
            for (name, p) in mlp.namedParameters() {
                #expect(p.requiresGrad == trainable.contains(name), "\(strategy): \(name)")
                #expect((p.scalars != before[name]!) == trainable.contains(name), "\(strategy): \(name) moved or not")
            }
            #expect(t.trainer.adapterStateKeys == trainable)
        }
    }

    /// Strategies under which no block holding adapters trains are refused.
    @Test func refusesHeadOnlyStrategies() throws {
        for strategy in [FineTuningStrategy.featureExtraction(lr: 0.1), .partial(.topBlocks(1), lr: 0.1)] {
            #expect(throws: AdapterStrategyError.self) { try tuner(try model(), strategy) }
        }
        // Two-stage trains the head first, then the top two blocks: the upper adapters train.
        _ = try tuner(try model(), .twoStage(headEpochs: 1, headLR: 0.1, thenTopBlocks: 2, lr2: 0.01))
    }

    /// A checkpoint holds the adapters and the head with the base's checksum; it loads over the same base, and a
    /// changed base is refused with the file named.
    @Test func adapterCheckpoints() throws {
        let (x, y) = blobs(rows: 20, seed: 6)
        let mlp = try model()
        let t = try tuner(mlp, .fullFineTuning(lr: 0.05))
        let reports = try t.fit(Batches(inputs: x, labels: y, batchSize: 5, seed: 1))
        let dir = NSTemporaryDirectory() + "graft-adapters-\(UUID().uuidString)"
        try Checkpoint.save(t.trainer, state: CheckpointState(trainer: t.trainer, strategyEpoch: 2, recipe: [], report: reports.last),
                            to: dir)
        #expect(Checkpoint.holdsAdapters(dir) && !FileManager.default.fileExists(atPath: "\(dir)/model.safetensors"))
        let file = try SafeTensorsFile(path: "\(dir)/adapters.safetensors")
        #expect(try file.tensors().map(\.0) == ["layers.0.lora_A.weight", "layers.0.lora_B.weight", "layers.2.lora_A.weight",
                                                 "layers.2.lora_B.weight", "layers.4.weight", "layers.4.bias"])

        let fresh = try model()
        try Checkpoint.loadModel(fresh, from: dir)
        #expect(fresh.stateDict().map(\.1.scalars) == mlp.stateDict().map(\.1.scalars))
        #expect(try Checkpoint.loadWeights(from: dir, over: fresh).map(\.1.scalars) == mlp.stateDict().map(\.1.scalars))

        let otherBase = try model(seed: 4)
        #expect { try Checkpoint.loadModel(otherBase, from: dir) } throws: { error in
            "\(error)".contains("adapters.safetensors: the model's frozen base weights")
        }
        // A model without those adapters does not hold the file's tensors.
        var rng = RandomGenerator(seed: 3)
        #expect { try Checkpoint.loadModel(MLP(sizes: [4, 8, 8, 2], using: &rng), from: dir) } throws: { error in
            "\(error)".contains("tensor 'layers.0.lora_A.weight' is not in the model")
        }
    }
}
