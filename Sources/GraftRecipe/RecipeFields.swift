import Foundation
import GraftCore
import GraftIO
import GraftOptim

/// A recipe value that is missing, mistyped, unknown or invalid: `file:line: field: problem`.
public struct RecipeError: Error, CustomStringConvertible {
    public let file: String
    public let line: Int?
    /// The dotted field (`training.epochs`); empty for the whole recipe.
    public let field: String
    public let problem: String

    /// A line of 0 (a field set on the command line) is no line.
    public init(file: String, line: Int?, field: String, _ problem: String) {
        (self.file, self.line, self.field, self.problem) = (file, line == 0 ? nil : line, field, problem)
    }

    /// The field is cut like a value (`excerpt`): an unknown key is the user's text and may be any length.
    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(field.isEmpty ? "" : "\(excerpt(field)): ")\(problem)"
    }
}

/// One mapping of a recipe, read field by field: every read names its type, every error names the field and its
/// line, and `finish()` rejects fields nobody read, so a misspelt option never goes silently unused.
struct Fields {
    let file: String
    /// Dotted path of this mapping ("" at the top).
    let path: String
    let line: Int?
    private let entries: [YAMLEntry]
    private var read: [String] = []

    /// A mapping node, or an empty one for a missing or null node.
    init(_ node: YAMLNode?, path: String, file: String) throws {
        (self.file, self.path, line) = (file, path, node?.line)
        guard let node, !node.isNull else { entries = []; return }
        guard let entries = node.entries else {
            throw RecipeError(file: file, line: node.line, field: path, "must be a mapping of fields")
        }
        self.entries = entries
    }

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ key: String, _ problem: String) -> RecipeError {
        RecipeError(file: file, line: line(of: key), field: field(key), problem)
    }

    func has(_ key: String) -> Bool { entries.contains { $0.key == key && !$0.value.isNull } }

    /// The line of `key`, or of this mapping when the key is absent.
    func line(of key: String) -> Int? { entries.first { $0.key == key }?.line ?? line }

    /// The node of `key` (nil when absent or null), marking it read.
    mutating func node(_ key: String) -> YAMLNode? {
        read.append(key)
        return entries.first { $0.key == key }.flatMap { $0.value.isNull ? nil : $0.value }
    }

    mutating func section(_ key: String) throws -> Fields { try Fields(node(key), path: field(key), file: file) }

    mutating func string(_ key: String) throws -> String? {
        guard let n = node(key) else { return nil }
        guard let s = n.scalar else { throw error(key, "must be a single value") }
        return try expandEnvironment(s, key)
    }

    mutating func string(_ key: String, default value: String) throws -> String { try string(key) ?? value }

    /// One of `choices`; anything else is an error listing them.
    mutating func choice(_ key: String, _ choices: [String], default value: String? = nil) throws -> String? {
        guard let s = try string(key) else { return value }
        guard choices.contains(s) else { throw error(key, "\(quotedExcerpt(s)) is not one of: \(choices.joined(separator: ", "))") }
        return s
    }

    mutating func int(_ key: String, min: Int? = nil) throws -> Int? {
        guard let s = try string(key) else { return nil }
        guard let v = Int(s) else { throw error(key, "\(quotedExcerpt(s)) is not an integer") }
        if let min, v < min { throw error(key, "must be ≥ \(min), got \(v)") }
        return v
    }

    mutating func double(_ key: String) throws -> Double? {
        guard let s = try string(key) else { return nil }
        guard let v = Double(s), v.isFinite else { throw error(key, "\(quotedExcerpt(s)) is not a finite number") }
        return v
    }

    mutating func fraction(_ key: String) throws -> Double? {
        guard let v = try double(key) else { return nil }
        guard v >= 0 && v < 1 else { throw error(key, "must be in [0, 1), got \(v)") }
        return v
    }

    /// A learning rate: a finite number ≥ 0.
    mutating func rate(_ key: String) throws -> Float? {
        guard let v = try double(key) else { return nil }
        guard v >= 0 else { throw error(key, "learning rate must be ≥ 0, got \(v)") }
        return Float(v)
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let s = try string(key) else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(key, "\(quotedExcerpt(s)) is not true or false")
        }
    }

    mutating func ints(_ key: String) throws -> [Int]? {
        guard let n = node(key) else { return nil }
        return try texts(n, key).map { s in
            guard let v = Int(s) else { throw error(key, "\(quotedExcerpt(s)) is not an integer") }
            return v
        }
    }

    mutating func strings(_ key: String) throws -> [String]? {
        guard let n = node(key) else { return nil }
        return try texts(n, key)
    }

    mutating func doubles(_ key: String) throws -> [Double]? {
        guard let n = node(key) else { return nil }
        return try texts(n, key).map { s in
            guard let v = Double(s), v.isFinite else { throw error(key, "\(quotedExcerpt(s)) is not a number") }
            return v
        }
    }

    /// The remaining fields as options for a named component (a schedule), each read and checked by it.
    mutating func namedOptions(owner: String, excluding: Set<String>) throws -> NamedOptions {
        var pairs: [(key: String, value: [String])] = []
        for entry in entries where !excluding.contains(entry.key) && !entry.value.isNull {
            read.append(entry.key)
            pairs.append((entry.key, try texts(entry.value, entry.key)))
        }
        return NamedOptions(owner, pairs)
    }

    /// A value or a list of values, as text.
    private func texts(_ n: YAMLNode, _ key: String) throws -> [String] {
        try (n.items ?? [n]).map { item in
            guard let s = item.scalar else { throw error(key, "must be a value or a list of values") }
            return try expandEnvironment(s, key)
        }
    }

    /// Throws for the first field that was not read, listing the known ones.
    func finish() throws { try checkKnown(read) }

    /// Throws for the first field not in `known`: a misspelt section is reported before what it leaves missing.
    func checkKnown(_ known: [String]) throws {
        if let unknown = entries.first(where: { !known.contains($0.key) }) {
            throw RecipeError(file: file, line: unknown.line, field: field(unknown.key),
                              "unknown field\(unknown.line == 0 ? " (from --set)" : "") (known here: \(known.joined(separator: ", ")))")
        }
    }

    /// `${NAME}` and `${NAME:-default}` replaced from the environment; an unset name without a default is an error.
    private func expandEnvironment(_ s: String, _ key: String) throws -> String {
        guard s.contains("${") else { return s }
        var out = "", rest = Substring(s)
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { throw error(key, "unclosed ${ in \(quotedExcerpt(s))") }
            let body = rest[start.upperBound..<end]
            let (name, fallback) = body.range(of: ":-").map { (String(body[..<$0.lowerBound]), String(body[$0.upperBound...])) }
                ?? (String(body), nil)
            if let value = ProcessInfo.processInfo.environment[name], !value.isEmpty {
                out += value
            } else if let fallback {
                out += fallback
            } else {
                throw error(key, "environment variable \(excerpt(name)) is not set (in \(quotedExcerpt(s)))")
            }
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }
}

/// Replaces the value at a dotted path (`training.epochs=3`), adding missing mappings: command-line overrides.
/// The value is read as YAML, so `[1, 2]` is a list; a null value (`model.body=null`) removes the field, so its
/// default applies.
func override(_ root: YAMLNode, _ assignment: String, file: String) throws -> YAMLNode {
    guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
        throw RecipeError(file: file, line: nil, field: "", "override \(quotedExcerpt(assignment)) is not of the form field.path=value")
    }
    let keys = assignment[..<eq].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    guard !keys.contains(where: \.isEmpty) else {
        throw RecipeError(file: file, line: nil, field: "", "override \(quotedExcerpt(assignment)) has an empty field name")
    }
    let valueText = String(assignment[assignment.index(after: eq)...])
    let parsed: YAMLNode
    do { parsed = unplaced(try YAML.parse("v: \(valueText)", file: "override \(excerpt(assignment))")["v"] ?? YAMLNode(line: 0, kind: .null)) } catch {
        throw RecipeError(file: file, line: nil, field: keys.joined(separator: "."), "override value: \(error.message)")
    }
    func replace(_ node: YAMLNode, _ keys: ArraySlice<String>) throws -> YAMLNode {
        guard let key = keys.first else { return parsed }
        var entries = node.entries ?? []
        guard node.entries != nil || node.isNull else {
            throw RecipeError(file: file, line: node.line, field: keys.joined(separator: "."),
                              "override: the recipe holds a value here, not a mapping")
        }
        if keys.count == 1, parsed.isNull {
            entries.removeAll { $0.key == key }
        } else if let i = entries.firstIndex(where: { $0.key == key }) {
            entries[i] = YAMLEntry(key: key, line: entries[i].line, value: try replace(entries[i].value, keys.dropFirst()))
        } else {
            entries.append(YAMLEntry(key: key, line: 0, value: try replace(YAMLNode(line: 0, kind: .null), keys.dropFirst())))
        }
        return YAMLNode(line: node.line, kind: .mapping(entries))
    }
    return try replace(root, keys[...])
}

/// `node` with every line 0, "no line": parsed from `v: value`, an override's nodes would otherwise claim line 1 of
/// the recipe, and errors about them would point there.
private func unplaced(_ node: YAMLNode) -> YAMLNode {
    switch node.kind {
    case .sequence(let items): YAMLNode(line: 0, kind: .sequence(items.map(unplaced)))
    case .mapping(let entries):
        YAMLNode(line: 0, kind: .mapping(entries.map { YAMLEntry(key: $0.key, line: 0, value: unplaced($0.value)) }))
    case .null, .scalar: YAMLNode(line: 0, kind: node.kind)
    }
}
