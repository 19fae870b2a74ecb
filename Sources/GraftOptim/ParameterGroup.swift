import GraftCore
import GraftNN

/// The hyper-parameters one group of parameters trains with (each optimizer reads the ones it uses).
public struct GroupOptions: Sendable, Equatable {
    public var learningRate: Float
    public var weightDecay: Float = 0
    /// SGD momentum and RMSprop momentum.
    public var momentum: Float = 0
    public var dampening: Float = 0
    public var nesterov = false
    /// Adam/AdamW (β1, β2).
    public var betas: (Float, Float) = (0.9, 0.999)
    public var eps: Float = 1e-8
    /// RMSprop smoothing constant.
    public var alpha: Float = 0.99
    public var centered = false

    public init(learningRate: Float) { self.learningRate = learningRate }

    public static func == (a: GroupOptions, b: GroupOptions) -> Bool {
        a.learningRate == b.learningRate && a.weightDecay == b.weightDecay && a.momentum == b.momentum
            && a.dampening == b.dampening && a.nesterov == b.nesterov && a.betas == b.betas && a.eps == b.eps
            && a.alpha == b.alpha && a.centered == b.centered
    }
}

/// Named parameters that share hyper-parameters and a frozen flag, as a PyTorch param group.
public struct ParameterGroup {
    public var name: String
    public var parameters: [(String, Tensor)]
    public var options: GroupOptions
    /// A frozen group gets no gradient computed and no update.
    public var frozen: Bool {
        didSet { for (_, p) in parameters { p.requiresGrad = !frozen } }
    }

    public init(name: String, parameters: [(String, Tensor)], options: GroupOptions, frozen: Bool = false) {
        self.name = name
        self.parameters = parameters
        self.options = options
        self.frozen = frozen
        for (_, p) in parameters { p.requiresGrad = !frozen }
    }
}
