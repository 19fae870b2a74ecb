import GraftCore
import GraftData
import GraftDistributed
import GraftNN
import GraftTrain

/// Contrastive pre-training (SimCLR) instead of supervised training: the recipe's training rows are seen through two
/// random views each, and the body with a projection head learns to match them (NT-Xent); the data's labels are not
/// used. The run's `best/model.safetensors` then serves as a later recipe's `model.weights` (the projection head is
/// dropped on loading, like any classifier head).
///
/// ```yaml
/// contrastive:
///   temperature: 0.5                  # τ of NT-Xent (default 0.5)
///   projection: [128, 64]             # the projection MLP's widths after the body's features (default [128, 64])
///   transforms:                       # what makes each view (as data.transforms; at least one random)
///     - random-resized-crop: {size: 16, scale: [0.4, 1]}
///     - affine: {degrees: 15, translate: [0.1, 0.1]}
/// ```
public struct ContrastiveSpec {
    public var temperature: Float
    public var projection: [Int]
    public var transforms: [ImageTransform]

    init(_ f: inout Fields, data: Recipe.DataSpec) throws {
        let tau = try f.double("temperature") ?? 0.5
        guard tau > 0 && tau.isFinite else { throw f.error("temperature", "must be > 0, got \(tau)") }
        temperature = Float(tau)
        projection = try f.ints("projection") ?? [128, 64]
        if projection.isEmpty || projection.contains(where: { $0 <= 0 }) {
            throw f.error("projection", "must be one or more positive widths, got \(excerpt("\(projection)"))")
        }
        guard data.format == .csv, let image = data.image else {
            throw RecipeError(file: f.file, line: f.line, field: "contrastive",
                              "contrastive pre-training takes images from a CSV (data.format: csv with data.image)")
        }
        guard f.has("transforms") else {
            throw f.error("transforms", "is required: the random transforms that make each view, e.g. "
                          + "[{random-resized-crop: {size: 16, scale: [0.4, 1]}}, {affine: {degrees: 15}}]")
        }
        transforms = try data.readTransforms(f.node("transforms"), f, "transforms")
        guard transforms.contains(where: \.isRandom) else {
            throw f.error("transforms", "has no random transform, so both views of a row would be the same")
        }
        let shape = [image[0]] + (data.resize ?? data.crop.map { [$0[2], $0[3]] } ?? Array(image.dropFirst()))
        switch ImagePipeline(transforms, normalization: .identity).outputShape(shape) {
        case let .success(out) where out != shape:
            throw f.error("transforms", "turn rows of \(shape) into \(out); a view must keep the rows' shape")
        case let .failure(problem): throw f.error("transforms", "\(problem)")
        case .success: break
        }
    }

    /// Refuses what contrastive pre-training would ignore or cannot do, naming the field.
    static func check(_ recipe: Recipe, strategy: Fields, training: Fields) throws {
        if recipe.strategy.name != .full {
            throw strategy.error("name", "contrastive pre-training trains the whole body: use strategy full")
        }
        let others = [("adaptation", recipe.adaptation != nil), ("adapters", recipe.adapters != nil),
                      ("tasks", recipe.tasks != nil), ("distillation", recipe.distillation != nil)]
        if let (field, _) = others.first(where: \.1) {
            throw RecipeError(file: recipe.file, line: nil, field: field, "cannot be combined with contrastive pre-training")
        }
        if recipe.training.labelSmoothing > 0 {
            throw training.error("label-smoothing", "has no effect on contrastive pre-training (no labels are used)")
        }
    }

    /// The objective for `model` on rows of the recipe's data: views keyed on (seed, epoch, row, view), flattened
    /// after the transforms when the model takes flat rows.
    func objective(model: any BlockClassifier, seed: UInt64, flatten: Bool, communicator: any Communicator,
                   using rng: inout RandomGenerator) -> ContrastivePretraining {
        let pipeline = ImagePipeline(transforms, normalization: .identity)
        let viewSeeds = (0..<4).map { view in
            var stream = RandomGenerator(seed: seed).split(0x7669_6577 + UInt64(view))
            return stream.next()
        }
        let views: ContrastivePretraining.Views = { inputs, rows, epoch, view in
            let out = pipeline.apply(inputs, rows: rows, seed: viewSeeds[view], epoch: epoch)
            return flatten ? out.reshaped([rows.count, out.count / max(rows.count, 1)]) : out
        }
        return ContrastivePretraining(model: model, projection: projection, temperature: temperature, views: views,
                                      seed: seed, communicator: communicator, using: &rng)
    }
}

extension Normalization {
    /// Values left as they are (rows already scaled, as a CSV's `scale` leaves them).
    static let identity = Normalization(mean: [0], std: [1])
}
