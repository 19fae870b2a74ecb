import GraftCore

/// Weight initialisers with PyTorch's conventions (`torch.nn.init`): fans from a weight's shape, gains by
/// nonlinearity. Each returns a fresh leaf that requires a gradient.
public enum Init {
    /// The nonlinearity a layer feeds, which sets the gain.
    public enum Nonlinearity: Sendable {
        case linear, sigmoid, tanh, relu, leakyRelu(Float)

        public var gain: Float {
            switch self {
            case .linear, .sigmoid: 1
            case .tanh: 5.0 / 3
            case .relu: Float(2).squareRoot()
            case let .leakyRelu(a): (2 / (1 + a * a)).squareRoot()
            }
        }
    }

    /// Whether a Kaiming initialiser keeps the variance of activations (fan in) or of gradients (fan out).
    public enum FanMode: Sendable { case fanIn, fanOut }

    /// (fan_in, fan_out) of a weight: [out, in, kernel…] as `torch.nn.init._calculate_fan_in_and_fan_out`.
    public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        require(shape.count >= 2, "Init: fans need a weight of rank ≥ 2, got \(shape)")
        let receptive = shape.dropFirst(2).reduce(1, *)
        return (shape[1] * receptive, shape[0] * receptive)
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor.zeros(shape, requiresGrad: true) }
    public static func ones(_ shape: [Int]) -> Tensor { Tensor.ones(shape, requiresGrad: true) }

    public static func uniform(_ shape: [Int], bound: Float, using rng: inout RandomGenerator) -> Tensor {
        Tensor.randomUniform(shape, low: -bound, high: bound, using: &rng, requiresGrad: true)
    }

    public static func normal(_ shape: [Int], std: Float, using rng: inout RandomGenerator) -> Tensor {
        Tensor.randomNormal(shape, std: std, using: &rng, requiresGrad: true)
    }

    public static func kaimingUniform(_ shape: [Int], mode: FanMode = .fanIn, nonlinearity: Nonlinearity = .leakyRelu(0),
                                      using rng: inout RandomGenerator) -> Tensor {
        let f = fans(shape)
        return uniform(shape, bound: nonlinearity.gain * (3 / Float(mode == .fanIn ? f.fanIn : f.fanOut)).squareRoot(), using: &rng)
    }

    public static func kaimingNormal(_ shape: [Int], mode: FanMode = .fanIn, nonlinearity: Nonlinearity = .leakyRelu(0),
                                     using rng: inout RandomGenerator) -> Tensor {
        let f = fans(shape)
        return normal(shape, std: nonlinearity.gain / Float(mode == .fanIn ? f.fanIn : f.fanOut).squareRoot(), using: &rng)
    }

    public static func xavierUniform(_ shape: [Int], gain: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        let f = fans(shape)
        return uniform(shape, bound: gain * (6 / Float(f.fanIn + f.fanOut)).squareRoot(), using: &rng)
    }

    public static func xavierNormal(_ shape: [Int], gain: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        let f = fans(shape)
        return normal(shape, std: gain * (2 / Float(f.fanIn + f.fanOut)).squareRoot(), using: &rng)
    }

    /// PyTorch's default for Linear and Conv weights: Kaiming uniform with a = √5, i.e. U(±1/√fan_in).
    public static func torchDefaultWeight(_ shape: [Int], using rng: inout RandomGenerator) -> Tensor {
        kaimingUniform(shape, nonlinearity: .leakyRelu(Float(5).squareRoot()), using: &rng)
    }

    /// PyTorch's default for Linear and Conv biases: U(±1/√fan_in) of the weight.
    public static func torchDefaultBias(_ count: Int, fanIn: Int, using rng: inout RandomGenerator) -> Tensor {
        uniform([count], bound: fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0, using: &rng)
    }
}
