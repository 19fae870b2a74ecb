import GraftCore

/// Multi-head self-attention projections and scores, as Hugging Face's `BertSelfAttention` (children `query`,
/// `key`, `value`): returns the attended values [B, S, H], before the output projection. The projections can be
/// replaced by any one-input layer of the same shape (a `LoRALinear`).
public final class MultiHeadSelfAttention: Module {
    public private(set) var query: any UnaryLayer, key: any UnaryLayer, value: any UnaryLayer
    public let heads: Int
    public let dropout: Dropout

    public init(hidden: Int, heads: Int, dropout: Float = 0.1, using rng: inout RandomGenerator) {
        require(hidden % heads == 0, "MultiHeadSelfAttention: hidden size \(hidden) is not divisible by \(heads) heads")
        query = Linear(hidden, hidden, using: &rng)
        key = Linear(hidden, hidden, using: &rng)
        value = Linear(hidden, hidden, using: &rng)
        self.heads = heads
        self.dropout = Dropout(dropout, seed: rng.next())
    }

    override public var children: [(String, Module)] {
        [("query", query), ("key", key), ("value", value), ("dropout", dropout)]
    }

    override public func replaceChild(named name: String, with module: Module) throws {
        let layer = try replacementLayer(module, for: name)
        switch name {
        case "query": query = layer
        case "key": key = layer
        case "value": value = layer
        default: try super.replaceChild(named: name, with: module)
        }
    }

    /// x [B, S, H]; `additiveMask` [B, 1, 1, S] holds 0 for tokens to attend and a large negative number for padding.
    public func callAsFunction(_ x: Tensor, additiveMask: Tensor?) -> Tensor {
        require(x.rank == 3, "MultiHeadSelfAttention: input must be [batch, sequence, hidden], got \(x.shape)")
        let d = x.shape[2] / heads
        let scores = Tensor.headScores(query(x), key(x), heads: heads, alpha: 1 / Float(d).squareRoot())
        let probabilities = dropout(additiveMask.map { scores.softmax(addingRowMask: $0) } ?? scores.softmax(axis: -1))
        return Tensor.headMix(probabilities, value(x), heads: heads)
    }
}

/// LayerNorm(x + dropout(dense(h))): the post-LN residual step of BERT (`BertSelfOutput`, `BertOutput`).
public final class ResidualNorm: Module {
    public private(set) var dense: any UnaryLayer
    public let norm: LayerNorm
    public let dropout: Dropout

    public init(_ inFeatures: Int, _ hidden: Int, eps: Float, dropout: Float, using rng: inout RandomGenerator) {
        dense = Linear(inFeatures, hidden, using: &rng)
        norm = LayerNorm(hidden, eps: eps)
        self.dropout = Dropout(dropout, seed: rng.next())
    }

    override public var children: [(String, Module)] { [("dense", dense), ("LayerNorm", norm), ("dropout", dropout)] }

    override public func replaceChild(named name: String, with module: Module) throws {
        guard name == "dense" else { return try super.replaceChild(named: name, with: module) }
        dense = try replacementLayer(module, for: name)
    }

    public func callAsFunction(_ h: Tensor, residual: Tensor) -> Tensor { norm(dropout(dense(h)) + residual) }
}

/// A post-LN Transformer encoder layer as BERT defines it, with Hugging Face's child names: `attention.self`,
/// `attention.output`, `intermediate.dense`, `output`.
public final class TransformerEncoderLayer: Module {
    public let selfAttention: MultiHeadSelfAttention
    public let attentionOutput: ResidualNorm
    public private(set) var intermediate: any UnaryLayer
    public let output: ResidualNorm
    private let attentionGroup: Group

    public init(hidden: Int, heads: Int, intermediate size: Int, eps: Float = 1e-12, dropout: Float = 0.1,
                attentionDropout: Float = 0.1, using rng: inout RandomGenerator) {
        selfAttention = MultiHeadSelfAttention(hidden: hidden, heads: heads, dropout: attentionDropout, using: &rng)
        attentionOutput = ResidualNorm(hidden, hidden, eps: eps, dropout: dropout, using: &rng)
        intermediate = Linear(hidden, size, using: &rng)
        output = ResidualNorm(size, hidden, eps: eps, dropout: dropout, using: &rng)
        attentionGroup = Group([("self", selfAttention), ("output", attentionOutput)])
    }

    override public var children: [(String, Module)] {
        // `intermediate.dense` is made on each call, so that it shows a replaced layer.
        let intermediateGroup = Group([("dense", intermediate)]) { [unowned self] name, module in
            guard name == "dense" else { throw ModuleError.noSuchModule(path: name) }
            intermediate = try replacementLayer(module, for: "intermediate.dense")
        }
        return [("attention", attentionGroup), ("intermediate", intermediateGroup), ("output", output)]
    }

    public func callAsFunction(_ x: Tensor, additiveMask: Tensor?) -> Tensor {
        let attended = attentionOutput(selfAttention(x, additiveMask: additiveMask), residual: x)
        return output(intermediate(attended).gelu(), residual: attended)
    }
}

/// A fixed set of named submodules with no computation of its own, for state-dict paths such as
/// `attention.self.query` where the reference library nests modules.
public final class Group: Module {
    private let members: [(String, Module)]
    /// Installs a replacement member in the module that owns it (nil: members cannot be replaced).
    private let replace: ((String, Module) throws -> Void)?

    public init(_ members: [(String, Module)], replace: ((String, Module) throws -> Void)? = nil) {
        (self.members, self.replace) = (members, replace)
    }

    override public var children: [(String, Module)] { members }

    override public func replaceChild(named name: String, with module: Module) throws {
        guard let replace else { return try super.replaceChild(named: name, with: module) }
        try replace(name, module)
    }
}

/// `module` as a one-input layer to stand in for the child `name`, or the error saying it cannot.
func replacementLayer(_ module: Module, for name: String) throws -> any UnaryLayer {
    guard let layer = module as? any UnaryLayer else {
        throw ModuleError.wrongType(path: name, expected: "a one-input layer", found: String(describing: type(of: module)))
    }
    return layer
}

extension Tensor {
    /// Turns a [B, S] attention mask of 1 (attend) and 0 (padding) into the additive [B, 1, 1, S] form.
    public static func additiveAttentionMask(_ mask: Tensor) -> Tensor {
        require(mask.rank == 2, "additiveAttentionMask: mask must be [batch, sequence], got \(mask.shape)")
        return ((1 - mask) * -1e9).reshaped([mask.shape[0], 1, 1, mask.shape[1]])
    }
}
