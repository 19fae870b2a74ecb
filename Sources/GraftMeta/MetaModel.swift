import GraftCore
import GraftNN

/// A model whose forward pass can run on parameters other than its own: what MAML needs to evaluate the adapted
/// parameters φ = θ − α∇L(θ) while autograd follows φ back to θ, to any order.
///
/// `parameters` are the meta-parameters θ (leaves that require a gradient), and `callAsFunction(_:parameters:)`
/// computes the forward pass from whatever tensors it is given, in that order and with those shapes, through
/// recorded ops only: no state is read or written, so the same call on θ and on φ differ only in the tensors.
public protocol MetaModel: AnyObject {
    /// The meta-parameters θ by name, in the order `callAsFunction(_:parameters:)` takes them.
    var parameters: [(String, Tensor)] { get }
    /// The forward pass of `x` with `parameters` in place of the model's own (same order and shapes).
    func callAsFunction(_ x: Tensor, parameters: [Tensor]) -> Tensor
}

extension MetaModel {
    /// The meta-parameter tensors θ, in order.
    public var parameterTensors: [Tensor] { parameters.map(\.1) }

    /// The forward pass on the model's own parameters θ.
    public func callAsFunction(_ x: Tensor) -> Tensor { self(x, parameters: parameterTensors) }

    /// The number of meta-parameter elements.
    public var parameterCount: Int { parameters.map { $0.1.count }.reduce(0, +) }

    /// Stops with a message naming `op` unless `given` has the meta-parameters' count and shapes.
    func checkParameters(_ given: [Tensor], op: String) {
        let own = parameters
        require(given.count == own.count, "\(op): \(given.count) parameters given, the model has \(own.count)")
        for (i, (name, p)) in own.enumerated() {
            require(given[i].shape == p.shape, "\(op): parameter \(i) ('\(name)') has shape \(given[i].shape), expected \(p.shape)")
        }
    }
}

/// A multilayer perceptron as a `MetaModel`: Linear layers with ReLU between them (none after the last).
///
/// Parameters are named `layers.0.weight`, `layers.0.bias`, `layers.2.weight`, … and initialised in the same order
/// and with the same draws as GraftNN's `MLP(sizes:using:)` (PyTorch's default Linear initialisation), so both
/// compute the same function from the same generator.
public final class MetaMLP: MetaModel {
    /// [inputs, hidden…, outputs].
    public let sizes: [Int]
    public let parameters: [(String, Tensor)]

    /// sizes = [inputs, hidden…, outputs]: one Linear per consecutive pair. `prefix` replaces the first parameters
    /// (weight, bias, weight, …) with copies of given tensors, a pretrained body under fresh layers; the fresh layers
    /// are drawn as without it.
    public init(sizes: [Int], startingWith prefix: [Tensor] = [], using rng: inout RandomGenerator) {
        require(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 }, "MetaMLP: sizes must be ≥ 2 positive widths, got \(sizes)")
        require(prefix.count <= 2 * (sizes.count - 1), "MetaMLP: \(prefix.count) given tensors for \(sizes.count - 1) layers")
        self.sizes = sizes
        var parameters: [(String, Tensor)] = []
        for (i, (fanIn, fanOut)) in zip(sizes, sizes.dropFirst()).enumerated() {
            // Index 2i as in MLP, whose Sequential puts a ReLU between consecutive Linears.
            parameters.append(("layers.\(2 * i).weight", Init.torchDefaultWeight([fanOut, fanIn], using: &rng)))
            parameters.append(("layers.\(2 * i).bias", Init.torchDefaultBias(fanOut, fanIn: fanIn, using: &rng)))
        }
        for (i, given) in prefix.enumerated() {
            let (name, fresh) = parameters[i]
            require(given.shape == fresh.shape, "MetaMLP: '\(name)' is \(fresh.shape), the given tensor \(given.shape)")
            let copy = given.detached().copy()
            copy.requiresGrad = fresh.requiresGrad
            parameters[i] = (name, copy)
        }
        self.parameters = parameters
    }

    /// x [N, inputs] (or any shape ending in `inputs`) to [N, outputs].
    public func callAsFunction(_ x: Tensor, parameters p: [Tensor]) -> Tensor {
        checkParameters(p, op: "MetaMLP")
        let layers = sizes.count - 1
        var h = x
        for l in 0..<layers {
            h = Tensor.linear(h, weight: p[2 * l], bias: p[2 * l + 1])
            if l < layers - 1 { h = h.relu() }
        }
        return h
    }
}
