import GraftCore
import GraftNN

/// Adapters trained beside a frozen pretrained model (`adapters:`): LoRA, with the defaults of Hugging Face PEFT's
/// `LoraConfig` (r 8, α 8, dropout 0; for BERT the targets `query` and `value`).
///
/// The strategy still says which blocks train and at what rate; in a block that trains only its adapters do, and
/// the new head trains whole. Feature extraction (and `auto`, which may choose it) would train the head alone and
/// is refused, as are domain adaptation and a model without pretrained weights.
public struct AdapterSpec {
    public enum Method: String, CaseIterable, Sendable { case lora }

    public var method: Method
    public var configuration: LoRAConfiguration
    /// Linear layers to wrap, by dotted path or its last components (`query`, `attention.output.dense`, `layers.0`).
    public var targets: [String]
    /// Where the targets were given, for errors found once the model is built.
    var file: String
    var targetsLine: Int?

    init(_ f: inout Fields, model: Recipe.ModelSpec) throws {
        method = Method(rawValue: try f.choice("method", Method.allCases.map(\.rawValue), default: "lora")!)!
        let rank = try f.int("r", min: 1) ?? 8
        let alpha = try f.double("alpha") ?? 8
        guard alpha > 0 else { throw f.error("alpha", "must be > 0, got \(alpha)") }
        let dropout = try f.fraction("dropout") ?? 0
        configuration = LoRAConfiguration(rank: rank, alpha: Float(alpha), dropout: Float(dropout))
        (file, targetsLine) = (f.file, f.line(of: "targets"))
        if let given = try f.strings("targets") {
            guard !given.isEmpty, !given.contains(where: \.isEmpty) else { throw f.error("targets", "must name at least one layer, without empty names") }
            targets = given
        } else if model.architecture == .bert {
            targets = ["query", "value"]
        } else {
            throw f.error("targets", "is required for \(model.architecture.rawValue): the Linear layers to adapt, by path (layers.0) "
                + "or its end")
        }
        guard model.weights != nil, model.pretrained else {
            throw f.error("method", "adapters train beside frozen pretrained weights, and the model has none "
                + "(\(model.weights == nil ? "no model.weights" : "model.pretrained is false")): its body would stay random")
        }
    }

    /// Refuses what adapters cannot go with: a strategy that trains only the head, domain adaptation.
    static func check(strategy: StrategySpec, strategyFields s: Fields, adaptation: AdaptationSpec?, file: String, line: Int?) throws {
        switch strategy.name {
        case .featureExtraction:
            throw s.error("name", "feature-extraction trains only the head, so the adapters would stay zero; with adapters use full "
                + "(every block's adapters and the head), partial (the top blocks'), two-stage or gradual-unfreezing")
        case .auto:
            throw s.error("name", "auto may choose feature extraction, which would leave the adapters untrained; name the strategy "
                + "(full trains every block's adapters and the head)")
        default: break
        }
        if adaptation != nil {
            throw RecipeError(file: file, line: line, field: "adapters", "domain adaptation with adapters is not supported")
        }
    }

    /// Wraps the target layers of `model` (never its head); returns a line saying what it added.
    func apply(to model: any BlockClassifier, using rng: inout RandomGenerator) throws -> String {
        let before = model.parameterCount()
        let wrapped: [String]
        do {
            wrapped = try model.injectLoRA(targets: targets, excluding: [model.blocks.last!.0], configuration, using: &rng)
        } catch let error as LoRAError {
            throw RecipeError(file: file, line: targetsLine, field: "adapters.targets", "\(error)")
        }
        let c = configuration
        return "LoRA r \(c.rank), α \(formatted(c.alpha)) (scale \(formatted(c.scaling)))\(c.dropout > 0 ? ", dropout \(formatted(c.dropout))" : "") "
            + "on \(wrapped.count) layers (\(targets.joined(separator: ", "))): \(grouped(model.parameterCount() - before)) adapter parameters; "
            + "the wrapped weights are frozen"
    }

    private func formatted(_ x: Float) -> String { x == x.rounded() ? String(Int(x)) : "\(x)" }
}
