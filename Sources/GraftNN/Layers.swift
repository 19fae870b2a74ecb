import GraftCore

/// y = x·Wᵀ + b with weight [out, in], as `torch.nn.Linear` (and its default initialisation).
public final class Linear: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, using rng: inout RandomGenerator) {
        weight = Init.torchDefaultWeight([outFeatures, inFeatures], using: &rng)
        self.bias = bias ? Init.torchDefaultBias(outFeatures, fanIn: inFeatures, using: &rng) : nil
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    override public var parameters: [(String, Tensor)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.linear(x, weight: weight, bias: bias) }
}

/// 2-D convolution over NCHW, as `torch.nn.Conv2d` (plus TensorFlow "SAME" padding through `Padding.same`).
public final class Conv2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: (Int, Int)
    public let padding: Padding
    public let dilation: (Int, Int)
    public let groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: Padding = .valid, dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true,
                using rng: inout RandomGenerator) {
        require(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0,
                "Conv2d: \(inChannels) → \(outChannels) channels do not split into \(groups) groups")
        let shape = [outChannels, inChannels / groups, kernel.0, kernel.1]
        weight = Init.torchDefaultWeight(shape, using: &rng)
        self.bias = bias ? Init.torchDefaultBias(outChannels, fanIn: Init.fans(shape).fanIn, using: &rng) : nil
        (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
    }

    public convenience init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                            groups: Int = 1, bias: Bool = true, using rng: inout RandomGenerator) {
        self.init(inChannels, outChannels, kernel: (kernel, kernel), stride: (stride, stride),
                  padding: .symmetric(padding, padding), groups: groups, bias: bias, using: &rng)
    }

    override public var parameters: [(String, Tensor)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

/// Batch normalisation over the channel axis of [N, C] or [N, C, …] inputs (`BatchNorm1d`/`BatchNorm2d`).
/// In training mode it normalises with batch statistics and updates the running ones; otherwise it uses the
/// running statistics (also while `frozenStatistics` is set, which fine-tuning uses for frozen blocks).
public final class BatchNorm: Module, UnaryLayer {
    public let weight: Tensor?
    public let bias: Tensor?
    public let runningMean: Tensor
    public let runningVar: Tensor
    /// PyTorch's counter of training batches, kept so state dicts round-trip.
    public let batchesTracked: Tensor
    public let momentum: Float
    public let eps: Float
    /// Set for synchronised batch norm: a differentiable sum over ranks, through which training-mode statistics
    /// span the global batch (`training.sync-batch-norm`); nil normalises by this process's rows alone.
    public var sumAcrossRanks: ((Tensor) -> Tensor)?

    public init(_ channels: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true) {
        weight = affine ? Init.ones([channels]) : nil
        bias = affine ? Init.zeros([channels]) : nil
        runningMean = Tensor.zeros([channels])
        runningVar = Tensor.ones([channels])
        batchesTracked = Tensor.zeros([])
        (self.eps, self.momentum) = (eps, momentum)
    }

    override public var parameters: [(String, Tensor)] {
        [weight.map { ("weight", $0) }, bias.map { ("bias", $0) }].compactMap { $0 }
    }

    override public var buffers: [(String, Tensor)] {
        [("running_mean", runningMean), ("running_var", runningVar), ("num_batches_tracked", batchesTracked)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        if isTraining { batchesTracked.pointer[0] += 1 }
        if isTraining, let sumAcrossRanks { return synchronisedForward(x, sumAcrossRanks: sumAcrossRanks) }
        return Tensor.batchNorm(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                                training: isTraining, momentum: momentum, eps: eps)
    }
}

extension BatchNorm {
    /// The per-channel scale and shift [C] this layer applies in inference mode; nil in training mode.
    public var inferenceAffine: (scale: Tensor, shift: Tensor)? {
        isTraining ? nil : Tensor.batchNormAffine(weight: weight, bias: bias, runningMean: runningMean,
                                                  runningVar: runningVar, eps: eps)
    }
}

extension Conv2d {
    /// activation(bn(self(x)) + residual). With `bn` in inference mode this is one op, `Tensor.conv2dAffine`,
    /// which writes the output in a single pass when nothing needs a gradient; in training mode it is those calls
    /// in turn.
    public func callAsFunction(_ x: Tensor, then bn: BatchNorm, adding residual: Tensor? = nil,
                               activation: BlockActivation = .identity) -> Tensor {
        guard let (scale, shift) = bn.inferenceAffine else {
            let y = bn(self(x))
            return activation(residual.map { y + $0 } ?? y)
        }
        return Tensor.conv2dAffine(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                                   groups: groups, scale: scale, shift: shift, adding: residual, activation: activation)
    }
}

/// Layer normalisation over the last axis, as `torch.nn.LayerNorm(dim)`.
public final class LayerNorm: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public init(_ dim: Int, eps: Float = 1e-5) {
        weight = Init.ones([dim])
        bias = Init.zeros([dim])
        self.eps = eps
    }

    override public var parameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }

    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// A lookup table [count, dim] initialised N(0, 1), as `torch.nn.Embedding`.
public final class Embedding: Module {
    public let weight: Tensor

    public init(_ count: Int, _ dim: Int, using rng: inout RandomGenerator) {
        weight = Init.normal([count, dim], std: 1, using: &rng)
    }

    override public var parameters: [(String, Tensor)] { [("weight", weight)] }

    public func callAsFunction(_ ids: Indices) -> Tensor {
        for id in ids.values where id < 0 || id >= weight.shape[0] {
            fatalError("Embedding: id \(id) out of range for a table of \(weight.shape[0]) rows")
        }
        return weight.embedding(ids)
    }
}

/// Keys naming the rows (axis 0) of the batch being run, so that row-wise randomness does not depend on how a
/// global batch is split across ranks: with keys set, a dropout mask row comes from (layer seed, row key) alone.
///
/// The trainer sets them around each training forward pass, from (seed, epoch, global row index):
/// `BatchRowKeys.$current.withValue(keys) { model(x) }`. A row then gets the same masks on any number of ranks,
/// fresh ones every epoch, and the same ones again after a resume, with no generator state to save.
public enum BatchRowKeys {
    /// The current batch's row keys, or nil to let each layer draw from its own sequential generator.
    @TaskLocal public static var current: [UInt64]?
}

/// Inverted dropout; the identity in eval mode.
///
/// With `BatchRowKeys.current` set, the mask of row i depends only on `seed` and key i, and every input must have
/// one row per key. The contract is that keys differ per step (each holds the epoch): no call counter is mixed in,
/// as one would be state to checkpoint, so the same (layer, key) gives the same mask, and a layer called twice in
/// one forward pass would drop the same elements both times (Graft's models call each Dropout once). Without keys
/// the layer draws from `generator`, in order over the whole tensor.
public final class Dropout: Module, UnaryLayer {
    public let probability: Float
    /// The seed the layer was made with; with row keys set, masks come from it and the keys alone.
    public let seed: UInt64
    /// The sequential stream used when no row keys are set; it advances with every call.
    public var generator: RandomGenerator

    public init(_ probability: Float, seed: UInt64 = 0) {
        require(probability >= 0 && probability < 1, "Dropout: probability \(probability) outside [0, 1)")
        self.probability = probability
        self.seed = seed
        generator = RandomGenerator(seed: seed)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard let keys = BatchRowKeys.current else {
            return x.dropout(probability, training: isTraining, using: &generator)
        }
        return x.dropout(probability, training: isTraining, rowKeys: keys, seed: seed)
    }
}
