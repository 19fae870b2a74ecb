import Foundation
import GraftCore
import GraftNN

/// Which parameters a group takes: by dotted-name pattern or by depth in the model's ordered blocks.
public enum ParameterSelector: Sendable, CustomStringConvertible {
    /// Shell-style pattern over dotted names: `*` any run of characters (dots included), `?` one character.
    case glob(String)
    /// A regular expression that must match the whole dotted name.
    case regex(String)
    /// The last `k` blocks (the head is the top).
    case topBlocks(Int)
    /// The top fraction of blocks, rounded up (0.3 → the top 30 %).
    case topFraction(Double)
    /// The named blocks.
    case blocks([String])
    /// Every parameter no earlier group took.
    case rest

    public var description: String {
        switch self {
        case let .glob(p): "glob '\(p)'"
        case let .regex(p): "regex '\(p)'"
        case let .topBlocks(k): "top \(k) blocks"
        case let .topFraction(f): "top \(f * 100)% of blocks"
        case let .blocks(names): "blocks \(names.joined(separator: ", "))"
        case .rest: "the remaining parameters"
        }
    }
}

/// One requested group: what it selects and how it trains.
public struct GroupSpec: Sendable {
    public var name: String
    public var selector: ParameterSelector
    /// The group's options; when nil it takes the base options scaled by `learningRateMultiplier`.
    public var options: GroupOptions?
    public var learningRateMultiplier: Float = 1
    public var frozen = false

    public init(_ name: String, _ selector: ParameterSelector, options: GroupOptions? = nil,
                learningRateMultiplier: Float = 1, frozen: Bool = false) {
        (self.name, self.selector, self.options) = (name, selector, options)
        (self.learningRateMultiplier, self.frozen) = (learningRateMultiplier, frozen)
    }
}

/// A grouping that cannot be right: a pattern that matches nothing, a parameter claimed twice, a parameter left
/// without a group, a bad rate or pattern.
public enum GroupingError: Error, CustomStringConvertible, Equatable {
    case matchesNothing(group: String, selector: String)
    case overlap(parameter: String, groups: [String])
    case unassigned([String])
    case negativeLearningRate(group: String, value: Float)
    case badPattern(group: String, pattern: String)
    case badDepth(group: String, selector: String, blocks: Int)

    public var description: String {
        switch self {
        case let .matchesNothing(group, selector): "group '\(group)': \(selector) matches no parameter"
        case let .overlap(parameter, groups): "parameter '\(parameter)' is in more than one group: \(groups.joined(separator: ", "))"
        case let .unassigned(names): "parameters in no group: \(names.joined(separator: ", ")) (add a group with .rest)"
        case let .negativeLearningRate(group, value): "group '\(group)': learning rate \(value) is negative"
        case let .badPattern(group, pattern): "group '\(group)': '\(pattern)' is not a valid regular expression"
        case let .badDepth(group, selector, blocks): "group '\(group)': \(selector) does not fit a model of \(blocks) blocks"
        }
    }
}

/// Builds parameter groups over `model`: every parameter ends up in exactly one group, in the model's order.
/// `blocks` is the model's depth order (its `blocks` property) for depth selectors.
public func makeGroups(_ model: Module, blocks: [(String, Module)] = [], specs: [GroupSpec],
                       base: GroupOptions) throws -> [ParameterGroup] {
    let all = model.namedParameters()
    let pathOf = Dictionary(all.map { (ObjectIdentifier($0.1), $0.0) }, uniquingKeysWith: { a, _ in a })
    var owner: [String: String] = [:]
    var groups: [ParameterGroup] = []
    for spec in specs {
        var options = spec.options ?? base
        if spec.options == nil { options.learningRate = base.learningRate * spec.learningRateMultiplier }
        guard options.learningRate >= 0 else { throw GroupingError.negativeLearningRate(group: spec.name, value: options.learningRate) }
        let chosen = try select(spec, all: all, blocks: blocks, pathOf: pathOf, taken: owner)
        guard !chosen.isEmpty else { throw GroupingError.matchesNothing(group: spec.name, selector: spec.selector.description) }
        for name in chosen {
            if let other = owner[name] { throw GroupingError.overlap(parameter: name, groups: [other, spec.name]) }
            owner[name] = spec.name
        }
        let set = Set(chosen)
        groups.append(ParameterGroup(name: spec.name, parameters: all.filter { set.contains($0.0) }, options: options,
                                     frozen: spec.frozen))
    }
    let left = all.map(\.0).filter { owner[$0] == nil }
    guard left.isEmpty else { throw GroupingError.unassigned(left) }
    return groups
}

private func select(_ spec: GroupSpec, all: [(String, Tensor)], blocks: [(String, Module)],
                    pathOf: [ObjectIdentifier: String], taken: [String: String]) throws -> [String] {
    switch spec.selector {
    case let .glob(pattern):
        return try matching(globRegex(pattern), spec, all)
    case let .regex(pattern):
        return try matching("^(?:\(pattern))$", spec, all)
    case let .topBlocks(k):
        guard k > 0, k <= blocks.count else {
            throw GroupingError.badDepth(group: spec.name, selector: spec.selector.description, blocks: blocks.count)
        }
        return blocks.suffix(k).flatMap { $0.1.namedParameters().compactMap { pathOf[ObjectIdentifier($0.1)] } }
    case let .topFraction(f):
        guard f > 0, f <= 1, !blocks.isEmpty else {
            throw GroupingError.badDepth(group: spec.name, selector: spec.selector.description, blocks: blocks.count)
        }
        let k = Int((Double(blocks.count) * f).rounded(.up))
        return blocks.suffix(k).flatMap { $0.1.namedParameters().compactMap { pathOf[ObjectIdentifier($0.1)] } }
    case let .blocks(names):
        let chosen = blocks.filter { names.contains($0.0) }
        guard chosen.count == Set(names).count else {
            throw GroupingError.badDepth(group: spec.name, selector: spec.selector.description, blocks: blocks.count)
        }
        return chosen.flatMap { $0.1.namedParameters().compactMap { pathOf[ObjectIdentifier($0.1)] } }
    case .rest:
        return all.map(\.0).filter { taken[$0] == nil }
    }
}

private func matching(_ pattern: String, _ spec: GroupSpec, _ all: [(String, Tensor)]) throws -> [String] {
    guard let names = names(all.map(\.0), matching: pattern) else {
        throw GroupingError.badPattern(group: spec.name, pattern: pattern)
    }
    return names
}

/// The anchored regular expression of a glob over dotted names: `*` any run of characters, `?` one.
func globRegex(_ glob: String) -> String {
    let escaped = NSRegularExpression.escapedPattern(for: glob)
        .replacingOccurrences(of: "\\*", with: ".*").replacingOccurrences(of: "\\?", with: ".")
    return "^\(escaped)$"
}

/// The names that `regex` matches, in order; nil when it is not a valid regular expression.
func names(_ names: [String], matching regex: String) -> [String]? {
    guard let re = try? NSRegularExpression(pattern: regex) else { return nil }
    return names.filter { re.firstMatch(in: $0, range: NSRange($0.startIndex..., in: $0)) != nil }
}

/// Hugging Face's split: biases and normalisation weights (one-dimensional parameters) train without weight
/// decay; everything else keeps `base`'s decay.
public func decayAndNoDecayGroups(_ model: Module, base: GroupOptions) -> [ParameterGroup] {
    let all = model.namedParameters()
    var noDecay = base
    noDecay.weightDecay = 0
    let decayed = all.filter { $0.1.rank > 1 }, plain = all.filter { $0.1.rank <= 1 }
    return [ParameterGroup(name: "decay", parameters: decayed, options: base),
            ParameterGroup(name: "no_decay", parameters: plain, options: noDecay)].filter { !$0.parameters.isEmpty }
}

/// Discriminative learning rates, one per block from the input (index 0) to the head (last).
public enum DiscriminativeRates {
    /// Layer-wise decay: the head trains at `top`, each block below at `factor` times the one above
    /// (ULMFiT's 1/2.6, timm's `layer_decay`).
    public static func layerDecay(top: Float, factor: Float, blocks: Int) -> [Float] {
        (0..<blocks).map { top * powf(factor, Float(blocks - 1 - $0)) }
    }

    /// fastai's `slice(lo, hi)`: rates spread geometrically from `lo` (first block) to `hi` (last block).
    public static func spread(_ lo: Float, _ hi: Float, blocks: Int) -> [Float] {
        guard blocks > 1 else { return [hi] }
        return (0..<blocks).map { lo * powf(hi / lo, Float($0) / Float(blocks - 1)) }
    }

    /// One group per block of `model`, each with its own rate (all other options from `base`).
    public static func groups(_ model: Module, blocks: [(String, Module)], rates: [Float],
                              base: GroupOptions) throws -> [ParameterGroup] {
        require(rates.count == blocks.count, "DiscriminativeRates: \(rates.count) rates for \(blocks.count) blocks")
        let specs = zip(blocks, rates).map { block, rate in
            var options = base
            options.learningRate = rate
            return GroupSpec(block.0, .blocks([block.0]), options: options)
        }
        return try makeGroups(model, blocks: blocks, specs: specs, base: base)
    }
}
