import GraftCore

/// torchvision's ResNet (v1.5: a bottleneck strides in its 3×3 conv), with torchvision's state-dict keys
/// (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`, `fc`), so its checkpoints load as they are.
public final class ResNet: Module, BlockClassifier {
    /// A depth of the family: residual blocks per stage, and whether they are bottlenecks.
    public struct Variant: Sendable, Equatable {
        public let layers: [Int]
        public let bottleneck: Bool

        public init(layers: [Int], bottleneck: Bool) {
            require(layers.count == 4 && layers.allSatisfy { $0 > 0 }, "ResNet: need 4 positive stage depths, got \(layers)")
            (self.layers, self.bottleneck) = (layers, bottleneck)
        }

        public static let resnet18 = Variant(layers: [2, 2, 2, 2], bottleneck: false)
        public static let resnet34 = Variant(layers: [3, 4, 6, 3], bottleneck: false)
        public static let resnet50 = Variant(layers: [3, 4, 6, 3], bottleneck: true)
        public static let resnet101 = Variant(layers: [3, 4, 23, 3], bottleneck: true)
        public static let resnet152 = Variant(layers: [3, 8, 36, 3], bottleneck: true)
    }

    public let variant: Variant
    public let conv1: Conv2d
    public let bn1: BatchNorm
    public let layer1: Sequential, layer2: Sequential, layer3: Sequential, layer4: Sequential
    /// The classifier head, a Linear unless replaced through `replaceChild(named: "fc", …)`.
    public private(set) var fc: any UnaryLayer
    public let featureCount: Int
    /// True for the 3×3 stride-1 stem without max-pool, for 28–32 px images.
    public let smallImageStem: Bool
    private let relu = Layers.relu()
    private let maxpool: Lambda?
    private let avgpool = Layers.adaptiveAvgPool2d((1, 1))
    private let stem: Group

    /// A randomly initialised ResNet as torchvision initialises it (Kaiming-normal convs, fan out; BatchNorm
    /// weight 1, bias 0; PyTorch's default Linear). `widthMultiplier` scales the stage widths 64…512;
    /// `smallImageStem` swaps the 7×7 stride-2 conv and max-pool for a 3×3 stride-1 conv (still `conv1`).
    public init(_ variant: Variant = .resnet18, classes: Int = 1000, inputChannels: Int = 3, widthMultiplier: Float = 1,
                smallImageStem: Bool = false, using rng: inout RandomGenerator) {
        require(widthMultiplier > 0, "ResNet: width multiplier must be positive, got \(widthMultiplier)")
        let widths = [64, 128, 256, 512].map { Swift.max(1, Int((Float($0) * widthMultiplier).rounded())) }
        self.variant = variant
        self.smallImageStem = smallImageStem
        conv1 = smallImageStem
            ? resnetConv(inputChannels, widths[0], kernel: 3, stride: 1, padding: 1, using: &rng)
            : resnetConv(inputChannels, widths[0], kernel: 7, stride: 2, padding: 3, using: &rng)
        bn1 = BatchNorm(widths[0])
        maxpool = smallImageStem ? nil : Layers.maxPool2d(kernel: 3, stride: 2, padding: 1)
        var channels = widths[0]
        var stages: [Sequential] = []
        for (i, (planes, depth)) in zip(widths, variant.layers).enumerated() {
            var members: [any UnaryLayer] = []
            for b in 0..<depth {
                let stride = i > 0 && b == 0 ? 2 : 1
                if variant.bottleneck {
                    members.append(Bottleneck(channels, planes, stride: stride, using: &rng))
                    channels = planes * Bottleneck.expansion
                } else {
                    members.append(BasicBlock(channels, planes, stride: stride, using: &rng))
                    channels = planes * BasicBlock.expansion
                }
            }
            stages.append(Sequential(members))
        }
        (layer1, layer2, layer3, layer4) = (stages[0], stages[1], stages[2], stages[3])
        featureCount = channels
        fc = Linear(channels, classes, using: &rng)
        stem = Group([("conv1", conv1), ("bn1", bn1)])
    }

    override public var children: [(String, Module)] {
        [("conv1", conv1), ("bn1", bn1), ("relu", relu)] + (maxpool.map { [("maxpool", $0)] } ?? [])
            + [("layer1", layer1), ("layer2", layer2), ("layer3", layer3), ("layer4", layer4),
               ("avgpool", avgpool), ("fc", fc)]
    }

    /// Stem (`conv1` + `bn1`), the four stages, the head.
    public var blocks: [(String, Module)] {
        [("stem", stem), ("layer1", layer1), ("layer2", layer2), ("layer3", layer3), ("layer4", layer4), ("fc", fc)]
    }

    /// The average-pooled output of `layer4`, [N, featureCount].
    public func features(_ x: Tensor) -> Tensor {
        let channels = conv1.weight.shape[1]
        require(x.rank == 4 && x.shape[1] == channels, "ResNet: input must be [N, \(channels), H, W], got \(x.shape)")
        var h = conv1(x, then: bn1, activation: .relu)
        if let maxpool { h = maxpool(h) }
        return avgpool(layer4(layer3(layer2(layer1(h))))).flattened(from: 1)
    }

    /// Logits [N, classes].
    public func callAsFunction(_ x: Tensor) -> Tensor { fc(features(x)) }

    public func replaceHead(classes: Int, using rng: inout RandomGenerator) {
        fc = Linear(featureCount, classes, using: &rng)
    }

    /// Only `fc` can be replaced, by a one-input layer (a Linear must take `featureCount` features).
    override public func replaceChild(named name: String, with module: Module) throws {
        guard name == "fc" else { return try super.replaceChild(named: name, with: module) }
        fc = try checkedHead(module, path: name, features: featureCount)
    }
}

/// torchvision's `BasicBlock`: two 3×3 convs with BatchNorm, plus the input (through `downsample` when the
/// shape changes), then ReLU. Children `conv1`, `bn1`, `conv2`, `bn2`, `downsample`.
public final class BasicBlock: Module, UnaryLayer {
    public static let expansion = 1
    public let conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, bn2: BatchNorm
    /// A strided 1×1 conv and BatchNorm, present when the block changes the resolution or the width.
    public let downsample: Sequential?

    /// A block from `inChannels` to `planes` channels; the first conv strides.
    public init(_ inChannels: Int, _ planes: Int, stride: Int = 1, using rng: inout RandomGenerator) {
        conv1 = resnetConv(inChannels, planes, kernel: 3, stride: stride, padding: 1, using: &rng)
        bn1 = BatchNorm(planes)
        conv2 = resnetConv(planes, planes, kernel: 3, padding: 1, using: &rng)
        bn2 = BatchNorm(planes)
        downsample = resnetDownsample(inChannels, planes * Self.expansion, stride: stride, using: &rng)
    }

    override public var children: [(String, Module)] {
        [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
            + (downsample.map { [("downsample", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = conv1(x, then: bn1, activation: .relu)
        return conv2(h, then: bn2, adding: downsample?(x) ?? x, activation: .relu)
    }
}

/// torchvision's `Bottleneck` (v1.5): 1×1 reduce, 3×3 (strided), 1×1 expand ×4, each with BatchNorm, plus the
/// input (through `downsample` when the shape changes), then ReLU.
public final class Bottleneck: Module, UnaryLayer {
    public static let expansion = 4
    public let conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, bn2: BatchNorm, conv3: Conv2d, bn3: BatchNorm
    /// A strided 1×1 conv and BatchNorm, present when the block changes the resolution or the width.
    public let downsample: Sequential?

    /// A block from `inChannels` to `planes × 4` channels with `planes` inside; the 3×3 conv strides.
    public init(_ inChannels: Int, _ planes: Int, stride: Int = 1, using rng: inout RandomGenerator) {
        conv1 = resnetConv(inChannels, planes, kernel: 1, using: &rng)
        bn1 = BatchNorm(planes)
        conv2 = resnetConv(planes, planes, kernel: 3, stride: stride, padding: 1, using: &rng)
        bn2 = BatchNorm(planes)
        conv3 = resnetConv(planes, planes * Self.expansion, kernel: 1, using: &rng)
        bn3 = BatchNorm(planes * Self.expansion)
        downsample = resnetDownsample(inChannels, planes * Self.expansion, stride: stride, using: &rng)
    }

    override public var children: [(String, Module)] {
        [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2), ("conv3", conv3), ("bn3", bn3)]
            + (downsample.map { [("downsample", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = conv2(conv1(x, then: bn1, activation: .relu), then: bn2, activation: .relu)
        return conv3(h, then: bn3, adding: downsample?(x) ?? x, activation: .relu)
    }
}

/// A bias-free conv with torchvision's ResNet initialisation: Kaiming normal, fan out, ReLU gain. Like
/// torchvision, it overwrites the default initialisation after construction.
private func resnetConv(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                        using rng: inout RandomGenerator) -> Conv2d {
    let conv = Conv2d(inChannels, outChannels, kernel: kernel, stride: stride, padding: padding, bias: false, using: &rng)
    let w = Init.kaimingNormal(conv.weight.shape, mode: .fanOut, nonlinearity: .relu, using: &rng)
    conv.weight.pointer.update(from: w.pointer, count: w.count)
    return conv
}

/// torchvision's shortcut projection (`downsample.0` conv 1×1, `downsample.1` BatchNorm), nil when the
/// input can be added as it is.
private func resnetDownsample(_ inChannels: Int, _ outChannels: Int, stride: Int,
                              using rng: inout RandomGenerator) -> Sequential? {
    guard stride != 1 || inChannels != outChannels else { return nil }
    return Sequential(resnetConv(inChannels, outChannels, kernel: 1, stride: stride, using: &rng), BatchNorm(outChannels))
}
