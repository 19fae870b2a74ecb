import GraftCore

/// What loading a state dict into a module found: keys the module has but the state lacks, keys the state has
/// but the module lacks, and keys whose shapes differ.
public struct LoadReport: Sendable, Equatable, CustomStringConvertible {
    public var loaded: [String] = []
    public var missing: [String] = []
    public var unexpected: [String] = []
    public var mismatched: [Mismatch] = []

    public struct Mismatch: Sendable, Equatable {
        public let key: String
        public let expected: [Int]
        public let found: [Int]
    }

    public var isComplete: Bool { missing.isEmpty && unexpected.isEmpty && mismatched.isEmpty }

    public var description: String {
        var lines = ["loaded \(loaded.count) tensors"]
        if !missing.isEmpty { lines.append("missing: \(missing.joined(separator: ", "))") }
        if !unexpected.isEmpty { lines.append("unexpected: \(unexpected.joined(separator: ", "))") }
        for m in mismatched { lines.append("shape mismatch: \(m.key) is \(m.expected) in the model, \(m.found) in the file") }
        return lines.joined(separator: "\n")
    }
}

/// A strict load that found differences; nothing was changed.
public struct StateDictError: Error, CustomStringConvertible {
    public let report: LoadReport
    public let source: String
    public var description: String { "cannot load \(source) strictly:\n\(report)" }
}

extension Module {
    /// Copies matching tensors from `state` into this module's parameters and buffers, in place (so optimizers
    /// holding them see the new values). `strict` fails, changing nothing, unless every key matches by name and
    /// shape; otherwise what matches is loaded and the report lists the rest (how a 1000-class checkpoint
    /// loads into a model with a new head).
    @discardableResult
    public func load(_ state: [String: Tensor], strict: Bool = true, source: String = "state dict") throws -> LoadReport {
        var report = LoadReport()
        let own = stateDict()
        let ownKeys = Set(own.map(\.0))
        for (key, target) in own {
            guard let value = state[key] else { report.missing.append(key); continue }
            if value.shape != target.shape {
                report.mismatched.append(.init(key: key, expected: target.shape, found: value.shape))
            } else {
                report.loaded.append(key)
            }
        }
        let ignored = Set(namedModules().flatMap { prefix, m in m.ignoredStateKeys.map { prefix.isEmpty ? $0 : "\(prefix).\($0)" } })
        report.unexpected = state.keys.filter { !ownKeys.contains($0) && !ignored.contains($0) }.sorted()
        if strict && !report.isComplete { throw StateDictError(report: report, source: source) }
        let loaded = Set(report.loaded)
        for (key, target) in own where loaded.contains(key) {
            target.pointer.update(from: state[key]!.pointer, count: target.count)
        }
        return report
    }
}
