import ArgumentParser
import GraftRecipe

/// The options that set the rates and depth of the strategies a recipe is run under (`graft compare`,
/// `graft data-efficiency`).
struct StrategyOptions: ParsableArguments {
    @Option(help: "Rate for fine-tuning pretrained blocks (default: the recipe's fine-tuning rate, else 1e-4).") var lr: Double?
    @Option(help: "Rate for a new head alone and for training from scratch (default: the recipe's head rate, else 10 × --lr).")
    var headLr: Double?
    @Option(help: "Blocks below the head that partial and two-stage fine-tune.") var topBlocks = 2

    func validate() throws {
        if topBlocks < 1 { throw ValidationError("--top-blocks must be ≥ 1, got \(topBlocks)") }
        for (flag, rate) in [("--lr", lr), ("--head-lr", headLr)] where rate.map({ !($0 > 0) }) ?? false {
            throw ValidationError("\(flag) must be > 0")
        }
    }
}

/// A recipe's strategy replaced by another, by name, as recipe overrides: `scratch` (every layer trained from fresh
/// weights at the head rate), `feature-extraction` (the head alone at the head rate), `partial` (the top blocks at the
/// fine-tuning rate), `full` (everything at that rate), `two-stage` (the head for a third of the epochs at the head
/// rate, then the top blocks) and `gradual-unfreezing` (a block more each epoch); `transfer` keeps the recipe's own.
struct StrategyVariants {
    /// The names `graft compare` runs by default, in its order.
    static let replacing = ["scratch", "feature-extraction", "partial", "full", "two-stage", "gradual-unfreezing"]

    /// The rate for fine-tuning pretrained blocks and the one for a new head or training from scratch.
    let rate: Double, headRate: Double
    let headEpochs: Int, topBlocks: Int

    /// The rates from `options`, by default the recipe's own: its head rate for heads, its fine-tuning rate for blocks.
    init(_ recipe: Recipe, _ options: StrategyOptions) {
        var (recipeRate, recipeHeadRate): (Double?, Double?) = (nil, nil)
        // The recipe's rates as written (0.001, not 0.0010000000474974513), so that 10 × one is 0.01.
        let written = { (rate: Float) in Double("\(rate)") ?? Double(rate) }
        switch recipe.strategy.fixed {
        case let .featureExtraction(head, _)?: recipeHeadRate = written(head)
        case let .twoStage(_, head, _, rate, _)?: (recipeRate, recipeHeadRate) = (written(rate), written(head))
        case let .fullFineTuning(rate, _)?, let .partial(_, rate)?, let .gradualUnfreezing(_, rate, _)?: recipeRate = written(rate)
        case nil: break
        }
        rate = options.lr ?? recipeRate ?? 1e-4
        headRate = options.headLr ?? recipeHeadRate ?? 10 * rate
        headEpochs = max(1, recipe.training.epochs / 3)
        topBlocks = options.topBlocks
    }

    /// Throws a validation error naming the first of `names` that is neither one of `known` nor known here.
    static func check(_ names: String, known: [String]) throws {
        for name in names.split(separator: ",") where !known.contains(String(name)) {
            throw ValidationError("unknown strategy '\(name)' (known: \(known.joined(separator: ", ")))")
        }
    }

    /// The overrides that run the recipe under `name`, and a short description of them.
    func overrides(_ name: String) -> (sets: [String], description: String) {
        // Rates are single precision: written so, 10 × 3e-4 is 0.003, not 0.0029999999999999996.
        let (rate, headRate) = (Float(self.rate), Float(self.headRate))
        let strategy: String
        var extra: [String] = []
        switch name {
        case "transfer": return ([], "the recipe's own strategy")
        case "scratch": strategy = "{name: full, lr: \(headRate)}"; extra = ["model.pretrained=false"]
        case "feature-extraction": strategy = "{name: feature-extraction, lr: \(headRate)}"
        case "partial": strategy = "{name: partial, top-blocks: \(topBlocks), lr: \(rate)}"
        case "full": strategy = "{name: full, lr: \(rate)}"
        case "two-stage":
            strategy = "{name: two-stage, head-epochs: \(headEpochs), head-lr: \(headRate), top-blocks: \(topBlocks), lr: \(rate)}"
        case "gradual-unfreezing": strategy = "{name: gradual-unfreezing, every: 1, lr: \(rate)}"
        default: preconditionFailure("StrategyVariants: unknown strategy \(name), which check() refuses")
        }
        return (extra + ["strategy=\(strategy)"], "strategy \(strategy)" + (extra.isEmpty ? "" : ", \(extra.joined(separator: ", "))"))
    }
}
