import Foundation
import GraftCore
import GraftNN

/// Updates the parameters of its groups in place from their gradients, each group with its own options.
///
/// Parameters in a frozen group, and parameters whose `grad` is nil, are skipped and get no state. State lives in
/// `state[parameterName][slot]` under PyTorch's slot names (`momentum_buffer`, `exp_avg`, `exp_avg_sq`, `step`…).
public protocol Optimizer: AnyObject {
    var groups: [ParameterGroup] { get set }
    func step()
    func zeroGradients()
    /// All state as (`parameter.slot`, tensor), parameters in group order and slots sorted: a checkpoint's order.
    func namedState() -> [(String, Tensor)]
    /// Replaces all state with copies of `state`, as `namedState()` gives it (the inverse, for resuming).
    func loadState(_ state: [(String, Tensor)]) throws
    /// Sets group `group`'s learning rate (a schedule's per-step write): finite and ≥ 0, nothing else re-checked.
    func setLearningRate(_ rate: Float, group: Int) throws
}

extension Optimizer {
    /// Drops every gradient (PyTorch's `zero_grad(set_to_none=True)`); the next backward writes fresh ones.
    public func zeroGradients() {
        for group in groups { for (_, p) in group.parameters { p.grad = nil } }
    }
}

/// A parameter group or option an optimizer cannot run with.
public enum OptimizerError: Error, CustomStringConvertible, Equatable {
    case invalidOption(group: String, option: String, value: String, requirement: String)
    case duplicateParameter(name: String, firstGroup: String, secondGroup: String)
    case emptyGroup(group: String)
    case noGroups
    case noSuchGroup(index: Int, count: Int)
    case unknownOptimizer(String)

    public var description: String {
        switch self {
        case let .unknownOptimizer(name):
            "unknown optimizer \(quotedExcerpt(name)) (known: \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .invalidOption(group, option, value, requirement):
            "parameter group '\(group)': \(option) = \(value) is invalid (\(requirement))"
        case let .duplicateParameter(name, first, second):
            first == second ? "parameter '\(name)' appears twice in parameter group '\(first)'"
                : "parameter '\(name)' appears in parameter groups '\(first)' and '\(second)'"
        case let .emptyGroup(group): "parameter group '\(group)' has no parameters"
        case .noGroups: "optimizer got no parameter groups"
        case let .noSuchGroup(index, count): "no parameter group \(index) (the optimizer has \(count))"
        }
    }
}

/// A saved state tensor the optimizer cannot take, named as `namedState()` names it (`parameter.slot`).
public enum OptimizerStateError: Error, CustomStringConvertible, Equatable {
    case malformedName(String)
    case unknownParameter(tensor: String, parameter: String)
    case unknownSlot(tensor: String, slot: String, known: [String])
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    case invalidStep(tensor: String, value: Float)
    case duplicate(String)

    public var description: String {
        switch self {
        case let .malformedName(tensor): "optimizer state '\(tensor)': not a 'parameter.slot' name"
        case let .unknownParameter(tensor, parameter):
            "optimizer state '\(tensor)': no parameter '\(parameter)' in the optimizer's groups"
        case let .unknownSlot(tensor, slot, known):
            "optimizer state '\(tensor)': this optimizer keeps no '\(slot)' (it keeps \(known.joined(separator: ", ")))"
        case let .shapeMismatch(tensor, expected, found):
            "optimizer state '\(tensor)' has shape \(found), expected \(expected)"
        case let .invalidStep(tensor, value): "optimizer state '\(tensor)' = \(value) is not a whole step count ≥ 0"
        case let .duplicate(tensor): "optimizer state '\(tensor)' is given twice"
        }
    }
}

/// Loops over fewer elements run on the calling thread.
let optimizerGrain = 1 << 15

/// What the optimizers share: the groups, their validation, and lazily allocated per-parameter state.
struct OptimizerCore {
    var groups: [ParameterGroup]
    var state: [String: [String: Tensor]] = [:]
    var stepCount = 0
    /// The slot names this optimizer's update creates, sorted: what `loadState` accepts.
    let slots: [String]
    let check: (GroupOptions, String) throws -> Void

    init(_ groups: [ParameterGroup], slots: [String], check: @escaping (GroupOptions, String) throws -> Void) throws {
        self.groups = groups
        self.slots = slots.sorted()
        self.check = check
        try validate(membershipChanged: true)
    }

    /// Checks every group's options, and when the parameter lists changed, that no parameter or name repeats.
    func validate(membershipChanged: Bool) throws {
        if groups.isEmpty { throw OptimizerError.noGroups }
        for group in groups {
            try checkCommon(group.options, group.name)
            try check(group.options, group.name)
        }
        guard membershipChanged else { return }
        var owner: [ObjectIdentifier: String] = [:]
        var nameOwner: [String: String] = [:]
        for group in groups {
            if group.parameters.isEmpty { throw OptimizerError.emptyGroup(group: group.name) }
            for (name, p) in group.parameters {
                if let firstGroup = owner[ObjectIdentifier(p)] {
                    throw OptimizerError.duplicateParameter(name: name, firstGroup: firstGroup, secondGroup: group.name)
                }
                // State is keyed by name, so two tensors under one name would share (and corrupt) state.
                if let firstGroup = nameOwner[name] {
                    throw OptimizerError.duplicateParameter(name: name, firstGroup: firstGroup, secondGroup: group.name)
                }
                owner[ObjectIdentifier(p)] = group.name
                nameOwner[name] = group.name
            }
        }
    }

    /// Re-validates after `groups` was assigned; an invalid assignment stops with the error (setters cannot throw).
    func revalidate(after old: [ParameterGroup]) {
        let changed = old.count != groups.count || zip(old, groups).contains { a, b in
            a.parameters.count != b.parameters.count
                || zip(a.parameters, b.parameters).contains { $0.0 != $1.0 || $0.1 !== $1.1 }
        }
        do { try validate(membershipChanged: changed) } catch { require(false, "optimizer groups: \(error)") }
    }

    /// A state slot of `name`, created on first use: zero-filled, or left for the caller to fill when `zeroed` is false.
    /// Returns the tensor and whether it was just created.
    mutating func slot(_ name: String, _ key: String, like p: Tensor, zeroed: Bool = true) -> (Tensor, Bool) {
        if let t = state[name]?[key] { return (t, false) }
        let t = Tensor(shape: p.shape, storage: zeroed ? Storage(repeating: 0, count: p.count) : Storage(count: p.count))
        state[name, default: [:]][key] = t
        return (t, true)
    }

    /// Advances the parameter's own step count (PyTorch's per-parameter `step`) and returns it.
    mutating func advanceStep(_ name: String) -> Int {
        let (t, _) = slotScalar(name, "step")
        t.pointer[0] += 1
        return Int(t.pointer[0])
    }

    private mutating func slotScalar(_ name: String, _ key: String) -> (Tensor, Bool) {
        if let t = state[name]?[key] { return (t, false) }
        let t = Tensor(shape: [], storage: Storage(repeating: 0, count: 1))
        state[name, default: [:]][key] = t
        return (t, true)
    }

    /// Counts a step and calls `body` for every parameter of an unfrozen group that has a gradient, in group order.
    mutating func step(_ body: (inout OptimizerCore, String, Tensor, Tensor, GroupOptions) -> Void) {
        stepCount += 1
        for group in groups where !group.frozen {
            for (name, p) in group.parameters {
                guard let g = p.grad else { continue }
                require(g.shape == p.shape, "optimizer: gradient of '\(name)' has shape \(g.shape), parameter \(p.shape)")
                body(&self, name, p, g, group.options)
            }
        }
    }

    /// All state as (`parameter.slot`, tensor), parameters in group order and slots sorted: a checkpoint's order.
    func namedState() -> [(String, Tensor)] {
        groups.flatMap(\.parameters).flatMap { name, _ in
            (state[name] ?? [:]).sorted { $0.key < $1.key }.map { ("\(name).\($0.key)", $0.value) }
        }
    }

    /// Replaces all state with copies of `saved`; everything is checked before anything changes.
    ///
    /// `stepCount` is not state: no update reads it (Adam's bias correction counts the per-parameter `step` slots),
    /// so a resumed run steps bit-identically without it.
    mutating func loadState(_ saved: [(String, Tensor)]) throws {
        let shapes = Dictionary(uniqueKeysWithValues: groups.flatMap(\.parameters).map { ($0.0, $0.1.shape) })
        var loaded: [String: [String: Tensor]] = [:]
        for (tensor, t) in saved {
            // Parameter names have dots of their own (`layer4.1.conv2.weight`); slot names have none.
            guard let dot = tensor.lastIndex(of: "."), dot != tensor.startIndex else {
                throw OptimizerStateError.malformedName(tensor)
            }
            let name = String(tensor[..<dot]), key = String(tensor[tensor.index(after: dot)...])
            guard let shape = shapes[name] else {
                throw OptimizerStateError.unknownParameter(tensor: tensor, parameter: name)
            }
            guard slots.contains(key) else {
                throw OptimizerStateError.unknownSlot(tensor: tensor, slot: key, known: slots)
            }
            let expected = key == "step" ? [] : shape
            guard t.shape == expected else {
                throw OptimizerStateError.shapeMismatch(tensor: tensor, expected: expected, found: t.shape)
            }
            if key == "step", !(t.item >= 0 && t.item == t.item.rounded()) {
                throw OptimizerStateError.invalidStep(tensor: tensor, value: t.item)
            }
            guard loaded[name]?[key] == nil else { throw OptimizerStateError.duplicate(tensor) }
            let copy = Storage(count: t.count)
            copy.pointer.update(from: t.pointer, count: t.count)
            loaded[name, default: [:]][key] = Tensor(shape: t.shape, storage: copy)
        }
        state = loaded
    }
}

func invalid(_ group: String, _ option: String, _ value: Any, _ requirement: String) -> OptimizerError {
    .invalidOption(group: group, option: option, value: "\(value)", requirement: requirement)
}

func checkCommon(_ o: GroupOptions, _ group: String) throws {
    if !(o.learningRate >= 0) { throw invalid(group, "learning rate", o.learningRate, "must be ≥ 0") }
    if !(o.weightDecay >= 0) { throw invalid(group, "weight decay", o.weightDecay, "must be ≥ 0") }
}

func checkMomentum(_ o: GroupOptions, _ group: String) throws {
    if !(o.momentum >= 0 && o.momentum < 1) { throw invalid(group, "momentum", o.momentum, "must be in [0, 1)") }
}

func checkEps(_ o: GroupOptions, _ group: String) throws {
    if !(o.eps > 0) { throw invalid(group, "eps", o.eps, "must be > 0") }
}

/// The value a hyper-parameter was written as: the shortest decimal that rounds to `x`, as a Double.
///
/// PyTorch forms 1 − β, lr·wd and the bias corrections in double from the decimal the user wrote; forming them from
/// the Float (0.999 is stored as 0.99900001) would make 1 − β2 wrong by 1e-5 relative.
func decimalValue(_ x: Float) -> Double {
    guard x.isFinite, x != 0 else { return Double(x) }
    let exponent = Int(log10(abs(Double(x))).rounded(.down))
    for digits in 1...9 {
        let k = digits - 1 - exponent
        let scale = pow(10.0, Double(abs(k)))
        let d = k >= 0 ? (Double(x) * scale).rounded() / scale : (Double(x) / scale).rounded() * scale
        if Float(d) == x { return d }
    }
    return Double(x)
}

/// `a + w·(b − a)` the way PyTorch's lerp kernel rounds it (from the nearer end).
@inline(__always)
func lerp(_ a: Float, _ b: Float, _ w: Float) -> Float {
    abs(w) < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w)
}

/// The shared body of Graft's optimizers: validated groups, per-parameter state and the step count; each
/// optimizer supplies its option checks and its update.
public class CoreOptimizer: Optimizer {
    var core: OptimizerCore
    private let update: (inout OptimizerCore) -> Void

    init(_ groups: [ParameterGroup], slots: [String], check: @escaping (GroupOptions, String) throws -> Void,
         update: @escaping (inout OptimizerCore) -> Void) throws {
        core = try OptimizerCore(groups, slots: slots, check: check)
        self.update = update
    }

    public var groups: [ParameterGroup] {
        get { core.groups }
        set { let old = core.groups; core.groups = newValue; core.revalidate(after: old) }
    }
    /// Per-parameter state by parameter name and PyTorch's slot names (`momentum_buffer`, `exp_avg`, …).
    public var state: [String: [String: Tensor]] { core.state }
    /// Number of `step()` calls on this object; `loadState` does not restore it, as no update depends on it.
    public var stepCount: Int { core.stepCount }

    /// All state as (`parameter.slot`, tensor) in checkpoint order.
    public func namedState() -> [(String, Tensor)] { core.namedState() }

    /// Replaces all state with copies of `state`; an unknown parameter or slot, or a wrong shape, is an error
    /// naming the tensor, and leaves the state as it was.
    public func loadState(_ state: [(String, Tensor)]) throws { try core.loadState(state) }

    /// Writes one group's learning rate in place: unlike assigning `groups`, it neither copies the groups nor
    /// re-validates them, and a bad rate throws instead of stopping the process.
    public func setLearningRate(_ rate: Float, group: Int) throws {
        guard core.groups.indices.contains(group) else {
            throw OptimizerError.noSuchGroup(index: group, count: core.groups.count)
        }
        guard rate.isFinite, rate >= 0 else {
            throw invalid(core.groups[group].name, "learning rate", rate, "must be finite and ≥ 0")
        }
        core.groups[group].options.learningRate = rate
    }

    public func step() { update(&core) }
}
