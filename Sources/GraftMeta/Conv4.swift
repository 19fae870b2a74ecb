import GraftCore
import GraftNN

/// The standard few-shot backbone as a `MetaModel`: four blocks of (3×3 convolution with padding 1, batch norm,
/// ReLU, 2×2 max-pool), then the maps flattened, then an optional Linear head.
///
/// Batch norm always normalises with the statistics of the batch being run, in meta-training and at meta-test
/// alike, and keeps no running statistics (transductive, as in the MAML paper and learn2learn). Its scale and shift
/// are meta-parameters, adapted in the inner loop like the rest. The support and the query sets are therefore each
/// normalised by their own statistics when run separately (MAML), or jointly when run as one batch (ProtoNets).
///
/// The convolutions have no bias: batch statistics subtract each channel's mean right after them, which would
/// cancel a bias exactly (its gradient would always be zero). Convolution and head weights take PyTorch's default
/// initialisation, as GraftNN's `Conv2d` and `Linear`; batch-norm scales start at 1 and shifts at 0.
///
/// Parameters, in order: `blocks.i.conv.weight`, `blocks.i.norm.weight`, `blocks.i.norm.bias` for i in 0..<4, then
/// `head.weight`, `head.bias` when there is a head.
public final class Conv4: MetaModel {
    public let inputChannels: Int
    public let filters: Int
    /// The input side (images are square) the head is sized for.
    public let imageSize: Int
    /// The head's outputs, or nil for an embedding model whose output is the flattened features.
    public let outputs: Int?
    /// Batch norm's ε.
    public let eps: Float
    public let parameters: [(String, Tensor)]

    /// The number of convolution blocks.
    public static let depth = 4

    public init(inputChannels: Int, filters: Int = 64, imageSize: Int, outputs: Int?, eps: Float = 1e-5,
                using rng: inout RandomGenerator) {
        require(inputChannels > 0 && filters > 0, "Conv4: channels \(inputChannels) and filters \(filters) must be positive")
        require(imageSize >= 16, "Conv4: images of side \(imageSize) are too small for four 2×2 pools (need ≥ 16)")
        require(outputs.map { $0 > 0 } ?? true, "Conv4: outputs \(outputs ?? 0) must be positive")
        (self.inputChannels, self.filters, self.imageSize, self.outputs, self.eps) = (inputChannels, filters, imageSize, outputs, eps)
        var parameters: [(String, Tensor)] = []
        for i in 0..<Conv4.depth {
            let shape = [filters, i == 0 ? inputChannels : filters, 3, 3]
            parameters.append(("blocks.\(i).conv.weight", Init.torchDefaultWeight(shape, using: &rng)))
            parameters.append(("blocks.\(i).norm.weight", Init.ones([filters])))
            parameters.append(("blocks.\(i).norm.bias", Init.zeros([filters])))
        }
        let side = Conv4.featureSide(imageSize)
        if let outputs {
            let features = filters * side * side
            parameters.append(("head.weight", Init.torchDefaultWeight([outputs, features], using: &rng)))
            parameters.append(("head.bias", Init.torchDefaultBias(outputs, fanIn: features, using: &rng)))
        }
        self.parameters = parameters
    }

    /// The side of the last block's maps: `size` halved (rounding down) once per block.
    public static func featureSide(_ size: Int) -> Int { (0..<depth).reduce(size) { s, _ in s / 2 } }

    /// The length of the flattened features: filters × side² (64 for 28×28 inputs, 1600 for 84×84 with 64 filters).
    public var featureCount: Int { filters * Conv4.featureSide(imageSize) * Conv4.featureSide(imageSize) }

    /// Block `index`'s convolution and batch norm (scale and shift included) of x, before the ReLU and the pool.
    public func normalizedConvolution(_ index: Int, _ x: Tensor, parameters p: [Tensor]) -> Tensor {
        require(index >= 0 && index < Conv4.depth, "Conv4: block \(index) outside 0..<\(Conv4.depth)")
        checkParameters(p, op: "Conv4")
        let y = Tensor.conv2d(x, weight: p[3 * index], padding: .symmetric(1, 1))
        return Tensor.batchNorm(y, weight: p[3 * index + 1], bias: p[3 * index + 2], runningMean: nil, runningVar: nil,
                                training: true, eps: eps)
    }

    /// The flattened output of the four blocks, [N, featureCount].
    public func features(_ x: Tensor, parameters p: [Tensor]) -> Tensor {
        require(x.rank == 4 && x.shape[1] == inputChannels && x.shape[2] == imageSize && x.shape[3] == imageSize,
                "Conv4: input must be [N, \(inputChannels), \(imageSize), \(imageSize)], got \(x.shape)")
        var h = x
        for i in 0..<Conv4.depth {
            h = normalizedConvolution(i, h, parameters: p).relu().maxPool2d(kernel: (2, 2))
        }
        return h.flattened(from: 1)
    }

    /// The head's outputs [N, outputs], or the features [N, featureCount] for a model without a head.
    public func callAsFunction(_ x: Tensor, parameters p: [Tensor]) -> Tensor {
        let f = features(x, parameters: p)
        guard outputs != nil else { return f }
        let head = 3 * Conv4.depth
        return Tensor.linear(f, weight: p[head], bias: p[head + 1])
    }
}
