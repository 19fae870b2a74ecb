import GraftCore

/// EfficientNet-Lite (Lite0 by default): EfficientNet without squeeze-excitation, with ReLU6 and TensorFlow
/// "SAME" padding, under the state-dict keys of lukemelas' EfficientNet-PyTorch (`_conv_stem`, `_bn0`,
/// `_blocks.N._depthwise_conv`, `_conv_head`, `_bn1`, `_fc`), so converted checkpoints load as they are.
public final class EfficientNetLite: Module, BlockClassifier {
    /// One row of the block table: `repeats` blocks, the first going from `inChannels` to `outChannels` with
    /// `stride`, the rest from `outChannels` to `outChannels` with stride 1.
    public struct Stage: Sendable, Equatable {
        public let repeats: Int, kernel: Int, stride: Int, expand: Int, inChannels: Int, outChannels: Int

        public init(repeats: Int, kernel: Int, stride: Int, expand: Int, inChannels: Int, outChannels: Int) {
            (self.repeats, self.kernel, self.stride) = (repeats, kernel, stride)
            (self.expand, self.inChannels, self.outChannels) = (expand, inChannels, outChannels)
        }
    }

    /// EfficientNet-B0's block table, which Lite0 keeps unscaled.
    public static let lite0: [Stage] = [
        Stage(repeats: 1, kernel: 3, stride: 1, expand: 1, inChannels: 32, outChannels: 16),
        Stage(repeats: 2, kernel: 3, stride: 2, expand: 6, inChannels: 16, outChannels: 24),
        Stage(repeats: 2, kernel: 5, stride: 2, expand: 6, inChannels: 24, outChannels: 40),
        Stage(repeats: 3, kernel: 3, stride: 2, expand: 6, inChannels: 40, outChannels: 80),
        Stage(repeats: 3, kernel: 5, stride: 1, expand: 6, inChannels: 80, outChannels: 112),
        Stage(repeats: 4, kernel: 5, stride: 2, expand: 6, inChannels: 112, outChannels: 192),
        Stage(repeats: 1, kernel: 3, stride: 1, expand: 6, inChannels: 192, outChannels: 320),
    ]

    public let convStem: Conv2d
    public let bn0: BatchNorm
    /// The MBConv blocks, children "0", "1", … as lukemelas' `ModuleList`.
    public let mbconvBlocks: Sequential
    public let convHead: Conv2d
    public let bn1: BatchNorm
    public let dropout: Dropout
    /// The classifier head, a Linear unless replaced through `replaceChild(named: "_fc", …)`.
    public private(set) var fc: any UnaryLayer
    private let avgPooling = Layers.adaptiveAvgPool2d((1, 1))
    private let stem: Group, top: Group
    private let stages: [(String, Group)]

    /// A randomly initialised network with PyTorch's default initialisation (lukemelas adds none); the stem has
    /// `stages[0].inChannels` channels and the head conv `headChannels`, unscaled, as Lite models fix them.
    public init(stages: [Stage] = EfficientNetLite.lite0, classes: Int = 1000, inputChannels: Int = 3,
                headChannels: Int = 1280, dropout: Float = 0.2, using rng: inout RandomGenerator) {
        require(!stages.isEmpty && stages.allSatisfy { $0.repeats > 0 } && zip(stages, stages.dropFirst())
                    .allSatisfy { $0.outChannels == $1.inChannels },
                "EfficientNetLite: stages must be non-empty, repeat at least once, and chain their channels")
        let stemChannels = stages[0].inChannels
        convStem = Conv2d(inputChannels, stemChannels, kernel: (3, 3), stride: (2, 2), padding: .same, bias: false,
                          using: &rng)
        bn0 = liteBatchNorm(stemChannels)
        var members: [any UnaryLayer] = []
        var groups: [(String, Group)] = []
        for (s, stage) in stages.enumerated() {
            var group: [(String, Module)] = []
            for r in 0..<stage.repeats {
                let block = MBConvBlock(r == 0 ? stage.inChannels : stage.outChannels, stage.outChannels,
                                        kernel: stage.kernel, stride: r == 0 ? stage.stride : 1, expand: stage.expand,
                                        using: &rng)
                group.append(("\(members.count)", block))
                members.append(block)
            }
            groups.append(("stage\(s + 1)", Group(group)))
        }
        mbconvBlocks = Sequential(members)
        self.stages = groups
        let last = stages[stages.count - 1].outChannels
        convHead = Conv2d(last, headChannels, kernel: 1, bias: false, using: &rng)
        bn1 = liteBatchNorm(headChannels)
        self.dropout = Dropout(dropout, seed: rng.next())
        fc = Linear(headChannels, classes, using: &rng)
        stem = Group([("_conv_stem", convStem), ("_bn0", bn0)])
        top = Group([("_conv_head", convHead), ("_bn1", bn1)])
    }

    override public var children: [(String, Module)] {
        [("_conv_stem", convStem), ("_bn0", bn0), ("_blocks", mbconvBlocks), ("_conv_head", convHead), ("_bn1", bn1),
         ("_avg_pooling", avgPooling), ("_dropout", dropout), ("_fc", fc)]
    }

    /// Stem, one block per stage of the table (members named by their index in `_blocks`), the 1×1 head conv
    /// with its BatchNorm (`top`), the classifier `_fc`.
    public var blocks: [(String, Module)] { [("stem", stem)] + stages + [("top", top), ("_fc", fc)] }

    public var featureCount: Int { convHead.weight.shape[0] }

    /// The pooled ReLU6 activations of the head conv, [N, featureCount], before dropout.
    public func features(_ x: Tensor) -> Tensor {
        let channels = convStem.weight.shape[1]
        require(x.rank == 4 && x.shape[1] == channels,
                "EfficientNetLite: input must be [N, \(channels), H, W], got \(x.shape)")
        let h = mbconvBlocks(convStem(x, then: bn0, activation: .relu6))
        return avgPooling(convHead(h, then: bn1, activation: .relu6)).flattened(from: 1)
    }

    /// Logits [N, classes]; dropout acts in training mode only.
    public func callAsFunction(_ x: Tensor) -> Tensor { head(features(x)) }

    /// Dropout (training mode only), then the classifier.
    public func head(_ features: Tensor) -> Tensor { fc(dropout(features)) }

    public func replaceHead(classes: Int, using rng: inout RandomGenerator) {
        fc = Linear(featureCount, classes, using: &rng)
    }

    /// Only `_fc` can be replaced, by a one-input layer (a Linear must take `featureCount` features).
    override public func replaceChild(named name: String, with module: Module) throws {
        guard name == "_fc" else { return try super.replaceChild(named: name, with: module) }
        fc = try checkedHead(module, path: name, features: featureCount)
    }
}

/// lukemelas' `MBConvBlock` as Lite models use it: 1×1 expansion (absent when `expand` is 1), depthwise k×k
/// (strided, "SAME"), 1×1 projection, each with BatchNorm, ReLU6 after the first two, no squeeze-excitation;
/// the input is added back when the shape is kept. Drop-connect, a training-time regulariser, is left out.
public final class MBConvBlock: Module, UnaryLayer {
    public let expandConv: Conv2d?, bn0: BatchNorm?
    public let depthwiseConv: Conv2d, bn1: BatchNorm
    public let projectConv: Conv2d, bn2: BatchNorm
    /// Whether the input is added to the output (stride 1, same width in and out).
    public let hasSkip: Bool

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int, expand: Int,
                using rng: inout RandomGenerator) {
        require(expand >= 1 && kernel >= 1 && stride >= 1,
                "MBConvBlock: expand \(expand), kernel \(kernel) and stride \(stride) must be positive")
        let hidden = inChannels * expand
        if expand != 1 {
            expandConv = Conv2d(inChannels, hidden, kernel: 1, bias: false, using: &rng)
            bn0 = liteBatchNorm(hidden)
        } else {
            (expandConv, bn0) = (nil, nil)
        }
        depthwiseConv = Conv2d(hidden, hidden, kernel: (kernel, kernel), stride: (stride, stride), padding: .same,
                               groups: hidden, bias: false, using: &rng)
        bn1 = liteBatchNorm(hidden)
        projectConv = Conv2d(hidden, outChannels, kernel: 1, bias: false, using: &rng)
        bn2 = liteBatchNorm(outChannels)
        hasSkip = stride == 1 && inChannels == outChannels
    }

    override public var children: [(String, Module)] {
        var list: [(String, Module)] = []
        if let expandConv, let bn0 { list += [("_expand_conv", expandConv), ("_bn0", bn0)] }
        return list + [("_depthwise_conv", depthwiseConv), ("_bn1", bn1), ("_project_conv", projectConv), ("_bn2", bn2)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        if let expandConv, let bn0 { h = expandConv(h, then: bn0, activation: .relu6) }
        return projectConv(depthwiseConv(h, then: bn1, activation: .relu6), then: bn2, adding: hasSkip ? x : nil)
    }
}

/// BatchNorm with the TensorFlow settings the Lite checkpoints were trained with: eps 1e-3, momentum 0.01.
private func liteBatchNorm(_ channels: Int) -> BatchNorm { BatchNorm(channels, eps: 1e-3, momentum: 0.01) }
