import Foundation
import GraftCore
import GraftIO
import GraftNN
import GraftOptim

/// Everything besides the weights and optimizer slots that a run needs to continue where it stopped; `state.json`.
public struct CheckpointState: Codable, Sendable {
    public struct Best: Codable, Sendable {
        public var value: Double
        public var epoch: Int
    }

    public struct GroupState: Codable, Sendable {
        public var name: String
        public var baseLR: Float
        public var lr: Float
        public var frozen: Bool
    }

    /// Epochs completed and optimizer steps taken.
    public var epoch: Int
    public var step: Int
    /// Inside epoch `epoch` (0-based: the one after those completed), when a run stopped mid-epoch.
    public var epochPosition: EpochPosition?
    /// The strategy's position in its stages (ahead of `epoch` when an early-stopped stage was skipped).
    public var strategyEpoch: Int
    public var best: Best?
    public var stopping: EarlyStopping?
    public var plateau: ReduceOnPlateau.State?
    public var groups: [GroupState]
    /// The number of ranks that wrote it.
    public var ranks: Int
    /// The recipe's fields after overrides, `path=value`, in file order.
    public var recipe: [String]
    /// The last epoch's figures.
    public var metrics: EpochMetrics?
    /// What using the weights needs: the `--set` overrides the recipe ran with, the class names in output order,
    /// and the shape of one input row (nil in checkpoints of older runs).
    public var overrides: [String]?
    public var classes: [String]?
    public var inputShape: [Int]?
    /// Pseudo-labelling stopped inside an epoch: the labels that epoch trains with.
    public var pseudoLabels: DomainAdaptation.PseudoLabels?
    /// A multi-task run: the task losses DWA weighs by (and the epoch under way's).
    public var tasks: MultiTaskObjective.State?

    /// The trainer's position after `report`.
    public init(trainer: Trainer, strategyEpoch: Int, recipe: [String], report: EpochReport?, overrides: [String]? = nil,
                classes: [String]? = nil, inputShape: [Int]? = nil) {
        epoch = trainer.epochCount
        step = trainer.stepCount
        epochPosition = trainer.interruptedAt
        self.strategyEpoch = strategyEpoch
        best = zip(trainer.bestValue, trainer.bestEpoch).map { Best(value: $0, epoch: $1) }
        stopping = trainer.stopping
        plateau = trainer.plateau?.state
        groups = trainer.optimizer.groups.enumerated().map { i, g in
            GroupState(name: g.name, baseLR: trainer.baseRates[i], lr: g.options.learningRate, frozen: g.frozen)
        }
        ranks = trainer.communicator.size
        self.recipe = recipe
        metrics = report.map(EpochMetrics.init)
        (self.overrides, self.classes, self.inputShape) = (overrides, classes, inputShape)
    }
}

private func zip<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}

/// One epoch's figures as `metrics.jsonl` and `state.json` hold them; a non-finite value (a diverged loss) is null.
public struct EpochMetrics: Codable, Sendable {
    public var epoch: Int
    public var trainLoss: Double?
    public var loss: Double?
    public var accuracy: Double?
    public var macroF1: Double?
    public var monitored: Double?
    public var improved: Bool
    public var lr: [Float?]
    public var skippedSteps: Int
    public var seconds: Double?
    /// A multi-task run's figures per task.
    public var tasks: [TaskMetrics]?

    public init(_ report: EpochReport) {
        func finite(_ x: Double) -> Double? { x.isFinite ? x : nil }
        epoch = report.epoch
        trainLoss = finite(report.trainLoss)
        loss = finite(report.evaluation.loss)
        accuracy = finite(report.evaluation.accuracy)
        macroF1 = finite(report.evaluation.macroF1)
        monitored = finite(report.monitored)
        improved = report.improved
        lr = report.learningRates.map { $0.isFinite ? $0 : nil }
        skippedSteps = report.skippedSteps
        // Training losses and weights per task are the objective's to add (`MultiTaskObjective.metrics`).
        if !report.evaluation.tasks.isEmpty { tasks = report.evaluation.tasks.map { TaskMetrics($0, trainLoss: nil, weight: nil) } }
    }

    enum CodingKeys: String, CodingKey {
        case epoch, trainLoss = "train_loss", loss, accuracy, macroF1 = "macro_f1", monitored, improved, lr
        case skippedSteps = "skipped_steps", seconds, tasks
    }
}

/// JSON text of a value, keys sorted; `pretty` for files people read.
public func jsonText(_ value: some Encodable, pretty: Bool = true) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self) + (pretty ? "\n" : "")
}

/// A checkpoint directory: `model.safetensors` (the state dict under PyTorch/HF names, loadable in Python as is),
/// `optimizer.safetensors` (per-parameter state as `parameter.slot`, PyTorch's slot names) and `state.json`
/// (`CheckpointState`). Written atomically: a crash or an error leaves the previous checkpoint of that name as it was.
///
/// A model with adapters (`Trainer.adapterStateKeys`) is saved as `adapters.safetensors` instead of
/// `model.safetensors`: the adapter tensors, the head and the buffers, and in its metadata `base_checksum`, a checksum
/// of the rest of the state dict (the frozen pretrained base, which loading takes from the model as built). Loading
/// refuses a base whose checksum differs, so a resumed or evaluated run uses exactly the weights it trained beside.
public enum Checkpoint {
    /// Writes the trainer's model, optimizer state and `state` into `directory`.
    public static func save(_ trainer: Trainer, state: CheckpointState, to directory: String) throws {
        let optimizerState = trainer.optimizer.namedState()
        let stateText = try jsonText(state)
        let all = trainer.model.stateDict()
        let (file, tensors): (String, [(String, Tensor)])
        var metadata: [String: String]
        if let keys = trainer.adapterStateKeys {
            (file, tensors) = (adaptersFile, all.filter { keys.contains($0.0) })
            metadata = ["format": "pt", baseChecksumKey: baseChecksum(all.filter { !keys.contains($0.0) })]
        } else {
            (file, tensors, metadata) = (modelFile, all, ["format": "pt"])
        }
        // Modules trained beside the model (a projection head, a domain classifier), which loading a body drops.
        if let extra = trainer.model as? WithAuxiliaries {
            metadata[auxiliaryKey] = extra.auxiliaries.map(\.0).joined(separator: ",")
        }
        try AtomicDirectory.write(directory) { dir in
            try SafeTensors.write(tensors, to: "\(dir)/\(file)", metadata: metadata)
            try SafeTensors.write(optimizerState, to: "\(dir)/optimizer.safetensors")
            try AtomicDirectory.writeFile(stateText, named: "state.json", in: dir)
        }
    }

    /// The weights file of an ordinary checkpoint, and of a checkpoint of a model with adapters.
    public static let modelFile = "model.safetensors", adaptersFile = "adapters.safetensors"
    static let baseChecksumKey = "base_checksum"
    /// Metadata naming the auxiliary modules (comma-separated) whose tensors a model file holds beside the model's.
    public static let auxiliaryKey = "auxiliary_modules"

    /// Whether `directory` holds adapters (and the head) rather than the whole model.
    public static func holdsAdapters(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(directory)/\(adaptersFile)")
    }

    /// FNV-1a (64 bits) over the names, shapes and float bits of `tensors`, as hex: equal only for the same weights.
    public static func baseChecksum(_ tensors: [(String, Tensor)]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt64) { hash = (hash ^ byte) &* 0x100_0000_01b3 }
        for (name, t) in tensors {
            for byte in name.utf8 { mix(UInt64(byte)) }
            for d in t.shape { mix(UInt64(truncatingIfNeeded: d)) }
            // Whole 32-bit words: the tensors are large and a word at a time keeps this fast.
            for i in 0..<t.count { mix(UInt64(t.pointer[i].bitPattern)) }
        }
        return String(hash, radix: 16)
    }

    /// Reads `directory/state.json`.
    public static func loadState(from directory: String) throws -> CheckpointState {
        let path = "\(directory)/state.json"
        let bytes: [UInt8]
        do { bytes = try readRegularFile(path) } catch {
            throw CheckpointError(path: path, "cannot read (is this a checkpoint directory?): \(error.problem)")
        }
        do { return try JSONDecoder().decode(CheckpointState.self, from: Data(bytes)) } catch let DecodingError.keyNotFound(key, context) {
            throw CheckpointError(path: path, "field '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))' is missing")
        } catch {
            throw CheckpointError(path: path, "not a Graft checkpoint state: \(error)")
        }
    }

    /// The whole state dict a checkpoint holds for `model`: the tensors of `directory/model.safetensors`, or, for a
    /// checkpoint of adapters, `model`'s own state with those of `adapters.safetensors` in place (its base checked).
    public static func loadWeights(from directory: String, over model: Module) throws -> [(String, Tensor)] {
        guard holdsAdapters(directory) else { return try SafeTensorsFile(path: "\(directory)/\(modelFile)").tensors() }
        let saved = Dictionary(uniqueKeysWithValues: try adapterTensors(in: directory, for: model))
        return model.stateDict().map { ($0.0, saved[$0.0] ?? $0.1) }
    }

    /// Loads the checkpoint's weights into `model`, strictly: every tensor must match by name and shape (for a
    /// checkpoint of adapters, every tensor of `adapters.safetensors`, and the model's other weights the checksum).
    public static func loadModel(_ model: Module, from directory: String) throws {
        if holdsAdapters(directory) {
            let tensors = try adapterTensors(in: directory, for: model)
            try model.load(Dictionary(uniqueKeysWithValues: tensors), strict: false, source: "\(directory)/\(adaptersFile)")
            return
        }
        let file = try SafeTensorsFile(path: "\(directory)/\(modelFile)")
        try model.load(Dictionary(uniqueKeysWithValues: try file.tensors()), strict: true, source: file.path)
    }

    /// The tensors of `directory/adapters.safetensors`, checked against `model`: each a tensor of the model with its
    /// shape, and the model's other tensors those the adapters were trained beside.
    private static func adapterTensors(in directory: String, for model: Module) throws -> [(String, Tensor)] {
        let file = try SafeTensorsFile(path: "\(directory)/\(adaptersFile)")
        let tensors = try file.tensors()
        let own = Dictionary(uniqueKeysWithValues: model.stateDict())
        for (name, t) in tensors {
            guard let mine = own[name] else {
                throw CheckpointError(path: file.path, "tensor '\(name)' is not in the model (are the recipe's adapters the run's?)")
            }
            guard mine.shape == t.shape else {
                throw CheckpointError(path: file.path, "tensor '\(name)' is \(t.shape), the model's \(mine.shape)")
            }
        }
        let names = Set(tensors.map(\.0))
        let expected = file.metadata[baseChecksumKey]
        let found = baseChecksum(model.stateDict().filter { !names.contains($0.0) })
        guard expected == found else {
            throw CheckpointError(path: file.path, "the model's frozen base weights (checksum \(found)) are not those the adapters "
                + "were trained beside (\(expected ?? "none recorded")): have the pretrained weights (model.weights) changed?")
        }
        return tensors
    }

    /// Loads `directory/optimizer.safetensors` into `optimizer`.
    public static func loadOptimizer(_ optimizer: any Optimizer, from directory: String) throws {
        let file = try SafeTensorsFile(path: "\(directory)/optimizer.safetensors")
        do { try optimizer.loadState(try file.tensors()) } catch {
            throw CheckpointError(path: file.path, "\(error)")
        }
    }
}

/// A checkpoint that cannot be read back: which file, and why.
public struct CheckpointError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public init(path: String, _ problem: String) { (self.path, self.problem) = (path, problem) }
    public var description: String { "\(path): \(problem)" }
}
