import Foundation
import GraftCore
import GraftData
import GraftIO
import GraftNN
import GraftTrain

extension Recipe.ModelSpec {
    /// Reads a `model:` section (also a meta-learning recipe's `model.body`); the caller finishes the section.
    init(_ m: inout Fields) throws {
        guard let arch = try m.choice("architecture", Recipe.Architecture.allCases.map(\.rawValue)) else {
            throw m.error("architecture", "is required (\(Recipe.Architecture.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let architecture = Recipe.Architecture(rawValue: arch)!
        self = Recipe.ModelSpec(architecture: architecture, weights: try m.string("weights"), pooling: .cls,
                                   hidden: [], smallImageStem: false)
        pretrained = try m.bool("pretrained") ?? true
        file = m.file
        switch architecture {
        case .bert:
            guard weights != nil else { throw m.error("weights", "is required for bert (a directory with model.safetensors and config.json)") }
            pooling = BertPooling(rawValue: try m.choice("pooling", BertPooling.allCases.map(\.rawValue)) ?? "cls")!
            layers = try m.int("layers", min: 1)
            layersLine = m.line(of: "layers")
        case .mlp:
            hidden = try m.ints("hidden") ?? [256]
            if hidden.contains(where: { $0 <= 0 }) { throw m.error("hidden", "widths must be positive, got \(excerpt("\(hidden)"))") }
        case .resnet18, .resnet34, .resnet50:
            smallImageStem = try m.bool("small-image-stem") ?? false
        case .smallCNN, .efficientnetLite0: break
        }
    }

    /// The WordPiece vocabulary BERT weights come with (`weights/vocab.txt`), unless the data names another.
    func tokenizer(vocabulary: String?) throws -> WordPieceTokenizer? {
        guard architecture == .bert, let weights else { return nil }
        return try WordPieceTokenizer(vocabularyFile: vocabulary ?? "\(weights)/vocab.txt")
    }

    /// The model for `classes` classes and inputs of `inputShape`, with its pretrained weights loaded and a fresh
    /// head; returns a line saying what was loaded.
    func build(classes: Int, inputShape: [Int], padId: Int, using rng: inout RandomGenerator) throws
        -> (any BlockClassifier, String) {
        func image(_ what: String) throws -> (channels: Int, side: Int) {
            guard inputShape.count == 3, inputShape[1] == inputShape[2] else {
                throw RecipeError(file: "", line: nil, field: "data.image",
                                  "\(what) needs square images [channels, side, side], got rows of \(inputShape)")
            }
            return (inputShape[0], inputShape[1])
        }
        let model: any BlockClassifier
        switch architecture {
        case .bert:
            let dir = weights!
            var config = try BertConfig(file: "\(dir)/config.json")
            let depth = config.layers
            if let layers {
                guard layers <= depth else {
                    throw RecipeError(file: file, line: layersLine, field: "model.layers", "\(layers) is more than the \(depth) "
                        + "encoder layers of \(dir)/config.json")
                }
                config.layers = layers
            }
            let bert = BertModel(config, using: &rng)
            var source = "BERT encoder of \(dir)/config.json from scratch"
            if pretrained {
                let file = try SafeTensorsFile(path: "\(dir)/model.safetensors")
                // A shallower student keeps the lower layers: the file's layers from `config.layers` up are left out.
                let dropped = (config.layers..<depth).map { "encoder.layer.\($0)." }
                let tensors = try file.tensors().filter { key, _ in !dropped.contains { key.hasPrefix($0) } }
                try bert.load(Dictionary(uniqueKeysWithValues: tensors), strict: true, source: file.path)
                source = "BERT encoder from \(file.path)" + (config.layers < depth ? ", its lower \(config.layers) of \(depth) layers" : "")
            }
            let classifier = BertClassifier(bert, classes: classes, pooling: pooling, padId: padId, using: &rng)
            return (classifier, "\(source) (\(bert.parameterCount()) parameters), \(pooling.rawValue) pooling, new \(classes)-class head")
        case .mlp:
            guard inputShape.count == 1 else {
                throw RecipeError(file: "", line: nil, field: "model.architecture", "mlp takes flat rows, not images \(inputShape)")
            }
            model = MLP(sizes: inputShape + hidden + [classes], using: &rng)
        case .smallCNN:
            let (c, side) = try image("small-cnn")
            model = SmallCNN(inputChannels: c, classes: classes, imageSize: side, using: &rng)
        case .resnet18, .resnet34, .resnet50:
            let variant: ResNet.Variant = architecture == .resnet18 ? .resnet18 : architecture == .resnet34 ? .resnet34 : .resnet50
            model = ResNet(variant, classes: classes, inputChannels: try image("resnet").channels,
                           smallImageStem: smallImageStem, using: &rng)
        case .efficientnetLite0:
            model = EfficientNetLite(classes: classes, inputChannels: try image("efficientnet-lite0").channels, using: &rng)
        }
        guard let weights, pretrained else { return (model, "\(architecture.rawValue) from scratch (\(model.parameterCount()) parameters)") }
        return (model, try loadBody(weights, into: model))
    }

    /// Loads every tensor of the body from `path` (a safetensors file, or a directory holding `model.safetensors`,
    /// such as a Graft run's `best/`); the head may be absent or of another shape (a 1000-class ImageNet head),
    /// anything else is an error.
    private func loadBody(_ path: String, into model: any BlockClassifier) throws -> String {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        guard exists else {
            throw RecipeError(file: path, line: nil, field: "model.weights", "no such file or directory (weights of a Graft "
                              + "run are its best/model.safetensors once the run has trained)")
        }
        let filePath = isDirectory.boolValue ? "\(path)/model.safetensors" : path
        let file = try SafeTensorsFile(path: filePath)
        // A Graft run's auxiliary modules (a contrastive projection head, a domain classifier) are not the body's.
        let auxiliary = (file.metadata[Checkpoint.auxiliaryKey] ?? "").split(separator: ",").map { "\($0)." }
        let tensors = Dictionary(uniqueKeysWithValues: try file.tensors().filter { t in !auxiliary.contains { t.0.hasPrefix($0) } })
        let head = model.blocks.last!.0
        let isHead = { (key: String) in key.hasPrefix("\(head).") }
        let report = try model.load(tensors.filter { !isHead($0.key) }, strict: false, source: file.path)
        let missingBody = report.missing.filter { !isHead($0) }
        guard missingBody.isEmpty && report.unexpected.isEmpty && report.mismatched.isEmpty else {
            throw RecipeError(file: file.path, line: nil, field: "model.weights",
                              "does not fit \(architecture.rawValue) apart from its head '\(head)': \(report)")
        }
        return "\(architecture.rawValue) body from \(file.path) (\(report.loaded.count) tensors), new head '\(head)'"
            + (auxiliary.isEmpty ? "" : "; its \(auxiliary.map { $0.dropLast() }.joined(separator: ", ")) left out")
    }
}
