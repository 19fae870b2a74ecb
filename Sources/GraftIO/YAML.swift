import GraftCore

/// A node of a recipe file, with the line it starts on so that a recipe's schema errors can point at it.
public struct YAMLNode: Sendable, Equatable {
    /// What the node holds; scalars stay text because the recipe's schema, not the parser, knows their types.
    public enum Kind: Sendable, Equatable {
        /// `~`, `null`, `Null`, `NULL` or nothing, unquoted.
        case null
        /// `quoted` tells `"1e-3"` from `1e-3`, so a schema can refuse to read a quoted string as a number.
        case scalar(String, quoted: Bool)
        case sequence([YAMLNode])
        /// Entries in file order, with no key twice.
        case mapping([YAMLEntry])
    }

    /// The 1-based line the node starts on (for an empty value, the line of its key or `-`).
    public let line: Int
    public let kind: Kind

    /// Builds a node by hand, as tests and generated recipes need.
    public init(line: Int, kind: Kind) {
        self.line = line
        self.kind = kind
    }

    /// The text of a scalar, quoted or not; nil for anything else, null included.
    public var scalar: String? {
        if case .scalar(let text, _) = kind { return text }
        return nil
    }

    /// The items of a sequence; nil for anything else.
    public var items: [YAMLNode]? {
        if case .sequence(let items) = kind { return items }
        return nil
    }

    /// The entries of a mapping in file order; nil for anything else.
    public var entries: [YAMLEntry]? {
        if case .mapping(let entries) = kind { return entries }
        return nil
    }

    /// Whether the node is null, which a recipe may treat as "use the default".
    public var isNull: Bool { kind == .null }

    /// The value of `key` in a mapping; nil if the key is absent or the node is not a mapping.
    public subscript(key: String) -> YAMLNode? {
        entries?.first { $0.key == key }?.value
    }
}

/// One `key: value` of a mapping; the key's line is kept apart from the value's, which may start later.
public struct YAMLEntry: Sendable, Equatable {
    public let key: String
    /// The 1-based line of the key.
    public let line: Int
    public let value: YAMLNode

    /// Builds an entry by hand, as tests and generated recipes need.
    public init(key: String, line: Int, value: YAMLNode) {
        self.key = key
        self.line = line
        self.value = value
    }
}

/// A recipe that cannot be read or is outside the supported YAML subset, as `file:line: message`.
public struct YAMLError: Error, CustomStringConvertible, Equatable {
    /// The path or name the text was given under.
    public let file: String
    /// The 1-based line at fault; nil when the file itself could not be read.
    public let line: Int?
    public let message: String

    /// Makes an error; a line of 0 is taken as "no line", as some callers count that way.
    public init(file: String, line: Int?, _ message: String) {
        self.file = file
        self.line = line == 0 ? nil : line
        self.message = message
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

/// A strict subset of YAML, enough for block-style recipe files.
///
/// Supported: block mappings and sequences nested by space indentation, one-line flow collections (`[a, b]`,
/// `{k: v}`), plain, single- and double-quoted scalars, comments, and optional `---` / `...` markers.
/// Everything else (anchors, aliases, tags, block scalars, multi-line scalars or flow collections, several
/// documents, duplicate keys) is an error naming the line, so a recipe never means something it does not say.
public enum YAML {
    /// Parses a whole document; `file` only names the text in errors.
    public static func parse(_ text: String, file: String) throws(YAMLError) -> YAMLNode {
        var parser = try YAMLParser(text: text, file: file)
        return try parser.document()
    }

    /// Reads and parses the file at `path`; the file must be UTF-8 and regular (a FIFO is refused, not waited on).
    public static func load(path: String) throws(YAMLError) -> YAMLNode {
        let bytes: [UInt8]
        do { bytes = try readRegularFile(path) } catch { throw YAMLError(file: path, line: nil, error.problem) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw YAMLError(file: path, line: nil, "not valid UTF-8")
        }
        return try parse(text, file: path)
    }
}
