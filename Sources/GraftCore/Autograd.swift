/// Maps the gradient of an op's output to gradients of its inputs; `needs[i]` tells which inputs want one.
/// Rules are written with differentiable tensor ops, so running them while recording gives higher-order gradients.
public typealias BackwardRule = (_ gradOutput: Tensor, _ needs: [Bool]) -> [Tensor?]

/// One recorded op on the tape: its inputs and how to send a gradient back to them.
public final class Node: @unchecked Sendable {
    public let name: String
    public let inputs: [Tensor]
    let needs: [Bool]
    let rule: BackwardRule
    fileprivate var pending: Tensor?

    init(name: String, inputs: [Tensor], needs: [Bool], rule: @escaping BackwardRule) {
        self.name = name
        self.inputs = inputs
        self.needs = needs
        self.rule = rule
    }
}

/// Whether ops record onto the tape. Scoped per task, never a global switch.
public enum GradMode {
    @TaskLocal public static var isEnabled = true
}

/// Runs `body` without recording: results carry no `gradFn`, as in `torch.no_grad()`.
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isEnabled.withValue(false, operation: body)
}

/// Runs `body` with recording on, even inside a no-grad scope.
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isEnabled.withValue(true, operation: body)
}

extension Tensor {
    /// Wraps an op's output, recording a node only when recording is on and some input needs a gradient:
    /// a frozen subgraph therefore costs its forward pass and nothing more.
    static func result(_ name: String, _ shape: [Int], _ storage: Storage, _ inputs: [Tensor],
                       _ rule: @escaping BackwardRule) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else {
            return Tensor(shape: shape, storage: storage)
        }
        return Tensor(shape: shape, storage: storage,
                      gradFn: Node(name: name, inputs: inputs, needs: inputs.map(\.requiresGrad), rule: rule))
    }

    /// An op defined outside GraftCore (a collective across ranks, say): the caller computes `output`, and it is
    /// recorded with `rule` exactly as the built-in ops are.
    public static func custom(_ name: String, output: Tensor, inputs: [Tensor], backward rule: @escaping BackwardRule) -> Tensor {
        result(name, output.shape, output.storage, inputs, rule)
    }

    /// Accumulates d(self)/d(leaf) · gradient into `grad` of every leaf that requires a gradient.
    /// Without `gradient` the tensor must hold one element. With `createGraph`, the gradients are themselves recorded.
    public func backward(_ gradient: Tensor? = nil, createGraph: Bool = false) {
        let seed = gradient ?? seedGradient(op: "backward")
        require(seed.shape == shape, "backward: gradient shape \(seed.shape) does not match tensor shape \(shape)")
        guard requiresGrad else { fatalError("backward: tensor of shape \(shape) does not require a gradient") }
        GradMode.$isEnabled.withValue(createGraph) {
            propagate(seed, targets: nil) { leaf, g in
                leaf.grad = leaf.grad.map { $0 + g } ?? g
            }
        }
    }

    func seedGradient(op: String) -> Tensor {
        require(count == 1, "\(op): a tensor of shape \(shape) needs an explicit gradient")
        return Tensor.ones(shape)
    }

    /// Sends `seed` back through the tape. With `targets`, only the nodes on a path to a target run, gradients stop
    /// at the targets, and `deliver` receives them; otherwise `deliver` receives every reachable leaf's gradient.
    fileprivate func propagate(_ seed: Tensor, targets: Set<ObjectIdentifier>?, deliver: (Tensor, Tensor) -> Void) {
        if let targets, targets.contains(ObjectIdentifier(self)) { deliver(self, seed); return }
        guard let root = gradFn else {
            if targets == nil, leafRequiresGrad { deliver(self, seed) }
            return
        }
        let order = Tensor.topologicalOrder(from: root, targets: targets)
        root.pending = seed
        defer { for node in order { node.pending = nil } }
        for node in order.reversed() {
            guard let g = node.pending else { continue }
            node.pending = nil
            let grads = node.rule(g, node.needs)
            for (i, input) in node.inputs.enumerated() where node.needs[i] {
                guard let gi = grads[i] else { continue }
                require(gi.shape == input.shape,
                             "autograd: \(node.name) returned a gradient of shape \(gi.shape) for an input of shape \(input.shape)")
                if let targets {
                    if targets.contains(ObjectIdentifier(input)) { deliver(input, gi); continue }
                } else if input.gradFn == nil {
                    deliver(input, gi); continue
                }
                if let next = input.gradFn { next.pending = next.pending.map { $0 + gi } ?? gi }
            }
        }
    }

    /// Nodes reachable from `root` in topological order (inputs before users). With targets, only nodes that lead
    /// to a target are kept, and the walk does not pass through a target.
    private static func topologicalOrder(from root: Node, targets: Set<ObjectIdentifier>?) -> [Node] {
        var order: [Node] = []
        var state: [ObjectIdentifier: Bool] = [:]  // false: on the stack; true: finished and leads to a target
        var stack: [(Node, Int)] = [(root, 0)]
        state[ObjectIdentifier(root)] = false
        var leads: [ObjectIdentifier: Bool] = [:]
        while let (node, next) = stack.popLast() {
            if next < node.inputs.count {
                stack.append((node, next + 1))
                let input = node.inputs[next]
                guard node.needs[next] else { continue }
                if let targets, targets.contains(ObjectIdentifier(input)) {
                    leads[ObjectIdentifier(node)] = true
                    continue
                }
                guard let child = input.gradFn else {
                    if targets == nil { leads[ObjectIdentifier(node)] = true }
                    continue
                }
                let id = ObjectIdentifier(child)
                if let finished = state[id] {
                    if finished, leads[id] == true { leads[ObjectIdentifier(node)] = true }
                    continue
                }
                state[id] = false
                stack.append((child, 0))
            } else {
                let id = ObjectIdentifier(node)
                state[id] = true
                if let (parent, _) = stack.last, leads[id] == true { leads[ObjectIdentifier(parent)] = true }
                if leads[id] == true { order.append(node) }
            }
        }
        return order
    }
}

/// Gradients of `output` with respect to `inputs`, without touching any `grad` field (`torch.autograd.grad`).
/// With `createGraph`, the returned gradients are recorded, so they can be differentiated again.
/// An input that `output` does not depend on gets zeros.
public func grad(of output: Tensor, wrt inputs: [Tensor], gradOutput: Tensor? = nil,
                 createGraph: Bool = false) -> [Tensor] {
    let seed = gradOutput ?? output.seedGradient(op: "grad")
    require(seed.shape == output.shape, "grad: gradOutput shape \(seed.shape) does not match output shape \(output.shape)")
    for input in inputs { require(input.requiresGrad, "grad: an input of shape \(input.shape) does not require a gradient") }
    let targets = Set(inputs.map(ObjectIdentifier.init))
    var found: [ObjectIdentifier: Tensor] = [:]
    GradMode.$isEnabled.withValue(createGraph) {
        output.propagate(seed, targets: targets) { input, g in
            let id = ObjectIdentifier(input)
            found[id] = found[id].map { $0 + g } ?? g
        }
    }
    return inputs.map { found[ObjectIdentifier($0)] ?? Tensor.zeros($0.shape) }
}
