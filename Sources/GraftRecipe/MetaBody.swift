import GraftCore
import GraftData
import GraftIO
import GraftMeta
import GraftNN

/// A meta-learning recipe's pretrained body (`model.body`), loaded with the rows it takes: meta-learning on top of
/// transfer. Frozen, it turns every row into features once; unfrozen (an MLP body), its layers start the
/// meta-learned MLP and train at their own outer rate.
struct PretrainedBody {
    let model: any BlockClassifier
    /// What was loaded, for the run's notes.
    let source: String

    /// Reads `spec`'s rows as the body takes them (tokenised with its vocabulary, flattened for an MLP) and loads
    /// the body: a training run's model without its head, or a recipe model with its pretrained weights.
    static func load(_ spec: Recipe.DataSpec, body: MetaRecipe.Body, recipe: MetaRecipe) throws -> (PretrainedBody, RecipeData) {
        let field = body.run == nil ? "model.body.architecture" : "model.body.run"
        if let run = body.run {
            let trained = try TrainedRun(run)
            var rows = try RecipeData.load(spec, seed: recipe.seed, tokenizer: trained.tokenizer)
            if trained.recipe.model.architecture == .mlp && rows.inputShape.count > 1 { rows = rows.flattened() }
            guard rows.inputShape == trained.inputShape else {
                throw RecipeError(file: recipe.file, line: nil, field: field,
                                  "\(run) takes rows of \(trained.inputShape); tasks.data gives \(rows.inputShape)")
            }
            let what = "body: the \(trained.recipe.model.architecture.rawValue) of \(trained.checkpoint) without its head"
            return (PretrainedBody(model: trained.model, source: what), rows)
        }
        let model = body.model!
        var rows = try RecipeData.load(spec, seed: recipe.seed, tokenizer: try model.tokenizer(vocabulary: spec.vocabulary))
        if model.architecture == .mlp && rows.inputShape.count > 1 { rows = rows.flattened() }
        var rng = RandomGenerator(seed: recipe.seed).split(0x626f6479)
        let built: (any BlockClassifier, String)
        do { built = try model.build(classes: 2, inputShape: rows.inputShape, padId: 0, using: &rng) } catch let error as RecipeError {
            throw RecipeError(file: recipe.file, line: nil, field: field, error.problem)
        }
        built.0.eval()
        return (PretrainedBody(model: built.0, source: "body: " + built.1.replacingOccurrences(of: ", new 2-class head", with: "")), rows)
    }

    /// The body's widths [inputs, hidden…] when it is an MLP: its layers without the head.
    func mlpWidths(field: String, file: String) throws -> [Int] {
        guard let mlp = model as? MLP else {
            throw RecipeError(file: file, line: nil, field: field, "an unfrozen body must be an mlp (the meta-learned layers take "
                              + "it over); freeze it to meta-learn on its features")
        }
        let weights = mlp.namedParameters().filter { $0.0.hasSuffix(".weight") }.map(\.1).dropLast()
        return weights.isEmpty ? [] : [weights.first!.shape[1]] + weights.map { $0.shape[0] }
    }

    /// A meta-learned MLP that starts with the body's layers and goes on with layers of widths `then`.
    func metaMLP(then widths: [Int], field: String, file: String, using rng: inout RandomGenerator) throws -> (MetaMLP, bodyTensors: Int) {
        let body = try mlpWidths(field: field, file: file)
        guard !body.isEmpty else {
            throw RecipeError(file: file, line: nil, field: field, "the mlp body has no hidden layers, only a head")
        }
        let tensors = Array((model as! MLP).namedParameters().map(\.1).dropLast(2))
        return (MetaMLP(sizes: body + widths, startingWith: tensors, using: &rng), tensors.count)
    }
}

/// A frozen body's features saved in the run directory (`features.safetensors`), so that `graft meta-test` and
/// `--resume` do not run the body over every row again. The key names what the features depend on; a cache whose
/// key differs is ignored.
enum BodyFeatureCache {
    static let file = "features.safetensors"

    /// The recipe fields the features depend on: the seed, the data and the body.
    static func key(_ recipe: MetaRecipe) -> String {
        recipe.fields.filter { $0.path == "seed" || $0.path.hasPrefix("tasks.data.") || $0.path.hasPrefix("model.body.") }
            .map { "\($0.path)=\($0.value)" }.sorted().joined(separator: "\n")
    }

    /// The cached features of `rows` rows in `directory`, or nil when there are none for `key`.
    static func load(from directory: String?, key: String, rows: Int) -> Tensor? {
        guard let directory, let file = try? SafeTensorsFile(path: "\(directory)/\(file)"), file.metadata["key"] == key,
              let features = try? file.tensors().first(where: { $0.0 == "features" })?.1,
              features.rank == 2, features.shape[0] == rows else { return nil }
        return features
    }

    static func save(_ features: Tensor, key: String, in directory: String) throws {
        try SafeTensors.write([("features", features)], to: "\(directory)/\(file)", metadata: ["key": key])
    }
}
