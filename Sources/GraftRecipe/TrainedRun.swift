import Foundation
import GraftCore
import GraftData
import GraftNN
import GraftTrain

/// A run directory loaded for use: the recipe with the overrides it ran with, the class names, and the model with
/// the weights of `best/` (or of `last/` when there is no `best/`), in eval mode.
public struct TrainedRun {
    public let directory: String
    public let recipe: Recipe
    /// The checkpoint the weights came from, and its state.
    public let checkpoint: String
    public let state: CheckpointState
    public let classNames: [String]
    public let inputShape: [Int]
    public let model: any BlockClassifier
    public let tokenizer: WordPieceTokenizer?
    /// A multi-task run's heads: the model's output holds every task's logits.
    public let tasks: TaskLayout?

    public init(_ directory: String) throws {
        self.directory = directory
        let best = "\(directory)/best"
        checkpoint = FileManager.default.fileExists(atPath: "\(best)/state.json") ? best : "\(directory)/last"
        state = try Checkpoint.loadState(from: checkpoint)
        guard let classes = state.classes, let shape = state.inputShape else {
            throw CheckpointError(path: "\(checkpoint)/state.json", "names no classes or input shape (an older Graft wrote it); train the run again")
        }
        (classNames, inputShape) = (classes, shape)
        recipe = try Recipe.load(path: "\(directory)/recipe.yaml", overrides: state.overrides ?? [])
        tokenizer = try recipe.model.tokenizer(vocabulary: recipe.data.vocabulary)
        var rng = RandomGenerator(seed: recipe.seed)
        tasks = try recipe.tasks?.layout(classNames: classes)
        // A contrastive MLP run keeps image rows (its views are made from them); the MLP takes them flattened.
        let flat = recipe.contrastive != nil && recipe.model.architecture == .mlp
        (model, _) = try recipe.model.build(classes: tasks?.width ?? classes.count, inputShape: flat ? [shape.reduce(1, *)] : shape,
                                            padId: tokenizer?.padId ?? 0, using: &rng)
        // Adapters go where training put them; the checkpoint then holds them and the head, the base comes from
        // model.weights as built.
        if let adapters = recipe.adapters { _ = try adapters.apply(to: model, using: &rng) }
        // Modules trained beside the model (a domain classifier, task log-variances, a distillation projection, a
        // contrastive projection head) are not part of it.
        let auxiliaries = ["domain_classifier.", "\(MultiTaskObjective.auxiliaryName).", "distill_projection."]
            + (recipe.contrastive == nil ? [] : ["projection."])
        let tensors = try Checkpoint.loadWeights(from: checkpoint, over: model).filter { name, _ in
            !auxiliaries.contains { name.hasPrefix($0) }
        }
        try model.load(Dictionary(uniqueKeysWithValues: tensors), strict: true, source: "\(checkpoint)/model.safetensors")
        model.eval()
    }

    /// Refuses a run whose classifier head never trained (contrastive pre-training): its body is for other recipes.
    public func requireClassifier() throws {
        guard recipe.contrastive != nil else { return }
        throw CheckpointError(path: directory, "is a contrastive pre-training run, whose classifier head never trained: "
            + "fit one on its body with model.weights: \(checkpoint)/model.safetensors (as recipes/digits-simclr-probe.yaml does)")
    }

    /// The data the run's recipe describes, split as in training: the test rows the run reported on are
    /// `test` (the target domain's, for a domain-adaptation run).
    public func recipeData() throws -> RecipeData {
        let spec = recipe.adaptation?.target ?? recipe.data
        return try loadData(spec)
    }

    /// Every row of `path`, read as the recipe reads its data (same format, scale, image shape, tokenizer; images
    /// through the eval pipeline), as the training rows of the result.
    public func data(at path: String) throws -> RecipeData {
        var spec = recipe.adaptation?.target ?? recipe.data
        (spec.path, spec.validation, spec.test, spec.limitPerClass) = (path, 0, 0, nil)
        if spec.format == .idx { spec.labels = nil }  // beside the new images file, by MNIST's naming
        spec.trainPipeline = spec.evalPipeline  // the rows are evaluated, not trained on
        let data = try loadData(spec)
        guard data.classNames.count <= classNames.count else {
            throw DataError(file: path, line: nil, problem: "has \(data.classNames.count) classes, the run's model \(classNames.count)")
        }
        return data
    }

    /// Inputs of the recipe's kind from raw items: texts for a text recipe, CSV rows of feature values (a trailing
    /// label allowed) for a CSV one; `source` names where they came from, for errors.
    public func inputs(texts: [String]) -> Tensor {
        let batch = tokenizer!.encodeBatch(texts, maxLength: recipe.data.maxTokens, padding: .longest)
        return Tensor(batch.ids.map(Float.init), shape: batch.shape)
    }

    /// Whether the recipe reads images (an image folder or IDX files): new inputs are then image files.
    public var readsImages: Bool { [.imageFolder, .idx].contains((recipe.adaptation?.target ?? recipe.data).format) }

    /// PNG or JPEG files as the model's inputs: the recipe's channels and size, then its eval pipeline.
    public func inputs(imageFiles files: [String]) throws -> Tensor {
        let inputs = try (recipe.adaptation?.target ?? recipe.data).evalInputs(imageFiles: files)
        return recipe.model.architecture == .mlp ? inputs.reshaped([files.count, inputs.count / max(files.count, 1)]) : inputs
    }

    public func inputs(csvLines lines: [(text: String, file: String, line: Int)]) throws -> Tensor {
        let spec = recipe.adaptation?.target ?? recipe.data
        let width = spec.image?.reduce(1, *) ?? inputShape.reduce(1, *)
        var features: [Float] = []
        for (text, file, line) in lines {
            let cells = text.split(separator: ",", omittingEmptySubsequences: false)
            guard cells.count == width || cells.count == width + 1 else {
                throw DataError(file: file, line: line, problem: "has \(cells.count) values; the run's rows have \(width) (and may end with a label)")
            }
            for (column, cell) in cells.prefix(width).enumerated() {
                guard let v = Float(cell.trimmingCharacters(in: .whitespaces)), v.isFinite else {
                    throw DataError(file: file, line: line, problem: "column \(column + 1): \(quotedExcerpt(String(cell))) is not a finite number")
                }
                features.append(v * spec.scale)
            }
        }
        let inputs = spec.csvImages(spec.inputs(features, rows: lines.count), through: spec.evalPipeline, rows: Array(lines.indices),
                                    seed: 0)
        return recipe.model.architecture == .mlp ? inputs.reshaped([lines.count, inputs.count / max(lines.count, 1)]) : inputs
    }

    private func loadData(_ spec: Recipe.DataSpec) throws -> RecipeData {
        let data = try RecipeData.load(spec, seed: recipe.seed, tokenizer: tokenizer)
        return recipe.model.architecture == .mlp && data.inputShape.count > 1 ? data.flattened() : data
    }
}
