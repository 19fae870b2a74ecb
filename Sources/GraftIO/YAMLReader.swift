#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GraftCore
internal import Yams

/// Reads one document with Yams and turns its node tree into `YAMLNode`s; `YAML` says what is refused.
///
/// Yams compares the keys of each mapping as it composes, hashing a key that is a collection whole, so collections
/// used as keys inside keys cost time quadratic in their depth before they are refused here. libyaml's limit of
/// 1,000 levels bounds that: about half a second, in a release build, for the worst 2 KB text (999 nested `? `).
struct YAMLReader {
    /// Far deeper than any recipe, far shallower than a stack overflow on hostile nesting.
    static let maximumDepth = 64

    /// The stack Yams composes on. libyaml stops at 1,000 nested collections, about 2,000 nodes deep (a `[a: [a: …`
    /// nests a mapping in each sequence), and Yams composes recursively: measured, that depth takes about 4 MiB of
    /// stack in a release build and 8 MiB with AddressSanitizer, more than many threads have (512 KiB on macOS;
    /// a main thread's usual 8 MiB is not enough under AddressSanitizer). Whether a text nests that deep cannot be
    /// told cheaply without tokenising it (a bracket in a quoted string nests nothing), so every document is
    /// composed on a thread of its own with room to spare; the conversion then refuses more than 64 levels.
    static let stackBytes = 32 << 20

    /// How many `*name` may appear in a text that also holds an `&name` before it is refused unread. Yams compares
    /// every mapping's keys while composing, and an alias used in a key can stand for a tree that doubles with each
    /// alias nested in it (a few hundred bytes can make billions of nodes), before any anchor can be refused here.
    /// Eight aliases can multiply a key's size by about 20 at most. The counts are of the bare character pairs, so `R&D`
    /// and `"*_x.csv"` count too: only a text with both and more than eight of the second is refused wrongly.
    static let maximumAliasesBeforeComposing = 8

    let text: String
    let file: String

    init(text: String, file: String) {
        // libyaml skips a leading byte order mark but counts it as a column, which shifts the first key's indentation.
        self.text = text.unicodeScalars.first == "\u{FEFF}" ? String(text.unicodeScalars.dropFirst()) : text
        self.file = file
    }

    func read() throws(YAMLError) -> YAMLNode {
        try refuseAliasExpansion()
        guard let result = onThreadWithStack(bytes: Self.stackBytes, compose) else {
            throw YAMLError(file: file, line: nil, "cannot start a thread to read the YAML")
        }
        return try result.get()
    }

    /// Composes and converts on the calling thread; the Yams tree is dropped before this returns.
    private func compose() -> Result<YAMLNode, YAMLError> {
        do {
            let parser = try Parser(yaml: text, resolver: .basic, encoding: .utf8)
            // The parser owns the anchors that nodes point to weakly, so it must outlive the conversion.
            defer { withExtendedLifetime(parser) {} }
            guard let root = try parser.singleRoot() else { return .success(YAMLNode(line: 1, kind: .null)) }
            return .success(try convert(root, depth: 0))
        } catch let error as YAMLError {
            return .failure(error)
        } catch let error as YamlError {
            return .failure(translate(error))
        } catch {
            return .failure(YAMLError(file: file, line: nil, "\(error)"))
        }
    }

    // MARK: Conversion

    private func convert(_ node: Yams.Node, depth: Int) throws(YAMLError) -> YAMLNode {
        let line = node.mark?.line ?? 1
        if node.anchor != nil { throw failure(line, "anchors ('&') are not supported") }
        switch node {
        case .scalar(let scalar):
            // A plain value's tag stays implicit and a quoted or block one's is `!!str`, unless the text gives one.
            let quoted = scalar.style != .plain
            guard scalar.tag.description == (quoted ? Tag.Name.str.rawValue : Tag.Name.implicit.rawValue) else {
                throw failure(line, "tags ('!') are not supported")
            }
            if !quoted, ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
                return YAMLNode(line: line, kind: .null)
            }
            return YAMLNode(line: line, kind: .scalar(scalar.string, quoted: quoted))
        case .sequence(let sequence):
            guard sequence.tag.description == Tag.Name.implicit.rawValue else {
                throw failure(line, "tags ('!') are not supported")
            }
            guard depth < Self.maximumDepth else { throw failure(line, "nesting deeper than \(Self.maximumDepth) levels") }
            var items: [YAMLNode] = []
            for item in sequence { items.append(try convert(item, depth: depth + 1)) }
            return YAMLNode(line: line, kind: .sequence(items))
        case .mapping(let mapping):
            guard mapping.tag.description == Tag.Name.implicit.rawValue else {
                throw failure(line, "tags ('!') are not supported")
            }
            guard depth < Self.maximumDepth else { throw failure(line, "nesting deeper than \(Self.maximumDepth) levels") }
            var entries: [YAMLEntry] = []
            var firstLine: [String: Int] = [:]
            for (key, value) in mapping {
                let (text, keyLine) = try self.key(key)
                // Yams already refuses keys that are equal as YAML; this keeps "no key twice" true of the text.
                if let first = firstLine[text] {
                    throw failure(keyLine, "duplicate key \(quotedExcerpt(text)) (first on line \(first))")
                }
                firstLine[text] = keyLine
                entries.append(YAMLEntry(key: text, line: keyLine, value: try convert(value, depth: depth + 1)))
            }
            return YAMLNode(line: line, kind: .mapping(entries))
        case .alias:
            // Yams hands back the anchored node itself; an alias node is only built by hand.
            throw failure(line, "aliases ('*') are not supported")
        }
    }

    /// A mapping key's text and line. Yams has compared the keys, which resolves a plain key's implicit tag to
    /// `!!str` (the basic resolver resolves to nothing else), so any other tag was written in the text.
    private func key(_ node: Yams.Node) throws(YAMLError) -> (String, Int) {
        let line = node.mark?.line ?? 1
        guard case .scalar(let scalar) = node else {
            let kind = node.sequence != nil ? "sequence" : "mapping"
            throw failure(line, "a mapping key must be a scalar, not a \(kind)")
        }
        if scalar.anchor != nil { throw failure(line, "anchors ('&') are not supported") }
        guard scalar.tag.description == Tag.Name.str.rawValue else { throw failure(line, "tags ('!') are not supported") }
        if scalar.style == .plain, scalar.string.isEmpty { throw failure(line, "a mapping key is missing before ':'") }
        return (scalar.string, line)
    }

    // MARK: Errors

    /// Refuses, before Yams sees it, a text in which aliases could expand a mapping key beyond reason.
    private func refuseAliasExpansion() throws(YAMLError) {
        // libyaml's anchor names are ASCII letters, digits, '_' and '-', at least one of them.
        func isNameStart(_ c: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "-"
        }
        var firstAnchor: String.Index?
        var aliases = 0
        var previous: (Unicode.Scalar, String.Index)?
        for index in text.unicodeScalars.indices {
            let c = text.unicodeScalars[index]
            if let (p, at) = previous, isNameStart(c) {
                if p == "&", firstAnchor == nil { firstAnchor = at }
                if p == "*" { aliases += 1 }
            }
            previous = (c, index)
        }
        if let firstAnchor, aliases > Self.maximumAliasesBeforeComposing {
            throw failure(line(before: firstAnchor), "anchors ('&') and aliases ('*') are not supported")
        }
    }

    /// A Yams error as `file:line: message`, with libyaml's wording and a hint where the wording is obscure.
    private func translate(_ error: YamlError) -> YAMLError {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            return failure(clamped(mark.line), message(problem, context: context, at: mark))
        case let .reader(problem, offset, value, _):
            let hex = String(UInt32(max(value, 0)), radix: 16, uppercase: true)
            let code = value >= 0 ? " (U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex))" : ""
            let index = offset.flatMap { text.index(text.startIndex, offsetBy: $0, limitedBy: text.endIndex) }
            return failure(index.map(line(before:)), problem + code)
        case let .duplicatedKeysInMapping(duplicates, context):
            // Yams names the first place of the key that sorts first.
            let key = duplicates.sorted().first ?? ""
            return failure(clamped(context.mark.line),
                           "duplicate key \(quotedExcerpt(key)): it appears again later in the same mapping")
        default:
            return failure(nil, "\(error)".split(separator: "\n").first.map(String.init) ?? "YAML error")
        }
    }

    private func message(_ problem: String, context: YamlError.Context?, at mark: Mark) -> String {
        if problem.hasPrefix("Maximum nesting level") { return "nesting deeper than \(Self.maximumDepth) levels" }
        if problem == "but found another document" {
            return "a second document; a recipe is one YAML document (multi-document streams are not supported)"
        }
        if problem == "found undefined alias" { return "aliases ('*') are not supported" }
        var message = problem
        if let context, !context.text.isEmpty {
            let line = clamped(context.mark.line)
            message += line == clamped(mark.line) ? " (\(context.text))" : " (\(context.text) on line \(line))"
        }
        if character(at: mark) == "\t" { message += "; YAML indents with spaces, not tabs" }
        return message
    }

    /// The text's lines as libyaml counts them: CR, LF, CRLF, NEL, LS and PS each end one.
    private var lines: [Substring] { text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) }

    /// libyaml puts the end of the text on a line of its own; errors there are shown on the last line.
    private func clamped(_ line: Int) -> Int {
        let lines = lines
        let count = lines.count > 1 && lines.last!.isEmpty ? lines.count - 1 : lines.count
        return max(1, min(line, count))
    }

    private func line(before index: String.Index) -> Int {
        text[..<index].reduce(1) { $1.isNewline ? $0 + 1 : $0 }
    }

    /// The character at a Yams mark (1-based line, column counted in Unicode scalars), if there is one.
    private func character(at mark: Mark) -> Unicode.Scalar? {
        let lines = lines
        guard mark.line >= 1, mark.line <= lines.count, mark.column >= 1 else { return nil }
        let scalars = lines[mark.line - 1].unicodeScalars
        return scalars.dropFirst(mark.column - 1).first
    }

    private func failure(_ line: Int?, _ message: String) -> YAMLError {
        YAMLError(file: file, line: line, message)
    }
}

/// Runs `body` on a new thread with a stack of `bytes` and waits for it; nil if no thread could be started.
private func onThreadWithStack<T>(bytes: Int, _ body: () -> T) -> T? {
    withoutActuallyEscaping(body) { body -> T? in
        var result: T?
        let job = Unmanaged.passRetained(ThreadJob { result = body() }).toOpaque()
        var attributes = pthread_attr_t()
        guard pthread_attr_init(&attributes) == 0 else { return nil }
        defer { pthread_attr_destroy(&attributes) }
        #if canImport(Darwin)
        var thread: pthread_t?
        #else
        var thread = pthread_t()
        #endif
        guard pthread_attr_setstacksize(&attributes, bytes) == 0,
              pthread_create(&thread, &attributes, { ThreadJob.start($0) }, job) == 0 else {
            Unmanaged<ThreadJob>.fromOpaque(job).release()
            return nil
        }
        #if canImport(Darwin)
        pthread_join(thread!, nil)
        #else
        pthread_join(thread, nil)
        #endif
        return result
    }
}

/// The work of a thread from `onThreadWithStack`, passed to it as a retained pointer.
private final class ThreadJob {
    let run: () -> Void

    init(_ run: @escaping () -> Void) { self.run = run }

    static func start(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
        Unmanaged<ThreadJob>.fromOpaque(context!).takeRetainedValue().run()
        return nil
    }
}
