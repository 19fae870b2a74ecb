import GraftCore

/// Recursive descent over the document's lines; `YAML` describes the subset.
struct YAMLParser {
    /// Part of a line that can start a node. "- - a: 1" becomes "-" at column 0, "-" at column 2 and "a: 1" at
    /// column 4, so that an item's mapping goes on at the column of its first key on later lines, as YAML has it.
    struct Piece {
        let line: Int
        let indent: Int
        let text: [Unicode.Scalar]
        var isItem: Bool { text == ["-"] }
    }

    /// Far deeper than any recipe, far shallower than a stack overflow on hostile nesting.
    static let maximumDepth = 64

    let file: String
    /// Content only: blank lines, comment lines and document markers are dropped here.
    private var pieces: [Piece] = []
    private var position = 0

    init(text: String, file: String) throws(YAMLError) {
        self.file = file
        var lines: [[Unicode.Scalar]] = [[]]
        for c in text.unicodeScalars {
            if c == "\n" { lines.append([]) } else { lines[lines.count - 1].append(c) }
        }
        if lines[0].first == "\u{FEFF}" { lines[0].removeFirst() }
        var started = false
        var endedOn: Int?
        for (index, var raw) in lines.enumerated() {
            let line = index + 1
            if raw.last == "\r" { raw.removeLast() }
            guard let first = raw.firstIndex(where: { !Self.isBlank($0) }), raw[first] != "#" else { continue }
            var column = raw.firstIndex { $0 != " " }!
            if column != first { throw failure(line, "tab in indentation; indent with spaces") }
            if column == 0, raw[0] == "%" { throw failure(line, "directives ('%') are not supported") }
            if column == 0, raw.count >= 3, raw[0] == raw[1], raw[1] == raw[2], raw[0] == "-" || raw[0] == ".",
               Self.isBreak(raw, 3) {
                let marker = Self.string(raw[0..<3])
                if marker == "---", started || !pieces.isEmpty || endedOn != nil {
                    throw failure(line, "a second document ('---'); multi-document streams are not supported")
                }
                let rest = Self.skipBlanks(raw, 3)
                guard rest == raw.count || raw[rest] == "#" else {
                    throw failure(line, "text after '\(marker)'; start the content on the next line")
                }
                if marker == "---" { started = true } else { endedOn = line }
                continue
            }
            if let endedOn {
                throw failure(line, "content after the document end '...' on line \(endedOn); "
                              + "multi-document streams are not supported")
            }
            while raw[column] == "-", Self.isBreak(raw, column + 1) {
                pieces.append(Piece(line: line, indent: column, text: ["-"]))
                column += 1
                while column < raw.count, raw[column] == " " { column += 1 }
                if column == raw.count || raw[column] == "#" { break }
                if raw[column] == "\t" { throw failure(line, "tab in indentation; indent with spaces") }
            }
            if column < raw.count, raw[column] != "#" {
                pieces.append(Piece(line: line, indent: column, text: Array(raw[column...])))
            }
        }
    }

    mutating func document() throws(YAMLError) -> YAMLNode {
        guard let first = pieces.first else { return YAMLNode(line: 1, kind: .null) }
        let root = try block(depth: 0)
        if position < pieces.count { throw badIndentation(pieces[position], expected: first.indent) }
        return root
    }

    /// The node starting at the current piece, which the caller has checked is indented enough to belong to it.
    private mutating func block(depth: Int) throws(YAMLError) -> YAMLNode {
        let piece = pieces[position]
        guard depth < Self.maximumDepth else {
            throw failure(piece.line, "nesting deeper than \(Self.maximumDepth) levels")
        }
        if piece.isItem { return try sequence(indent: piece.indent, endsAtKey: false, depth: depth) }
        if try mappingKey(piece) != nil { return try mapping(indent: piece.indent, depth: depth) }
        position += 1
        let node = try inline(piece, from: 0, depth: depth) ?? YAMLNode(line: piece.line, kind: .null)
        if position < pieces.count, pieces[position].indent >= piece.indent {
            let next = pieces[position]
            if next.indent == piece.indent, case .scalar(let text, quoted: false) = node.kind,
               try mappingKey(next) != nil {
                throw failure(piece.line, "expected 'key: value', found \(quotedExcerpt(text)) without ':'")
            }
            throw failure(next.line, "bad indentation: this line continues or is nested under the value on line "
                          + "\(piece.line); multi-line scalars are not supported")
        }
        return node
    }

    private mutating func mapping(indent: Int, depth: Int) throws(YAMLError) -> YAMLNode {
        let start = pieces[position].line
        var entries: [YAMLEntry] = []
        var firstLine: [String: Int] = [:]
        var inlineLine: Int?
        while position < pieces.count {
            let piece = pieces[position]
            if piece.indent < indent { break }
            if piece.indent > indent { throw badIndentation(piece, expected: indent, under: inlineLine) }
            if piece.isItem { throw failure(piece.line, "expected a mapping key, found a sequence item '-'") }
            guard let (key, valueStart) = try mappingKey(piece) else {
                let text = Self.string(piece.text)
                throw failure(piece.line, "expected 'key: value', found \(quotedExcerpt(text)) without ':'"
                              + (text.contains(":") ? " (':' must be followed by a space)" : ""))
            }
            if let first = firstLine[key] {
                throw failure(piece.line, "duplicate key \(quotedExcerpt(key)) (first on line \(first))")
            }
            firstLine[key] = piece.line
            position += 1
            var value = try inline(piece, from: valueStart, depth: depth + 1)
            inlineLine = value == nil ? nil : piece.line
            if value == nil, position < pieces.count {
                let next = pieces[position]
                if next.indent > indent {
                    value = try block(depth: depth + 1)
                } else if next.indent == indent, next.isItem {
                    // YAML lets a sequence under a key start at the key's own column.
                    value = try sequence(indent: indent, endsAtKey: true, depth: depth + 1)
                }
            }
            entries.append(YAMLEntry(key: key, line: piece.line,
                                     value: value ?? YAMLNode(line: piece.line, kind: .null)))
        }
        return YAMLNode(line: start, kind: .mapping(entries))
    }

    /// `endsAtKey`: the sequence sits at its parent key's column, so the parent's next key ends it.
    private mutating func sequence(indent: Int, endsAtKey: Bool, depth: Int) throws(YAMLError) -> YAMLNode {
        let start = pieces[position].line
        var items: [YAMLNode] = []
        while position < pieces.count {
            let piece = pieces[position]
            if piece.indent < indent { break }
            if piece.indent > indent { throw badIndentation(piece, expected: indent) }
            guard piece.isItem else {
                if endsAtKey { break }
                let found = try mappingKey(piece) != nil ? "a mapping key" : quotedExcerpt(Self.string(piece.text))
                throw failure(piece.line, "expected a sequence item '- ', found \(found)")
            }
            position += 1
            if position < pieces.count, pieces[position].indent > indent {
                items.append(try block(depth: depth + 1))
            } else {
                items.append(YAMLNode(line: piece.line, kind: .null))
            }
        }
        return YAMLNode(line: start, kind: .sequence(items))
    }

    /// The key of a `key: value` piece and where its value starts; nil if the piece is not one.
    private func mappingKey(_ piece: Piece) throws(YAMLError) -> (String, Int)? {
        let t = piece.text
        if piece.isItem || t[0] == "[" || t[0] == "{" { return nil }
        if t[0] == "\"" || t[0] == "'" {
            var i = 0
            let key = try quoted(t, &i, line: piece.line)
            i = Self.skipBlanks(t, i)
            return i < t.count && t[i] == ":" && Self.isBreak(t, i + 1) ? (key, i + 1) : nil
        }
        for i in t.indices {
            if t[i] == "#", i > 0, Self.isBlank(t[i - 1]) { return nil }
            if t[i] == ":", Self.isBreak(t, i + 1) {
                try checkPlainStart(t, 0, line: piece.line)
                return (Self.trimmed(t[..<i]), i + 1)
            }
        }
        return nil
    }

    /// A scalar or flow collection from `from` to the end of the piece's line; nil if there is only a comment.
    private func inline(_ piece: Piece, from: Int, depth: Int) throws(YAMLError) -> YAMLNode? {
        let t = piece.text
        var i = Self.skipBlanks(t, from)
        if i == t.count || t[i] == "#" { return nil }
        let node: YAMLNode
        let what: String
        switch t[i] {
        case "[", "{":
            node = try flow(t, &i, line: piece.line, depth: depth)
            what = "the flow collection"
        case "\"", "'":
            node = YAMLNode(line: piece.line, kind: .scalar(try quoted(t, &i, line: piece.line), quoted: true))
            what = "the closing quote"
        default:
            if t[i] == "-", Self.isBreak(t, i + 1) {
                throw failure(piece.line, "a block sequence cannot start on the line of its key; "
                              + "put the '- ' items on the following lines")
            }
            try checkPlainStart(t, i, line: piece.line)
            var end = i
            while end < t.count, !(t[end] == "#" && Self.isBlank(t[end - 1])) {
                if t[end] == ":", Self.isBreak(t, end + 1) {
                    throw failure(piece.line, "': ' inside a plain value; quote the value")
                }
                end += 1
            }
            node = plain(Self.trimmed(t[i..<end]), line: piece.line)
            i = end
            what = "the value"
        }
        i = Self.skipBlanks(t, i)
        if i < t.count, !(t[i] == "#" && Self.isBlank(t[i - 1])) {
            throw failure(piece.line, "unexpected text \(quotedExcerpt(Self.string(t[i...]))) after \(what)")
        }
        return node
    }

    /// A `[...]` or `{...}` that must close on its own line.
    private func flow(_ t: [Unicode.Scalar], _ i: inout Int, line: Int, depth: Int) throws(YAMLError) -> YAMLNode {
        guard depth < Self.maximumDepth else { throw failure(line, "nesting deeper than \(Self.maximumDepth) levels") }
        let isSequence = t[i] == "["
        let close: Unicode.Scalar = isSequence ? "]" : "}"
        let name = isSequence ? "flow sequence '['" : "flow mapping '{'"
        let unterminated = failure(line, "unterminated \(name); multi-line flow collections are not supported")
        var items: [YAMLNode] = []
        var entries: [YAMLEntry] = []
        i += 1
        while true {
            i = Self.skipBlanks(t, i)
            guard i < t.count, !(t[i] == "#" && Self.isBlank(t[i - 1])) else { throw unterminated }
            if t[i] == close { break }
            if isSequence {
                items.append(try flowNode(t, &i, line: line, depth: depth + 1))
            } else {
                let key: String
                if t[i] == "\"" || t[i] == "'" {
                    key = try quoted(t, &i, line: line)
                } else if t[i] == "[" || t[i] == "{" {
                    throw failure(line, "flow collections as mapping keys are not supported")
                } else {
                    try checkPlainStart(t, i, line: line)
                    key = try plainFlow(t, &i, line: line)
                }
                i = Self.skipBlanks(t, i)
                guard i < t.count, t[i] == ":" else {
                    throw failure(line, "expected ':' after key \(quotedExcerpt(key)) in a flow mapping")
                }
                i = Self.skipBlanks(t, i + 1)
                // A line that ends after the ':' (`{a:`) is unterminated, not a value to read past the end.
                guard i < t.count else { throw unterminated }
                let value = t[i] == "," || t[i] == "}"
                    ? YAMLNode(line: line, kind: .null) : try flowNode(t, &i, line: line, depth: depth + 1)
                if entries.contains(where: { $0.key == key }) {
                    throw failure(line, "duplicate key \(quotedExcerpt(key)) (first on line \(line))")
                }
                entries.append(YAMLEntry(key: key, line: line, value: value))
            }
            i = Self.skipBlanks(t, i)
            guard i < t.count, !(t[i] == "#" && Self.isBlank(t[i - 1])) else { throw unterminated }
            if t[i] == close { break }
            if t[i] == "," { i += 1; continue }
            if isSequence, t[i] == ":" {
                throw failure(line, "'key: value' inside a flow sequence is not supported; use {key: value}")
            }
            throw failure(line, "expected ',' or '\(close)' in a \(name), found '\(t[i])'")
        }
        i += 1
        return YAMLNode(line: line, kind: isSequence ? .sequence(items) : .mapping(entries))
    }

    private func flowNode(_ t: [Unicode.Scalar], _ i: inout Int, line: Int, depth: Int) throws(YAMLError) -> YAMLNode {
        switch t[i] {
        case "[", "{": return try flow(t, &i, line: line, depth: depth)
        case "\"", "'": return YAMLNode(line: line, kind: .scalar(try quoted(t, &i, line: line), quoted: true))
        default:
            try checkPlainStart(t, i, line: line)
            return plain(try plainFlow(t, &i, line: line), line: line)
        }
    }

    /// The quoted string starting at `i`, leaving `i` after its closing quote.
    private func quoted(_ t: [Unicode.Scalar], _ i: inout Int, line: Int) throws(YAMLError) -> String {
        let quote = t[i]
        var out = String.UnicodeScalarView()
        i += 1
        while i < t.count {
            let c = t[i]
            i += 1
            if c == quote {
                if quote == "'", i < t.count, t[i] == "'" { out.append("'"); i += 1; continue }
                return String(out)
            }
            guard c == "\\", quote == "\"" else { out.append(c); continue }
            guard i < t.count else { break }
            i += 1
            switch t[i - 1] {
            case "\"", "\\", "/": out.append(t[i - 1])
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "u": out.append(try unicodeEscape(t, &i, line: line))
            case let e: throw failure(line, "unsupported escape '\\\(e)' in a double-quoted string")
            }
        }
        let kind = quote == "'" ? "single-quoted" : "double-quoted"
        throw failure(line, "unterminated \(kind) string; multi-line quoted strings are not supported")
    }

    /// After "\u": four hex digits. Surrogates are refused: YAML readers would keep them as lone halves.
    private func unicodeEscape(_ t: [Unicode.Scalar], _ i: inout Int, line: Int) throws(YAMLError) -> Unicode.Scalar {
        let digits = t[i..<min(i + 4, t.count)]
        guard digits.count == 4, digits.allSatisfy(\.properties.isASCIIHexDigit) else {
            throw failure(line, "expected four hex digits after '\\u'")
        }
        i += 4
        guard let scalar = Unicode.Scalar(UInt32(Self.string(digits), radix: 16)!) else {
            throw failure(line, "'\\u\(Self.string(digits))' is a UTF-16 surrogate; write the character itself")
        }
        return scalar
    }

    /// Rejects what YAML reserves at the start of a plain scalar, naming the feature this subset leaves out.
    private func checkPlainStart(_ t: [Unicode.Scalar], _ i: Int, line: Int) throws(YAMLError) {
        let c = t[i]
        let message: String? = switch c {
        case "&": "anchors ('&') are not supported"
        case "*": "aliases ('*') are not supported"
        case "!": "tags ('!') are not supported"
        case "|", ">": "block scalars ('|' and '>') are not supported; use a quoted string with \\n"
        case "-" where Self.isBreak(t, i + 1): "a sequence item '- ' cannot start here"
        case "?" where Self.isBreak(t, i + 1): "complex keys ('? ') are not supported"
        case ":" where Self.isBreak(t, i + 1): "a mapping key is missing before ':'"
        case "%", "@", "`", "#", ",", "[", "]", "{", "}": "'\(c)' cannot start a plain value; quote the value"
        default: nil
        }
        if let message { throw failure(line, message) }
    }

    private func plain(_ text: String, line: Int) -> YAMLNode {
        let isNull = ["~", "null", "Null", "NULL"].contains(text)
        return YAMLNode(line: line, kind: isNull ? .null : .scalar(text, quoted: false))
    }

    /// A plain scalar inside a flow collection, which also ends at `,`, brackets, and `:` before a space or those.
    private func plainFlow(_ t: [Unicode.Scalar], _ i: inout Int, line: Int) throws(YAMLError) -> String {
        let stops: Set<Unicode.Scalar> = [",", "[", "]", "{", "}"]
        let start = i
        while i < t.count, !stops.contains(t[i]), !(t[i] == "#" && Self.isBlank(t[i - 1])),
              !(t[i] == ":" && (Self.isBreak(t, i + 1) || stops.contains(t[i + 1]))) {
            i += 1
        }
        let text = Self.trimmed(t[start..<i])
        if text.isEmpty { throw failure(line, "expected a value in a flow collection") }
        return text
    }

    private func failure(_ line: Int, _ message: String) -> YAMLError {
        YAMLError(file: file, line: line, message)
    }

    private func badIndentation(_ piece: Piece, expected: Int, under line: Int? = nil) -> YAMLError {
        failure(piece.line, "bad indentation: expected \(expected) spaces, found \(piece.indent)"
                + (line.map { " (the value on line \($0) is complete; nothing can be nested under it)" } ?? ""))
    }

    private static func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" }

    /// Whether position `i` ends a token: the end of the line or a blank.
    private static func isBreak(_ t: [Unicode.Scalar], _ i: Int) -> Bool { i >= t.count || isBlank(t[i]) }

    private static func skipBlanks(_ t: [Unicode.Scalar], _ i: Int) -> Int {
        var i = i
        while i < t.count, isBlank(t[i]) { i += 1 }
        return i
    }

    private static func string(_ s: some Sequence<Unicode.Scalar>) -> String { String(String.UnicodeScalarView(s)) }

    private static func trimmed(_ s: ArraySlice<Unicode.Scalar>) -> String {
        string(s.reversed().drop(while: isBlank).reversed())
    }
}
