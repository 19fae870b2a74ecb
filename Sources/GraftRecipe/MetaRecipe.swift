import Foundation
import GraftCore
import GraftData
import GraftIO

/// A meta-learning recipe (`graft meta-train`): where tasks come from, the algorithm and its loops, the model, and
/// the run directory. Every field is typed and checked as in a training recipe; see `recipes/*-maml.yaml`.
public struct MetaRecipe {
    public enum Source: String, CaseIterable, Sendable { case sinusoid, glyphs, data }
    public enum Algorithm: String, CaseIterable, Sendable {
        case maml, firstOrderMAML = "first-order-maml", reptile, protonet
        /// Joint training on every task's points, then fine-tuning at test time: the MAML paper's baseline.
        case pretrain
    }
    public enum Architecture: String, CaseIterable, Sendable { case mlp, conv4 }
    public enum OuterSchedule: String, CaseIterable, Sendable { case constant, linear }

    public struct Tasks {
        public var source: Source
        /// Classification: N-way, K-shot, Q queries per class; regression: K support and Q query points.
        public var ways: Int, shots: Int, queries: Int
        /// Fractions of the classes (CSV) or scripts (glyphs) held out for meta-validation and meta-test.
        public var validation: Double, test: Double
        /// Labelled rows (CSV or a text folder), as under a training recipe's `data:`, split by class.
        public var data: Recipe.DataSpec?
        /// Glyphs: characters per script, samples rendered per character, image side.
        public var charactersPerScript = 20, samplesPerClass = 20, side = 28
    }

    public struct Loop {
        public var algorithm: Algorithm
        public var innerSteps: Int, innerRate: Float
        /// Adaptation steps at meta-validation and meta-test (default `innerSteps`).
        public var testInnerSteps: Int
        public var metaBatch: Int, metaSteps: Int
        /// Adam's rate for the meta-gradient algorithms; Reptile's outer step size ε.
        public var outerRate: Float
        /// `linear` anneals `outerRate` to 0 over the meta-steps, as Reptile's paper does with ε.
        public var outerSchedule: OuterSchedule = .constant
        public var validateEvery: Int, validationTasks: Int
    }

    public var file: String
    public var seed: UInt64
    public var tasks: Tasks
    public var meta: Loop
    public var architecture: Architecture
    public var hidden: [Int]
    public var filters: Int
    /// A pretrained body under the meta-learned MLP: meta-learning on top of transfer.
    public var body: Body?

    public struct Body {
        /// A `graft train` run directory whose model, without its head, is the body; or a model of a training
        /// recipe's kind (`architecture`, `weights`, …) with its pretrained weights.
        public var run: String?
        public var model: Recipe.ModelSpec?
        /// Frozen, the body's features are computed once and tasks are episodes over them; unfrozen (MLP bodies),
        /// its layers become the first layers of the meta-learned MLP.
        public var freeze: Bool
        /// Unfrozen: the body's outer rate relative to `meta.outer-lr` (discriminative rates).
        public var rateScale: Float
    }
    public var output: String?
    public var fields: [(path: String, value: String)] = []
    public var overrides: [String] = []

    public static func load(path: String, overrides: [String] = []) throws -> MetaRecipe {
        var root: YAMLNode = try YAML.load(path: path)
        for o in overrides { root = try override(root, o, file: path) }
        var recipe = try MetaRecipe(root, file: path)
        (recipe.fields, recipe.overrides) = (flatten(root), overrides)
        return recipe
    }

    init(_ root: YAMLNode, file: String) throws {
        self.file = file
        var top = try Fields(root, path: "", file: file)
        try top.checkKnown(["seed", "tasks", "meta", "model", "output"])
        seed = UInt64(try top.int("seed", min: 0) ?? 0)
        output = try top.string("output")
        if output?.isEmpty == true { throw top.error("output", "is empty; name a directory, or leave output out to save nothing") }

        var t = try top.section("tasks")
        guard let sourceName = try t.choice("source", Source.allCases.map(\.rawValue)) else {
            throw t.error("source", "is required (\(Source.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let source = Source(rawValue: sourceName)!
        let regression = source == .sinusoid
        tasks = Tasks(source: source, ways: regression ? 1 : try t.int("ways", min: 2) ?? 5,
                      shots: try t.int("shots", min: 1) ?? (regression ? 10 : 1), queries: try t.int("queries", min: 1) ?? (regression ? 10 : 15),
                      validation: regression ? 0 : try t.fraction("validation") ?? 0.15, test: regression ? 0 : try t.fraction("test") ?? 0.3,
                      data: nil)
        switch source {
        case .sinusoid: break
        case .glyphs:
            tasks.charactersPerScript = try t.int("characters-per-script", min: 2) ?? 20
            tasks.samplesPerClass = try t.int("samples-per-class", min: 2) ?? 20
            tasks.side = try t.int("side", min: 8) ?? 28
        case .data:
            var d = try t.section("data")
            guard t.has("data") else { throw t.error("data", "is required: the rows, as under a training recipe's data:") }
            for key in ["validation", "test"] where d.has(key) {
                throw d.error(key, "meta-learning splits classes, not rows; set tasks.\(key) instead")
            }
            tasks.data = try Recipe.DataSpec(&d)
            // Episodes take every row as loaded, through the train pipeline; nothing would apply augmentation.
            if tasks.data!.trainPipeline.isRandom {
                throw d.error("transforms", "random train transforms are not supported in meta-learning tasks; every row "
                              + "goes through one deterministic pipeline (transforms.train)")
            }
            try d.finish()
        }
        if !regression && tasks.validation + tasks.test >= 1 {
            throw t.error("test", "validation + test must leave classes to meta-train on")
        }
        try t.finish()

        var m = try top.section("meta")
        guard let name = try m.choice("algorithm", Algorithm.allCases.map(\.rawValue)) else {
            throw m.error("algorithm", "is required (\(Algorithm.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let algorithm = Algorithm(rawValue: name)!
        let inner = algorithm == .protonet ? 0 : try m.int("inner-steps", min: algorithm == .pretrain ? 0 : 1) ?? (algorithm == .reptile ? 5 : 1)
        meta = Loop(algorithm: algorithm, innerSteps: algorithm == .pretrain ? 0 : inner,
                    innerRate: algorithm == .protonet ? 0 : try m.rate("inner-lr") ?? 0.01,
                    testInnerSteps: algorithm == .protonet ? 0 : try m.int("test-inner-steps", min: 0) ?? max(inner, 1),
                    metaBatch: try m.int("meta-batch", min: 1) ?? (algorithm == .reptile ? 5 : 25),
                    metaSteps: try m.int("meta-steps", min: 1) ?? 1000,
                    outerRate: try m.rate("outer-lr") ?? (algorithm == .reptile ? 1 : 0.001),
                    validateEvery: try m.int("validate-every", min: 1) ?? 500,
                    validationTasks: try m.int("validation-tasks", min: 1) ?? 100)
        meta.outerSchedule = OuterSchedule(rawValue: try m.choice("outer-schedule", OuterSchedule.allCases.map(\.rawValue),
                                                                  default: "constant")!)!
        if algorithm == .pretrain { _ = m.node("inner-steps") }
        try m.finish()

        var mo = try top.section("model")
        architecture = Architecture(rawValue: try mo.choice("architecture", Architecture.allCases.map(\.rawValue),
                                                            default: regression ? "mlp" : "conv4")!)!
        hidden = [40, 40]
        filters = 64
        switch architecture {
        case .mlp:
            hidden = try mo.ints("hidden") ?? [40, 40]
            if hidden.contains(where: { $0 <= 0 }) { throw mo.error("hidden", "widths must be positive") }
        case .conv4:
            if regression { throw mo.error("architecture", "conv4 takes images; sinusoid tasks need mlp") }
            filters = try mo.int("filters", min: 1) ?? 64
        }
        if mo.has("body") {
            guard architecture == .mlp, source == .data else {
                throw mo.error("body", "a pretrained body takes tasks.source data and model.architecture mlp (the meta-learned layers on top)")
            }
            var b = try mo.section("body")
            let run = try b.string("run")
            body = Body(run: run, model: run == nil ? try Recipe.ModelSpec(&b) : nil, freeze: try b.bool("freeze") ?? true, rateScale: 1)
            if let scale = try b.double("lr-scale") {
                guard body?.freeze == false else { throw b.error("lr-scale", "applies to an unfrozen body (freeze: false)") }
                guard scale >= 0 else { throw b.error("lr-scale", "must be ≥ 0, got \(scale)") }
                body?.rateScale = Float(scale)
            }
            try b.finish()
        } else {
            _ = mo.node("body")
        }
        if tasks.data?.format == .textFolder && body == nil {
            throw mo.error("body", "is required for text tasks: a pretrained encoder (architecture bert) turns texts into features")
        }
        if algorithm == .protonet, body?.freeze == true, hidden.isEmpty {
            throw mo.error("hidden", "is empty: prototypical networks on a frozen body need layers to meta-learn an embedding with")
        }
        try mo.finish()
        try top.finish()
    }
}

extension MetaRecipe.Loop {
    /// The outer rate (Adam's rate, or Reptile's ε) for meta-step `step` (0-based): constant, or annealed linearly
    /// from `outerRate` towards 0, reaching `outerRate / metaSteps` at the last step.
    public func outerRate(at step: Int) -> Float {
        switch outerSchedule {
        case .constant: outerRate
        case .linear: outerRate * Float(metaSteps - step) / Float(metaSteps)
        }
    }
}
