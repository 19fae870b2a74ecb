import GraftCore

/// A node of a recipe file, with the line it starts on so that a recipe's schema errors can point at it.
public struct YAMLNode: Sendable, Equatable {
    /// What the node holds; scalars stay text because the recipe's schema, not the parser, knows their types.
    public enum Kind: Sendable, Equatable {
        /// `~`, `null`, `Null`, `NULL` or nothing, unquoted.
        case null
        /// `quoted` tells `"1e-3"` from `1e-3`, so a schema can refuse to read a quoted string as a number; it is
        /// true for every scalar that is not plain: single- or double-quoted, or a `|` or `>` block scalar.
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

/// A recipe that cannot be read, is not YAML, or uses what recipes leave out of YAML, as `file:line: message`.
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

/// Recipe files: YAML as libyaml reads it (through Yams), with every scalar kept as text for the recipe's schema.
///
/// Accepted: block and flow collections over as many lines as they need; plain, quoted and block (`|`, `>`) scalars;
/// comments; `---` / `...` markers and directives; `? ` keys. Refused, naming the line: YAML syntax errors; anchors
/// and aliases (`&name`, `*name`: each value is written where it is used, so an error's line is where to fix it);
/// explicit tags (`!!int 1`: the schema gives each field its type); a second document; a key twice in a mapping;
/// a key that is not a scalar; nesting deeper than 64 levels.
public enum YAML {
    /// Parses a whole document; `file` only names the text in errors.
    public static func parse(_ text: String, file: String) throws(YAMLError) -> YAMLNode {
        try YAMLReader(text: text, file: file).read()
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
