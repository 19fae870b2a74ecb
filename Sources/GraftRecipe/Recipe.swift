import Foundation
import GraftCore
import GraftData
import GraftDistributed
import GraftIO
import GraftNN
import GraftOptim
import GraftTrain

/// A training recipe: what to fine-tune on what, how, and where the results go. Read from YAML (see
/// `recipes/*.yaml`), every field typed and checked, unknown fields refused.
public struct Recipe {
    public enum DataFormat: String, CaseIterable, Sendable {
        case textFolder = "text-folder", csv, imageFolder = "image-folder", idx
    }

    public struct DataSpec {
        public var format: DataFormat
        public var path: String
        /// Fractions of each class held out for validation and test.
        public var validation: Double, test: Double
        /// Text: tokens per document, [CLS] and [SEP] included; the WordPiece vocabulary (default: the model's).
        public var maxTokens: Int
        public var vocabulary: String?
        /// CSV: each feature is multiplied by `scale`; `image` [C, H, W] reshapes rows into images.
        public var scale: Float
        public var image: [Int]?
        /// CSV images: cut to [top, left, height, width], then resampled to [height, width] (antialiased bilinear).
        public var crop: [Int]?
        public var resize: [Int]?
        /// At most this many rows of each class, chosen by the split seed before splitting (for quick runs).
        public var limitPerClass: Int?
        /// At most this many training rows of each class, chosen by the recipe's seed after the split: validation
        /// and test rows stay those of the whole data (learning curves over training-set sizes).
        public var trainPerClass: Int?
        /// The seed of `limit-per-class` and the split (default: the recipe's), so that runs of other seeds keep
        /// the same validation and test rows.
        public var splitSeed: UInt64?
        /// Images (image-folder, idx): the IDX labels file and class names, the channels (1 or 3) and size
        /// [height, width] images are stored at, and the pipelines rows go through (see RecipeImages.swift).
        public var labels: String?
        public var classNames: [String]?
        public var channels = 3
        public var size: [Int] = []
        public var trainPipeline = ImagePipeline(), evalPipeline = ImagePipeline()
    }

    public enum Architecture: String, CaseIterable, Sendable {
        case bert, mlp, smallCNN = "small-cnn", resnet18, resnet34, resnet50, efficientnetLite0 = "efficientnet-lite0"
    }

    public struct ModelSpec {
        public var architecture: Architecture
        /// Pretrained weights: a directory with `model.safetensors` and `config.json` (BERT) or a safetensors
        /// file; nil trains from PyTorch's default initialisation.
        public var weights: String?
        public var pooling: BertPooling
        /// MLP hidden widths.
        public var hidden: [Int]
        /// ResNet: the 3×3 stride-1 stem for small images.
        public var smallImageStem: Bool
        /// False builds the architecture (BERT's from its config) with fresh weights instead of the pretrained ones:
        /// the from-scratch baseline.
        public var pretrained = true
        /// BERT: keep only the first this many encoder layers (a shallower student); nil keeps them all.
        public var layers: Int?
        var layersLine: Int?
        var file = ""
    }

    public struct OptimizerSpec {
        public var kind: OptimizerKind
        /// Options beyond the learning rate, which the strategy sets per block.
        public var options: GroupOptions
    }

    public struct TrainingSpec {
        public var epochs: Int
        public var batchSize: Int
        public var accumulationSteps: Int
        public var clipGradientNorm: Float?
        public var monitor: String
        public var patience: Int?
        public var minDelta: Double
        public var labelSmoothing: Float
        public var trainFrozenBatchNorm: Bool
        /// Data parallelism: compare a checksum of the replicas every this many steps; bytes per gradient bucket.
        public var checkReplicasEvery: Int?
        public var bucketBytes: Int
        /// Batch norm in training mode normalises over the global batch (a sum over ranks per layer, forward and
        /// backward) instead of each rank's rows.
        public var syncBatchNorm: Bool
        public var onNonFinite: NonFinitePolicy
        /// Seconds a step may take on several ranks before the job is ended as stuck.
        public var stepTimeout: Double
        /// The arithmetic of matrix products while training and evaluating (`precision: bf16`: bfloat16 operands,
        /// fp32 sums and weights).
        public var precision: MatmulPrecision = .float32
    }

    public var file: String
    public var seed: UInt64
    public var data: DataSpec
    public var model: ModelSpec
    /// Domain adaptation to a target domain; `data` is then the source.
    public var adaptation: AdaptationSpec?
    /// Adapters (LoRA) trained beside the frozen pretrained model.
    public var adapters: AdapterSpec?
    /// Several tasks on one body, a head each (`tasks:` and `task-weighting:`).
    public var tasks: TasksSpec?
    /// Knowledge distillation from a trained teacher run.
    public var distillation: DistillationSpec?
    /// Contrastive pre-training (SimCLR) on the training rows, their labels unused.
    public var contrastive: ContrastiveSpec?
    /// The strategy by name with its fields; resolved once the data size is known (`auto` needs it).
    public var strategy: StrategySpec
    public var optimizer: OptimizerSpec
    /// The schedule's name and options, built once the number of steps is known.
    public var schedule: (kind: ScheduleKind, options: NamedOptions)?
    public var training: TrainingSpec
    /// L2-SP towards the pretrained weights (RecipeForgetting.swift).
    public var regularization: RegularizationSpec?
    /// A sequence of tasks for `graft continual` (RecipeForgetting.swift).
    public var continual: ContinualSpec?
    /// The run directory: checkpoints `best/` and `last/`, `metrics.jsonl`, `results.json`, the recipe.
    public var output: String?
    /// Every scalar of the recipe after overrides, as `field.path` and its text in file order: what a resumed run
    /// must agree with.
    public var fields: [(path: String, value: String)] = []
    /// The `field.path=value` overrides applied to the file.
    public var overrides: [String] = []

    /// Reads `path`, applies `overrides` (`field.path=value`), and checks every field.
    public static func load(path: String, overrides: [String] = []) throws -> Recipe {
        var root: YAMLNode = try YAML.load(path: path)
        for o in overrides { root = try override(root, o, file: path) }
        var recipe = try Recipe(root, file: path)
        recipe.fields = flatten(root)
        recipe.overrides = overrides
        return recipe
    }

    init(_ root: YAMLNode, file: String) throws {
        self.file = file
        var top = try Fields(root, path: "", file: file)
        try top.checkKnown(["seed", "data", "adaptation", "model", "adapters", "strategy", "optimizer", "schedule", "training", "output",
                            "regularization", "continual", "tasks", "task-weighting", "distillation", "contrastive"])
        seed = UInt64(try top.int("seed", min: 0) ?? 0)
        output = try top.string("output")
        if output?.isEmpty == true { throw top.error("output", "is empty; name a directory, or leave output out to save nothing") }

        var d = try top.section("data")
        data = try DataSpec(&d)
        try d.finish()
        if top.has("adaptation") {
            var a = try top.section("adaptation")
            adaptation = try AdaptationSpec(&a, source: data)
            try a.finish()
        } else {
            _ = top.node("adaptation")
        }

        var m = try top.section("model")
        model = try ModelSpec(&m)
        try m.finish()

        var t = try top.section("training")
        guard let epochs = try t.int("epochs", min: 1) else { throw t.error("epochs", "is required") }
        training = TrainingSpec(
            epochs: epochs, batchSize: try t.int("batch-size", min: 1) ?? 32,
            accumulationSteps: try t.int("accumulation-steps", min: 1) ?? 1,
            clipGradientNorm: try t.double("clip-grad-norm").map(Float.init),
            monitor: try t.choice("monitor", ["loss", "accuracy", "macro-f1"], default: "loss")!,
            patience: try t.int("patience", min: 0), minDelta: try t.double("min-delta") ?? 0,
            labelSmoothing: Float(try t.fraction("label-smoothing") ?? 0),
            trainFrozenBatchNorm: try t.bool("train-frozen-batch-norm") ?? false,
            checkReplicasEvery: try t.int("check-replicas-every", min: 1),
            bucketBytes: (try t.int("bucket-kib", min: 1) ?? GradientReducer.defaultBucketBytes / 1024) * 1024,
            syncBatchNorm: try t.bool("sync-batch-norm") ?? false,
            onNonFinite: NonFinitePolicy(rawValue: try t.choice("on-non-finite", NonFinitePolicy.allCases.map(\.rawValue),
                                                                default: "stop")!)!,
            stepTimeout: try t.double("step-timeout") ?? 1800,
            precision: MatmulPrecision(rawValue: try t.choice("precision", MatmulPrecision.allCases.map(\.rawValue),
                                                              default: "fp32")!)!)
        if !(training.stepTimeout > 0) { throw t.error("step-timeout", "must be > 0 seconds, got \(training.stepTimeout)") }
        if let clip = training.clipGradientNorm, !(clip > 0) { throw t.error("clip-grad-norm", "must be > 0, got \(clip)") }
        if training.minDelta < 0 { throw t.error("min-delta", "must be ≥ 0, got \(training.minDelta)") }
        try t.finish()

        var s = try top.section("strategy")
        strategy = try StrategySpec(&s)
        try s.finish()
        if top.has("adapters") {
            var a = try top.section("adapters")
            adapters = try AdapterSpec(&a, model: model)
            try a.finish()
            try AdapterSpec.check(strategy: strategy, strategyFields: s, adaptation: adaptation, file: file, line: a.line)
        } else {
            _ = top.node("adapters")
        }
        if top.has("tasks") || top.has("task-weighting") {
            tasks = try TasksSpec(&top)
            for other in ["adaptation", "adapters", "distillation"] where top.has(other) {
                throw top.error("tasks", "multi-task training with \(other) is not supported")
            }
        }

        if top.has("distillation") {
            var d = try top.section("distillation")
            distillation = try DistillationSpec(&d)
            try d.finish()
            try distillation!.check(adaptation: adaptation, adapters: adapters)
        } else {
            _ = top.node("distillation")
        }

        var o = try top.section("optimizer")
        let kindName = try o.string("name", default: "adam")
        do { optimizer = OptimizerSpec(kind: try OptimizerKind(named: kindName), options: GroupOptions(learningRate: 0)) } catch {
            throw o.error("name", "\(error)")
        }
        optimizer.options.weightDecay = Float(try o.double("weight-decay") ?? 0)
        switch optimizer.kind {
        case .sgd:
            optimizer.options.momentum = Float(try o.double("momentum") ?? 0)
            optimizer.options.dampening = Float(try o.double("dampening") ?? 0)
            optimizer.options.nesterov = try o.bool("nesterov") ?? false
        case .adam, .adamw:
            if optimizer.kind == .adamw && !o.has("weight-decay") { optimizer.options.weightDecay = 0.01 }
            if let betas = o.node("betas") {
                let values = betas.items?.compactMap { $0.scalar.flatMap(Float.init) } ?? []
                guard values.count == 2 && betas.items?.count == 2 else { throw o.error("betas", "must be a list of two numbers") }
                optimizer.options.betas = (values[0], values[1])
            }
            optimizer.options.eps = Float(try o.double("eps") ?? 1e-8)
        case .rmsprop:
            optimizer.options.alpha = Float(try o.double("alpha") ?? 0.99)
            optimizer.options.eps = Float(try o.double("eps") ?? 1e-8)
            optimizer.options.momentum = Float(try o.double("momentum") ?? 0)
            optimizer.options.centered = try o.bool("centered") ?? false
        }
        // The optimizer's own checks run on these options with the first group; an early look names the field.
        let probe = ParameterGroup(name: "optimizer", parameters: [("probe", .zeros([1]))], options: optimizer.options)
        do { _ = try optimizer.kind.make([probe]) } catch {
            throw RecipeError(file: file, line: o.line, field: "optimizer", "\(error)")
        }
        try o.finish()

        if top.has("schedule") {
            var sc = try top.section("schedule")
            guard let name = try sc.string("name") else { throw sc.error("name", "is required") }
            let kind: ScheduleKind
            do { kind = try ScheduleKind(named: name) } catch { throw sc.error("name", "\(error)") }
            var options = try sc.namedOptions(owner: "schedule \(name)", excluding: ["name"])
            if kind == .plateau && !sc.has("mode") {
                options = options.adding("mode", training.monitor == "loss" ? "min" : "max")
            }
            // Options are checked now, against a long run; the real step count is known once the data is. The
            // message names the schedule and the option itself ("schedule step: invalid option step-size = …").
            do { _ = try kind.make(options, totalSteps: 1 << 20) } catch let error as ScheduleError {
                throw RecipeError(file: file, line: sc.line(of: error.option), field: "", "\(error)")
            }
            schedule = (kind, options)
            try sc.finish()
        } else {
            _ = top.node("schedule")
            schedule = nil
        }
        if top.has("contrastive") {
            var c = try top.section("contrastive")
            contrastive = try ContrastiveSpec(&c, data: data)
            try c.finish()
            try ContrastiveSpec.check(self, strategy: s, training: t)
        } else {
            _ = top.node("contrastive")
        }
        try readForgetting(&top)
        try top.finish()
    }
}

extension Recipe.DataSpec {
    init(_ f: inout Fields) throws {
        guard let formatName = try f.choice("format", Recipe.DataFormat.allCases.map(\.rawValue)) else {
            throw f.error("format", "is required (\(Recipe.DataFormat.allCases.map(\.rawValue).joined(separator: " or ")))")
        }
        let format = Recipe.DataFormat(rawValue: formatName)!
        guard let dataPath = try f.string("path") else { throw f.error("path", "is required") }
        self = Recipe.DataSpec(format: format, path: dataPath, validation: try f.fraction("validation") ?? 0.1,
                        test: try f.fraction("test") ?? 0.2, maxTokens: 128, vocabulary: nil, scale: 1, image: nil,
                        limitPerClass: try f.int("limit-per-class", min: 1), trainPerClass: try f.int("train-per-class", min: 1),
                        splitSeed: try f.int("split-seed", min: 0).map(UInt64.init))
        guard validation + test < 1 else {
            throw f.error("test", "validation + test must leave rows to train on, got \(validation + test)")
        }
        switch format {
        case .imageFolder, .idx:
            try readImageFields(&f)
        case .textFolder:
            maxTokens = try f.int("max-tokens", min: 3) ?? 128
            vocabulary = try f.string("vocabulary")
        case .csv:
            scale = Float(try f.double("scale") ?? 1)
            image = try f.ints("image")
            if let image = image, image.count != 3 || image.contains(where: { $0 <= 0 }) {
                throw f.error("image", "must be [channels, height, width] of positive sizes, got \(excerpt("\(image)"))")
            }
            crop = try f.ints("crop")
            if let crop {
                guard let image else { throw f.error("crop", "needs image: [channels, height, width] to know the rows are images") }
                guard crop.count == 4 && crop.allSatisfy({ $0 >= 0 }) && crop[2] > 0 && crop[3] > 0
                        && crop[0] + crop[2] <= image[1] && crop[1] + crop[3] <= image[2] else {
                    throw f.error("crop", "must be [top, left, height, width] inside the \(image[1])×\(image[2]) image, got \(excerpt("\(crop)"))")
                }
            }
            resize = try f.ints("resize")
            if let resize {
                guard image != nil else { throw f.error("resize", "needs image: [channels, height, width] to know the rows are images") }
                guard resize.count == 2 && resize.allSatisfy({ $0 > 0 && $0 <= 4096 }) else {
                    throw f.error("resize", "must be [height, width], each 1 to 4096, got \(excerpt("\(resize)"))")
                }
            }
            if let image {
                try readPipelines(&f, stored: [image[0]] + (resize ?? crop.map { [$0[2], $0[3]] } ?? Array(image.dropFirst())))
            } else if let key = ["transforms", "normalize"].first(where: { f.has($0) }) {
                throw f.error(key, "needs image: [channels, height, width] to know the rows are images")
            }
        }
    }
}

/// A strategy as a recipe names it, before the training-set size is known.
public struct StrategySpec {
    public enum Name: String, CaseIterable, Sendable {
        case featureExtraction = "feature-extraction", full, partial, twoStage = "two-stage"
        case gradualUnfreezing = "gradual-unfreezing", auto
    }

    public var name: Name
    /// The strategy for every name but `auto`.
    public var fixed: FineTuningStrategy?
    /// `auto`: how close the data is to the pretraining domain.
    public var similarity: DomainSimilarity = .high

    init(_ f: inout Fields) throws {
        guard let n = try f.choice("name", Name.allCases.map(\.rawValue)) else {
            throw f.error("name", "is required (\(Name.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        name = Name(rawValue: n)!
        func need<T>(_ value: T?, _ key: String) throws -> T {
            guard let value else { throw f.error(key, "is required for strategy \(n)") }
            return value
        }
        switch name {
        case .featureExtraction:
            fixed = .featureExtraction(lr: try need(f.rate("lr"), "lr"), cached: try f.bool("cached") ?? true)
        case .full:
            fixed = .fullFineTuning(lr: try need(f.rate("lr"), "lr"), lowestRate: try f.rate("lowest-lr"))
        case .partial:
            let lr = try need(f.rate("lr"), "lr")
            switch (try f.int("top-blocks", min: 1), try f.double("top-fraction")) {
            case let (k?, nil): fixed = .partial(.topBlocks(k), lr: lr)
            case let (nil, x?):
                guard x > 0 && x <= 1 else { throw f.error("top-fraction", "must be in (0, 1], got \(x)") }
                fixed = .partial(.topFraction(x), lr: lr)
            default: throw f.error("top-blocks", "give exactly one of top-blocks and top-fraction")
            }
        case .twoStage:
            fixed = .twoStage(headEpochs: try need(f.int("head-epochs", min: 0), "head-epochs"),
                              headLR: try need(f.rate("head-lr"), "head-lr"),
                              thenTopBlocks: try need(f.int("top-blocks", min: 1), "top-blocks"),
                              lr2: try need(f.rate("lr"), "lr"), cachedHead: try f.bool("cached-head") ?? true)
        case .gradualUnfreezing:
            fixed = .gradualUnfreezing(every: try f.int("every", min: 1) ?? 1, lr: try need(f.rate("lr"), "lr"),
                                       lowestRate: try f.rate("lowest-lr"))
        case .auto:
            similarity = try f.choice("similarity", ["high", "low"], default: "high") == "high" ? .high : .low
        }
    }

    /// The strategy for a training set of `rows`, with the reason when `auto` chose it.
    public func resolve(rows: Int) -> (FineTuningStrategy, reason: String?) {
        if let fixed { return (fixed, nil) }
        let (strategy, reason) = FineTuningStrategy.auto(datasetSize: rows, similarity: similarity)
        return (strategy, reason)
    }
}

/// The scalars under `node` as (dotted path, text), sequences indexed from 0.
func flatten(_ node: YAMLNode, prefix: String = "") -> [(path: String, value: String)] {
    switch node.kind {
    case .null: [(prefix, "~")]
    case let .scalar(text, _): [(prefix, text)]
    case let .sequence(items): items.enumerated().flatMap { flatten($1, prefix: "\(prefix).\($0)") }
    case let .mapping(entries): entries.flatMap { flatten($0.value, prefix: prefix.isEmpty ? $0.key : "\(prefix).\($0.key)") }
    }
}
