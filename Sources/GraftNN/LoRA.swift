import GraftCore

/// The settings of LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"), with the
/// defaults of Hugging Face PEFT's `LoraConfig`: rank 8, α 8, no dropout.
public struct LoRAConfiguration: Sendable, Equatable {
    /// The rank r of the update B·A.
    public var rank = 8
    /// α: the update is scaled by α / r.
    public var alpha: Float = 8
    /// Dropout on the adapter's input only (the frozen path sees x unchanged).
    public var dropout: Float = 0

    public init(rank: Int = 8, alpha: Float = 8, dropout: Float = 0) {
        (self.rank, self.alpha, self.dropout) = (rank, alpha, dropout)
    }

    /// α / r, the factor on B·A.
    public var scaling: Float { alpha / Float(rank) }
}

/// A `Linear` with a low-rank update beside it: y = W x + b + (α/r) · B(A(dropout(x))).
///
/// The wrapped layer's weight and bias stay under their own names (`weight`, `bias`), so a checkpoint of the base
/// keeps its original keys; the adapter adds `lora_A.weight` [r, in] and `lora_B.weight` [out, r], the names PEFT
/// gives them in a saved adapter. A starts as `torch.nn.Linear`'s default weight (Kaiming uniform, a = √5), B at zero,
/// so a fresh adapter leaves the layer's output unchanged. Building the wrapper freezes W and b.
public final class LoRALinear: Module, UnaryLayer {
    /// The frozen layer, whose weight `merge()` changes in place.
    public let base: Linear
    public let loraA: Linear, loraB: Linear
    public let dropout: Dropout
    public let configuration: LoRAConfiguration
    /// Whether (α/r)·B·A has been added into the base weight: the forward pass is then the base layer alone.
    public private(set) var isMerged = false

    public init(_ base: Linear, _ configuration: LoRAConfiguration = LoRAConfiguration(), using rng: inout RandomGenerator) {
        require(configuration.rank >= 1, "LoRALinear: rank must be ≥ 1, got \(configuration.rank)")
        self.base = base
        self.configuration = configuration
        loraA = Linear(base.inFeatures, configuration.rank, bias: false, using: &rng)
        loraB = Linear(configuration.rank, base.outFeatures, bias: false, using: &rng)
        loraB.weight.pointer.update(repeating: 0, count: loraB.weight.count)
        dropout = Dropout(configuration.dropout, seed: rng.next())
        for (_, p) in base.parameters { p.requiresGrad = false }
    }

    override public var parameters: [(String, Tensor)] { base.parameters }
    override public var children: [(String, Module)] { [("lora_A", loraA), ("lora_B", loraB), ("lora_dropout", dropout)] }

    /// The adapter's own tensors, A then B.
    public var adapterParameters: [Tensor] { [loraA.weight, loraB.weight] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = base(x)
        guard !isMerged else { return y }
        let input = configuration.dropout > 0 ? dropout(x) : x
        return y + loraB(loraA(input)) * configuration.scaling
    }

    /// (α/r)·B·A, [out, in]: what the adapter adds to the base weight.
    public func deltaWeight() -> Tensor {
        withNoGrad { Tensor.gemm(loraB.weight, loraA.weight) * configuration.scaling }
    }

    /// The base weight with the update added, W + (α/r)·B·A, as a new tensor (the layer is unchanged).
    public func mergedWeight() -> Tensor {
        isMerged ? base.weight.copy() : withNoGrad { base.weight + deltaWeight() }
    }

    /// Adds the update into the base weight, W ← W + (α/r)·B·A, for inference without the extra matrix products.
    /// Training a merged layer would count the update twice: `unmerge()` first.
    public func merge() {
        guard !isMerged else { return }
        let delta = deltaWeight()
        for i in 0..<delta.count { base.weight.pointer[i] += delta.pointer[i] }
        isMerged = true
    }

    /// Takes the update back out of the base weight (equal to the unmerged weight up to float rounding).
    public func unmerge() {
        guard isMerged else { return }
        let delta = deltaWeight()
        for i in 0..<delta.count { base.weight.pointer[i] -= delta.pointer[i] }
        isMerged = false
    }
}

/// A target that names no layer LoRA can wrap, or a layer that its parent does not let be replaced.
public struct LoRAError: Error, CustomStringConvertible, Equatable {
    public let problem: String
    public var description: String { problem }
}

extension Module {
    /// Wraps every `Linear` whose dotted path equals a target or ends with `.target` (PEFT's matching of
    /// `target_modules`: `query` matches `bert.encoder.layer.0.attention.self.query`, `output.dense` the output
    /// projections) in a `LoRALinear`, freezing its weight and bias; `excluding` paths (a classifier head) are never
    /// wrapped. Returns the paths wrapped, in module order. A target that matches no Linear is an error naming it.
    @discardableResult
    public func injectLoRA(targets: [String], excluding excluded: [String] = [], _ configuration: LoRAConfiguration,
                           using rng: inout RandomGenerator) throws -> [String] {
        func matches(_ path: String, _ target: String) -> Bool { path == target || path.hasSuffix(".\(target)") }
        // A LoRA layer's own A and B are Linear too, and never targets.
        let inside = loraLayers().map(\.0) + excluded
        let linears = namedModules().filter { path, m in m is Linear && !inside.contains { path == $0 || path.hasPrefix("\($0).") } }
        var wrapped: [String] = []
        for target in targets {
            let hits = linears.filter { matches($0.0, target) }
            guard !hits.isEmpty else {
                let names = Set(linears.map { $0.0.split(separator: ".").last.map(String.init) ?? $0.0 }).sorted()
                throw LoRAError(problem: "target '\(target)' matches no Linear layer (layer names here: \(names.joined(separator: ", ")))")
            }
            wrapped += hits.map(\.0)
        }
        let chosen = linears.filter { wrapped.contains($0.0) }
        for (path, module) in chosen {
            do {
                try replaceModule(at: path, with: LoRALinear(module as! Linear, configuration, using: &rng))
            } catch let error as ModuleError {
                throw LoRAError(problem: "cannot wrap '\(path)': \(error)")
            }
        }
        return chosen.map(\.0)
    }

    /// Every LoRA layer in the tree with its dotted path.
    public func loraLayers() -> [(String, LoRALinear)] {
        namedModules().compactMap { path, m in (m as? LoRALinear).map { (path, $0) } }
    }

    /// The state dict with every LoRA layer merged: its `weight` is W + (α/r)·B·A and its adapter tensors are left
    /// out, so the keys are those of the model without adapters (a Hugging Face checkpoint's, for BERT).
    public func mergedStateDict() -> [(String, Tensor)] {
        let layers = loraLayers()
        let adapterKeys = Set(layers.flatMap { p, _ in ["\(p).lora_A.weight", "\(p).lora_B.weight"] })
        let merged = Dictionary(uniqueKeysWithValues: layers.map { p, layer in ("\(p).weight", layer) })
        return stateDict().compactMap { key, t in
            if adapterKeys.contains(key) { return nil }
            return (key, merged[key]?.mergedWeight() ?? t)
        }
    }
}
