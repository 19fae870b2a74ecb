import GraftCore

/// A classifier seen as blocks from input to head, with a head that can be replaced: what transfer-learning
/// strategies (feature extraction, freezing by depth, gradual unfreezing, discriminative learning rates) act on.
public protocol BlockClassifier: UnaryLayer {
    /// The blocks from the input to the head (last), labelled. A label is the block's path in the model where it
    /// has one (`layer3`, `layers.2`) and a name otherwise (`stem`); the block's parameters are the model's own
    /// tensors, so freezing a block freezes it in the model.
    var blocks: [(String, Module)] { get }
    /// The number of features the head takes.
    var featureCount: Int { get }
    /// The body's output for x, [N, featureCount]: the head's input.
    func features(_ x: Tensor) -> Tensor
    /// Installs a freshly initialised head with `classes` outputs.
    func replaceHead(classes: Int, using rng: inout RandomGenerator)
    /// The logits from body features: `model(x) == head(features(x))`, including any dropout between the two.
    func head(_ features: Tensor) -> Tensor
}

extension BlockClassifier {
    /// The last block applied to the features, for heads that are a single one-input layer.
    public func head(_ features: Tensor) -> Tensor {
        guard let head = blocks.last?.1 as? any UnaryLayer else {
            fatalError("\(type(of: self)): the last block is not a one-input layer; implement head(_:)")
        }
        return head(features)
    }
}

/// A multilayer perceptron, Linear layers with ReLU between them; keys `layers.0.weight`, `layers.2.weight`, …
/// as a `torch.nn.Sequential` held in an attribute `layers`.
public final class MLP: Module, BlockClassifier {
    /// Linear layers at even indices, ReLU at odd ones; the last Linear is the head.
    public let layers: Sequential
    public let featureCount: Int

    /// sizes = [inputs, hidden…, classes]: one Linear per consecutive pair.
    public init(sizes: [Int], using rng: inout RandomGenerator) {
        require(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 }, "MLP: sizes must be ≥ 2 positive widths, got \(sizes)")
        var members: [any UnaryLayer] = []
        for (i, (fanIn, fanOut)) in zip(sizes, sizes.dropFirst()).enumerated() {
            if i > 0 { members.append(Layers.relu()) }
            members.append(Linear(fanIn, fanOut, using: &rng))
        }
        layers = Sequential(members)
        featureCount = sizes[sizes.count - 2]
    }

    override public var children: [(String, Module)] { [("layers", layers)] }

    public var blocks: [(String, Module)] {
        layers.children.filter { !($0.1 is Lambda) }.map { ("layers.\($0.0)", $0.1) }
    }

    /// The last hidden activation (after its ReLU); the input itself for a single-layer MLP.
    public func features(_ x: Tensor) -> Tensor { layers.layers.dropLast().reduce(x) { $1($0) } }

    public func callAsFunction(_ x: Tensor) -> Tensor { layers(x) }

    public func replaceHead(classes: Int, using rng: inout RandomGenerator) {
        layers.replaceLayer(at: layers.layers.count - 1, with: Linear(featureCount, classes, using: &rng))
    }
}

/// A small CNN for little grey images such as 28×28 MNIST: two (3×3 conv, BatchNorm, ReLU, 2×2 max-pool)
/// stages, then a Linear head `fc` over the flattened maps. Children `conv1`, `bn1`, `conv2`, `bn2`, `fc`.
public final class SmallCNN: Module, BlockClassifier {
    public let conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, bn2: BatchNorm
    public private(set) var fc: any UnaryLayer
    /// The input side the head was sized for.
    public let imageSize: Int
    private let stage1: Group, stage2: Group

    public init(inputChannels: Int = 1, classes: Int = 10, imageSize: Int = 28, widths: (Int, Int) = (32, 64),
                using rng: inout RandomGenerator) {
        require(imageSize >= 4, "SmallCNN: images of side \(imageSize) are too small for two 2×2 pools")
        conv1 = Conv2d(inputChannels, widths.0, kernel: 3, padding: 1, bias: false, using: &rng)
        bn1 = BatchNorm(widths.0)
        conv2 = Conv2d(widths.0, widths.1, kernel: 3, padding: 1, bias: false, using: &rng)
        bn2 = BatchNorm(widths.1)
        self.imageSize = imageSize
        let side = imageSize / 4
        fc = Linear(widths.1 * side * side, classes, using: &rng)
        stage1 = Group([("conv1", conv1), ("bn1", bn1)])
        stage2 = Group([("conv2", conv2), ("bn2", bn2)])
    }

    override public var children: [(String, Module)] {
        [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2), ("fc", fc)]
    }

    public var blocks: [(String, Module)] { [("stage1", stage1), ("stage2", stage2), ("fc", fc)] }

    public var featureCount: Int { conv2.weight.shape[0] * (imageSize / 4) * (imageSize / 4) }

    public func features(_ x: Tensor) -> Tensor {
        require(x.rank == 4 && x.shape[2] == imageSize && x.shape[3] == imageSize,
                "SmallCNN: input must be [N, C, \(imageSize), \(imageSize)], got \(x.shape)")
        let h = bn1(conv1(x)).relu().maxPool2d(kernel: (2, 2))
        return bn2(conv2(h)).relu().maxPool2d(kernel: (2, 2)).flattened(from: 1)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { fc(features(x)) }

    public func replaceHead(classes: Int, using rng: inout RandomGenerator) {
        fc = Linear(featureCount, classes, using: &rng)
    }

    override public func replaceChild(named name: String, with module: Module) throws {
        guard name == "fc" else { return try super.replaceChild(named: name, with: module) }
        fc = try checkedHead(module, path: name, features: featureCount)
    }
}

/// `module` as a head for `features` inputs, or the error naming why it cannot be one.
func checkedHead(_ module: Module, path: String, features: Int) throws -> any UnaryLayer {
    guard let head = module as? any UnaryLayer else {
        throw ModuleError.wrongType(path: path, expected: "a one-input layer", found: String(describing: type(of: module)))
    }
    if let linear = head as? Linear, linear.inFeatures != features {
        throw ModuleError.wrongType(path: path, expected: "a Linear taking \(features) features",
                                    found: "Linear(\(linear.inFeatures) → \(linear.outFeatures))")
    }
    return head
}
