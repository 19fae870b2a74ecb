import GraftCore

/// A layer or a model: its own parameters and buffers, its children, and a train/eval flag.
///
/// Subclasses list what they hold explicitly (no reflection), in PyTorch's registration order, so dotted paths
/// (`layer4.1.conv2.weight`) and their order match torchvision and Hugging Face state dicts.
open class Module {
    /// Training mode: dropout drops and batch norm uses batch statistics. Set for a whole tree with `train(_:)`.
    public var isTraining = true

    public init() {}

    /// Own trainable tensors, by local name.
    open var parameters: [(String, Tensor)] { [] }
    /// Own state that is saved but not trained (batch-norm running statistics), by local name.
    open var buffers: [(String, Tensor)] { [] }
    /// Direct submodules, by local name. List every submodule the forward pass uses, parameter-free ones
    /// (dropout) included, so `train`/`eval` reach them.
    open var children: [(String, Module)] { [] }
    /// Local names that reference files may carry but this module does not keep (BERT's `position_ids`);
    /// loading skips them instead of reporting them as unexpected.
    open var ignoredStateKeys: [String] { [] }

    /// Installs `module` in place of the child `name`. Modules that allow it (Sequential, a model's head)
    /// override this; the default refuses, so a replacement is never silently ignored.
    open func replaceChild(named name: String, with module: Module) throws {
        throw ModuleError.cannotReplace(path: name, owner: String(describing: type(of: self)))
    }
}

/// Misuse of a module tree: a path that names nothing, a child that cannot be replaced.
public enum ModuleError: Error, CustomStringConvertible, Equatable {
    case noSuchModule(path: String)
    case cannotReplace(path: String, owner: String)
    case wrongType(path: String, expected: String, found: String)

    public var description: String {
        switch self {
        case let .noSuchModule(path): "no module at '\(path)'"
        case let .cannotReplace(path, owner): "\(owner) does not allow replacing its child '\(path)'"
        case let .wrongType(path, expected, found): "module '\(path)' must be \(expected), got \(found)"
        }
    }
}

extension Module {
    /// Every parameter in the tree with its dotted path, depth first in registration order.
    public func namedParameters() -> [(String, Tensor)] { collect { $0.parameters } }

    /// Every buffer in the tree with its dotted path.
    public func namedBuffers() -> [(String, Tensor)] { collect { $0.buffers } }

    /// This module ("") and every descendant with its dotted path.
    public func namedModules() -> [(String, Module)] {
        [("", self)] + children.flatMap { name, child in
            child.namedModules().map { ($0.0.isEmpty ? name : "\(name).\($0.0)", $0.1) }
        }
    }

    /// Parameters and buffers by path: what a checkpoint or a safetensors file holds.
    public func stateDict() -> [(String, Tensor)] {
        collect { $0.parameters + $0.buffers }
    }

    /// The number of parameter elements (buffers excluded), optionally only those that require a gradient.
    public func parameterCount(trainableOnly: Bool = false) -> Int {
        namedParameters().filter { !trainableOnly || $0.1.requiresGrad }.map { $0.1.count }.reduce(0, +)
    }

    /// Sets training mode for this module and all descendants.
    public func train(_ on: Bool = true) {
        for (_, m) in namedModules() { m.isTraining = on }
    }

    /// Sets inference mode for this module and all descendants.
    public func eval() { train(false) }

    /// The descendant at a dotted path ("" is this module).
    public func module(at path: String) throws -> Module {
        var current: Module = self
        for part in path.split(separator: ".") where !path.isEmpty {
            guard let next = current.children.first(where: { $0.0 == part })?.1 else { throw ModuleError.noSuchModule(path: path) }
            current = next
        }
        return current
    }

    /// Replaces the descendant at a dotted path, e.g. a classifier head (`fc`, `classifier.1`).
    public func replaceModule(at path: String, with module: Module) throws {
        let parts = path.split(separator: ".").map(String.init)
        guard let last = parts.last else { throw ModuleError.noSuchModule(path: path) }
        let parent = try self.module(at: parts.dropLast().joined(separator: "."))
        guard parent.children.contains(where: { $0.0 == last }) else { throw ModuleError.noSuchModule(path: path) }
        try parent.replaceChild(named: last, with: module)
    }

    private func collect(_ own: (Module) -> [(String, Tensor)]) -> [(String, Tensor)] {
        namedModules().flatMap { prefix, m in own(m).map { (prefix.isEmpty ? $0.0 : "\(prefix).\($0.0)", $0.1) } }
    }
}

/// A module that maps one tensor to one tensor, so it can sit in a `Sequential`.
public protocol UnaryLayer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}

/// Layers applied in order; children are named "0", "1", … as in `torch.nn.Sequential`.
public final class Sequential: Module, UnaryLayer {
    public private(set) var layers: [any UnaryLayer]

    public init(_ layers: [any UnaryLayer]) {
        self.layers = layers
    }

    public convenience init(_ layers: any UnaryLayer...) { self.init(layers) }

    override public var children: [(String, Module)] { layers.enumerated().map { ("\($0.offset)", $0.element) } }

    override public func replaceChild(named name: String, with module: Module) throws {
        guard let i = Int(name), layers.indices.contains(i) else { throw ModuleError.noSuchModule(path: name) }
        guard let layer = module as? any UnaryLayer else {
            throw ModuleError.wrongType(path: name, expected: "a one-input layer", found: String(describing: type(of: module)))
        }
        replaceLayer(at: i, with: layer)
    }

    /// Puts `layer` in place of layer `i`, which must exist.
    public func replaceLayer(at i: Int, with layer: any UnaryLayer) {
        require(layers.indices.contains(i), "Sequential: no layer \(i) among \(layers.count)")
        layers[i] = layer
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        layers.reduce(x) { $1($0) }
    }
}

/// A model with modules trained beside it (a domain classifier, say): its state is the model's, under the same
/// keys, then each auxiliary module's under its name; training and inference mode reach all of them.
public final class WithAuxiliaries: Module {
    public let base: Module
    public let auxiliaries: [(String, Module)]

    public init(_ base: Module, _ auxiliaries: [(String, Module)]) {
        let names = Set(base.children.map(\.0))
        require(auxiliaries.allSatisfy { !names.contains($0.0) },
                "WithAuxiliaries: \(auxiliaries.map(\.0)) clash with the model's children \(names.sorted())")
        (self.base, self.auxiliaries) = (base, auxiliaries)
    }

    override public var parameters: [(String, Tensor)] { base.parameters }
    override public var buffers: [(String, Tensor)] { base.buffers }
    override public var children: [(String, Module)] { base.children + auxiliaries }
    override public var ignoredStateKeys: [String] { base.ignoredStateKeys }
    override public var isTraining: Bool { didSet { base.isTraining = isTraining } }
}
