import Foundation
@testable import GraftIO
import Testing

private func parse(_ text: String) throws -> YAMLNode { try YAML.parse(text, file: "recipe.yaml") }

/// A compact rendering that shows structure, quoting and nulls: `{a: [x, "y"], b: ~}`.
private func render(_ node: YAMLNode) -> String {
    switch node.kind {
    case .null: "~"
    case .scalar(let text, let quoted): quoted ? "\"\(text)\"" : text
    case .sequence(let items): "[" + items.map(render).joined(separator: ", ") + "]"
    case .mapping(let entries): "{" + entries.map { "\($0.key): \(render($0.value))" }.joined(separator: ", ") + "}"
    }
}

/// Asserts that parsing fails on `line` with a message holding every one of `words` (case aside).
private func expectError(_ text: String, line: Int, _ words: String..., sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let node = try YAML.parse(text, file: "recipe.yaml")
        Issue.record("parsed without an error: \(render(node))", sourceLocation: sourceLocation)
    } catch {
        #expect(error.file == "recipe.yaml", sourceLocation: sourceLocation)
        #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix("recipe.yaml:\(line): "), "\(error)", sourceLocation: sourceLocation)
        for word in words {
            #expect(error.message.lowercased().contains(word.lowercased()), "\(error)", sourceLocation: sourceLocation)
        }
    }
}

/// Whether a node holds what PyYAML made of the same text, mapping order included.
private func matches(_ node: YAMLNode, _ json: JSONValue) -> Bool {
    switch (node.kind, json) {
    case (.null, .null): true
    case (.scalar(let text, _), .string(let expected)): text == expected
    case (.sequence(let items), .array(let expected)):
        items.count == expected.count && zip(items, expected).allSatisfy { matches($0, $1) }
    case (.mapping(let entries), .object(let expected)):
        entries.count == expected.count
            && zip(entries, expected).allSatisfy { $0.key == $1.key && matches($0.value, $1.value) }
    default: false
    }
}

@Suite struct YAMLTests {
    @Test func nestedMappings() throws {
        let doc = try parse("""
            model:
              name: resnet18
              head:
                classes: 10
                dropout: 0.1
            epochs: 20
            """)
        #expect(render(doc) == "{model: {name: resnet18, head: {classes: 10, dropout: 0.1}}, epochs: 20}")
        #expect(doc["model"]?["head"]?["dropout"]?.scalar == "0.1")
        #expect(doc.entries?.map(\.key) == ["model", "epochs"])
        #expect(doc["missing"] == nil)
    }

    @Test func mappingsKeepFileOrder() throws {
        let doc = try parse("z: 1\na: 2\nm: 3\nb: 4\n")
        #expect(doc.entries?.map(\.key) == ["z", "a", "m", "b"])
    }

    @Test func sequencesOfMappings() throws {
        let doc = try parse("""
            stages:
              - name: head
                epochs: 2
                freeze:
                  - backbone
              -   name: full
                  epochs: 8
            """)
        #expect(render(doc) == "{stages: [{name: head, epochs: 2, freeze: [backbone]}, {name: full, epochs: 8}]}")
    }

    @Test func sequenceAtItsKeysColumn() throws {
        let doc = try parse("""
            train:
            - a
            - b
            groups:
            - pattern: x
              tags:
              - t1
              - t2
              lr: 0
            last: 1
            """)
        #expect(render(doc) == "{train: [a, b], groups: [{pattern: x, tags: [t1, t2], lr: 0}], last: 1}")
    }

    @Test func nestedSequences() throws {
        let doc = try parse("- - a\n  - b\n- -\n    - c\n-\n  - d\n- [e]\n")
        #expect(render(doc) == "[[a, b], [[c]], [d], [e]]")
    }

    @Test func flowCollections() throws {
        let doc = try parse("""
            sizes: [224, 256, [320, 384], []]
            opt: {lr: 1e-3, name: adam, extra: {}}
            names: ["c d", 'e, f', plain words, http://x:80]
            json: {"a":1, "b": [true, null]}
            trailing: [a, b, ]
            nulls: {x: , y: ~}
            """)
        #expect(render(doc) == """
            {sizes: [224, 256, [320, 384], []], opt: {lr: 1e-3, name: adam, extra: {}}, \
            names: ["c d", "e, f", plain words, http://x:80], json: {a: 1, b: [true, ~]}, trailing: [a, b], \
            nulls: {x: ~, y: ~}}
            """)
    }

    @Test func plainScalars() throws {
        let doc = try parse("a: hello world   \nb: a#b\nc: http://h:8080/p\nd: -1\ne: 12:30\nf: what?\n")
        #expect(render(doc) == "{a: hello world, b: a#b, c: http://h:8080/p, d: -1, e: 12:30, f: what?}")
        #expect(doc["a"]?.kind == .scalar("hello world", quoted: false))
    }

    @Test func singleQuotedScalars() throws {
        let doc = try parse("a: 'it''s'\nb: 'x # y'\nc: ''\nd: 'back\\slash \"q\"'\n'key: x': 1\n")
        #expect(doc["a"]?.kind == .scalar("it's", quoted: true))
        #expect(doc["b"]?.scalar == "x # y")
        #expect(doc["c"]?.kind == .scalar("", quoted: true))
        #expect(doc["d"]?.scalar == "back\\slash \"q\"")
        #expect(doc["key: x"]?.scalar == "1")
    }

    @Test func doubleQuotedEscapes() throws {
        let doc = try parse(#"""
            a: "say \"hi\" \\ done"
            b: "l1\nl2\tt\rr"
            c: "caf\u00e9 \u2713 a\/b"
            d: "it's # fine"
            e: ""
            """#)
        #expect(doc["a"]?.kind == .scalar("say \"hi\" \\ done", quoted: true))
        #expect(doc["b"]?.scalar == "l1\nl2\tt\rr")
        #expect(doc["c"]?.scalar == "café ✓ a/b")
        #expect(doc["d"]?.scalar == "it's # fine")
        #expect(doc["e"]?.kind == .scalar("", quoted: true))
    }

    @Test func comments() throws {
        let doc = try parse("""
            # top
            a: 1 # after a value

                # indented, then blank lines

            b:   # after a key
              # before a nested block
              c: "# quoted" # after a quote
            d: [x, '#y'] # after a flow collection
            # - a comment, not a sequence item
            """)
        #expect(render(doc) == "{a: 1, b: {c: \"# quoted\"}, d: [x, \"#y\"]}")
    }

    @Test func nullForms() throws {
        let doc = try parse("a:\nb: ~\nc: null\nd: NULL\ne: # comment\nf: 'null'\ng: \"~\"\nh:\n  -\n  - ~\n")
        #expect(render(doc) == "{a: ~, b: ~, c: ~, d: ~, e: ~, f: \"null\", g: \"~\", h: [~, ~]}")
        #expect(doc["a"]?.isNull == true && doc["f"]?.isNull == false)
        #expect(try parse("").kind == .null)
        #expect(try parse("# only a comment\n\n").kind == .null)
    }

    @Test func lineNumbers() throws {
        let doc = try parse("""
            # comment
            a: 1

            b:
              # comment
              c: x
            list:
              - p
              -
              - q: 1
                r:
            """)
        let entries = try #require(doc.entries)
        #expect(doc.line == 2)
        #expect(entries.map(\.line) == [2, 4, 7])
        #expect(doc["a"]?.line == 2)
        #expect(doc["b"]?.line == 6)
        let items = try #require(doc["list"]?.items)
        #expect(doc["list"]?.line == 8)
        #expect(items.map(\.line) == [8, 9, 10])
        #expect(items[2].entries?.map(\.line) == [10, 11])
        #expect(items[2]["r"]?.line == 11)
    }

    @Test func documentMarkers() throws {
        #expect(render(try parse("---\na: 1\n...\n# done\n")) == "{a: 1}")
        #expect(render(try parse("# c\n--- # start\n- x\n")) == "[x]")
    }

    @Test func windowsLineEndingsAndByteOrderMark() throws {
        #expect(render(try parse("\u{FEFF}a: 1\r\nb:\r\n  - x\r\n")) == "{a: 1, b: [x]}")
    }

    @Test func loneScalarDocument() throws {
        let doc = try parse("  just text  \n")
        #expect(doc.kind == .scalar("just text", quoted: false))
        #expect(doc.line == 1)
    }

    @Test func accessorsOnOtherKinds() throws {
        let doc = try parse("a: [1]\nb: x\n")
        #expect(doc.scalar == nil && doc.items == nil)
        #expect(doc["a"]?.items?.first?.scalar == "1")
        #expect(doc["a"]?["k"] == nil && doc["b"]?["k"] == nil && doc["b"]?.entries == nil)
    }

    @Test func errorDescription() {
        #expect(YAMLError(file: "r.yaml", line: 3, "bad").description == "r.yaml:3: bad")
        #expect(YAMLError(file: "r.yaml", line: nil, "bad").description == "r.yaml: bad")
        #expect(YAMLError(file: "r.yaml", line: 0, "bad").description == "r.yaml: bad")
    }

    @Test func loadsAFile() throws {
        let directory = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/recipe.yaml"
        try Data("lr: 1e-3\nname: é\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(render(try YAML.load(path: path)) == "{lr: 1e-3, name: é}")
        try Data("a: 1\nb c\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: YAMLError(file: path, line: 2, "could not find expected ':' (while scanning a simple key)")) {
            try YAML.load(path: path)
        }
        try Data([0x61, 0x3A, 0x20, 0xFF]).write(to: URL(fileURLWithPath: path))
        #expect(throws: YAMLError(file: path, line: nil, "not valid UTF-8")) { try YAML.load(path: path) }
    }

    @Test func missingFileNamesThePath() {
        let path = "/nonexistent/graft/recipe.yaml"
        do {
            _ = try YAML.load(path: path)
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.file == path && error.line == nil)
            #expect(error.description.hasPrefix("\(path): cannot open"), "\(error)")
        }
    }

    /// PyYAML's reading of the same documents (Fixtures/make_yaml_fixtures.py), with scalars kept as text.
    @Test func matchesPyYAML() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/yaml_cases.json")
        let data = try Data(contentsOf: url)
        let json = try data.withUnsafeBytes { try JSONValue.parse($0) }
        guard case .array(let cases) = json else { Issue.record("yaml_cases.json is not a list"); return }
        #expect(cases.count >= 15)
        for (index, testCase) in cases.enumerated() {
            guard case .object(let fields) = testCase, fields.count == 2, fields[0].key == "yaml",
                  case .string(let text) = fields[0].value, fields[1].key == "json" else {
                Issue.record("case \(index) is malformed"); continue
            }
            let node = try YAML.parse(text, file: "case \(index)")
            #expect(matches(node, fields[1].value), "case \(index): \(render(node))\n\(text)")
        }
    }

    /// YAML the old hand-written subset refused and Yams reads: block scalars, values and flow collections over several
    /// lines, `?` keys, a one-pair mapping in a flow sequence, a key without a value in a flow mapping, every escape
    /// of double-quoted strings, directives, and a comment right after a closing quote.
    @Test func fullYAML() throws {
        #expect(render(try parse("a: 1\nb: |\n  text\n")) == "{a: 1, b: \"text\n\"}")
        #expect(try parse("b: >-\n  folded\n  text\n")["b"]?.kind == .scalar("folded text", quoted: true))
        #expect(render(try parse("a: 1\nb: [1,\n  2]\n")) == "{a: 1, b: [1, 2]}")
        #expect(render(try parse("a: {x: 1, # c\n  y: 2}\n")) == "{a: {x: 1, y: 2}}")
        #expect(render(try parse("a: \"abc\n  def\"\n")) == "{a: \"abc def\"}")
        #expect(render(try parse("- a\n  b\n- c\n  - d\n")) == "[a b, c - d]")
        #expect(render(try parse("? a\n: b\n")) == "{a: b}")
        #expect(render(try parse("a: [x: 1]\n")) == "{a: [{x: 1}]}")
        #expect(render(try parse("a: {x}\n")) == "{a: {x: ~}}")
        #expect(try parse("a: \"\\x41\\u00e9\\U0001F600\"\n")["a"]?.scalar == "Aé😀")
        #expect(render(try parse("%YAML 1.1\n---\na: 1\n")) == "{a: 1}")
        #expect(render(try parse("a: 'x'#c\n")) == "{a: \"x\"}")
    }

    /// `quoted` is what tells a string from a number: true for quoted and block scalars, false for plain ones.
    @Test func quotedAndPlainScalars() throws {
        let doc = try parse("a: \"1e-3\"\nb: 1e-3\nc: '2'\nd: |\n  3\ne: 4 # plain\nf: 'null'\ng: null\n")
        #expect(doc["a"]?.kind == .scalar("1e-3", quoted: true))
        #expect(doc["b"]?.kind == .scalar("1e-3", quoted: false))
        #expect(doc["c"]?.kind == .scalar("2", quoted: true))
        #expect(doc["d"]?.kind == .scalar("3\n", quoted: true))
        #expect(doc["e"]?.kind == .scalar("4", quoted: false))
        #expect(doc["f"]?.kind == .scalar("null", quoted: true))
        #expect(doc["g"]?.kind == .null)
    }

    @Test func lineOfANestedValue() throws {
        let doc = try parse("""
            model:
              head:
                sizes: [
                  1,
                  2]
                name: >
                  two
                  lines
            """)
        let head = try #require(doc["model"]?["head"])
        #expect(head.line == 3 && head.entries?.map(\.line) == [3, 6])
        #expect(head["sizes"]?.line == 3)
        #expect(head["sizes"]?.items?.map(\.line) == [4, 5])
        #expect(head["name"]?.line == 6 && head["name"]?.scalar == "two lines")
    }

    /// A Yams syntax error becomes one line, `file:line: message`, with the line libyaml reports.
    @Test func syntaxErrorNamesFileAndLine() {
        do {
            _ = try YAML.parse("a: 1\nb: [1, 2\nc: 3\n", file: "r.yaml")
            Issue.record("parsed without an error")
        } catch {
            #expect(error.line == 3)
            #expect(error.description == "r.yaml:3: did not find expected ',' or ']' (while parsing a flow sequence on line 2)")
        }
    }

    // MARK: Errors

    @Test func tabInIndentation() { expectError("a:\n\tb: 1\n", line: 2, "tab", "spaces") }
    @Test func tabAfterItemDash() { expectError("- a\n-\tb\n", line: 2, "tab") }
    @Test func anchor() { expectError("a: &x 1\n", line: 1, "anchors") }
    @Test func anchorOnAKey() { expectError("a: 1\n&k b: 2\n", line: 2, "anchors") }
    @Test func alias() { expectError("a: 1\nb: *a\n", line: 2, "aliases") }
    @Test func anchorAndAlias() { expectError("a: &x [1]\nb: *x\n", line: 1, "anchors") }
    /// Aliases that would expand a key to 10^7 nodes while Yams compares keys are refused before Yams reads them.
    @Test func aliasExpansion() {
        var lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
        for (p, n) in zip("abcdefg", "bcdefgh") { lines.append("\(n): &\(n) [" + Array(repeating: "*\(p)", count: 10).joined(separator: ", ") + "]") }
        expectError(lines.joined(separator: "\n") + "\n? *h\n: 1\n", line: 1, "anchors", "aliases")
    }
    @Test func ampersandAndStarInValues() throws {
        #expect(render(try parse("a: R&D\nb: '*_x.csv'\nc: \"&y\"\nd: a*b\n")) == "{a: R&D, b: \"*_x.csv\", c: \"&y\", d: a*b}")
    }
    @Test func tag() { expectError("a:\n  - !!str 1\n", line: 2, "tags") }
    @Test func tagOnAKey() { expectError("a: 1\n!!int 2: b\n", line: 2, "tags") }
    @Test func tagOnACollection() { expectError("a: !!seq [1]\n", line: 1, "tags") }
    @Test func nonSpecificTag() { expectError("a: ! x\n", line: 1, "tags") }
    @Test func secondDocument() { expectError("a: 1\n---\nb: 2\n", line: 2, "multi-document") }
    @Test func contentAfterDocumentEnd() { expectError("a: 1\n...\nb: 2\n", line: 3, "document start") }
    @Test func textAfterDocumentStart() { expectError("--- a: 1\n", line: 1, "mapping values are not allowed") }
    // Found by the recipe fuzzer (Tests/Fuzz/crashes/recipe) in the old parser: it read past the end of the line.
    // libyaml reports the end of the text on a line after the last; the error names the last line instead.
    @Test func flowMappingEndingAfterAColon() { expectError("x: {a:", line: 1, "expected node content") }
    @Test func flowMappingEndingAfterAColonAndBlanks() { expectError("x: {a:  \n", line: 1, "expected node content") }
    @Test func unterminatedSingleQuoted() { expectError("x: 1\na: 'abc\n", line: 2, "end of stream", "quoted scalar") }
    @Test func unterminatedQuotedKey() { expectError("\"a: 1\n", line: 1, "end of stream", "quoted scalar") }
    @Test func unterminatedNestedBracket() { expectError("a: [1, [2, 3]\n", line: 1, "',' or ']'", "flow sequence") }
    @Test func keyWithoutColon() { expectError("a: 1\nb\nc: 2\n", line: 3, "expected ':'", "simple key on line 2") }
    @Test func keyWithoutSpaceAfterColon() { expectError("a: 1\nb:2\n", line: 2, "expected ':'") }
    @Test func lineAboveKeyWithoutColon() { expectError("a:\n  value\n  b: 1\n", line: 3, "mapping values are not allowed") }
    @Test func indentedUnderInlineValue() { expectError("a: 1\n  b: 2\n", line: 2, "mapping values are not allowed") }
    @Test func indentationBetweenLevels() { expectError("a:\n    b: 1\n  c: 2\n", line: 3, "expected key", "line 1") }
    @Test func dedentBelowRoot() { expectError("  a: 1\nb: 2\n", line: 2, "document start") }
    @Test func itemWhereKeyExpected() { expectError("a: 1\n- b\n", line: 2, "expected key") }
    @Test func keyWhereItemExpected() { expectError("- a\nb: 1\n", line: 2, "expected '-'") }
    @Test func textWhereItemExpected() { expectError("- a\n- b\nc\n", line: 3, "expected ':'") }
    @Test func textAfterClosingQuote() { expectError("a: \"x\" y\n", line: 1, "expected key") }
    @Test func textAfterFlowCollection() { expectError("a: [1] 2\n", line: 1, "expected key") }
    // Yams refuses a duplicate key naming its first place.
    @Test func duplicateKey() { expectError("a: 1\nb: 2\na: 3\n", line: 1, "duplicate key 'a'", "again") }
    @Test func duplicateNestedKey() { expectError("m:\n  x: 1\n  y: 2\n  x: 3\n", line: 2, "duplicate key 'x'") }
    @Test func duplicateFlowKey() { expectError("a: 1\nm: {x: 1, x: 2}\n", line: 2, "duplicate key 'x'") }
    @Test func duplicateKeyQuotedOnce() { expectError("a: 1\n'a': 2\n", line: 1, "duplicate key 'a'") }
    @Test func sequenceOnKeyLine() { expectError("a: - b\n", line: 1, "block sequence entries are not allowed") }
    @Test func colonSpaceInPlainValue() { expectError("a: b: c\n", line: 1, "mapping values are not allowed") }
    @Test func shortUnicodeEscape() { expectError("a: \"\\u12\"\n", line: 1, "hexdecimal number") }
    @Test func surrogateEscape() { expectError("a: \"\\ud83d\\ude00\"\n", line: 1, "invalid Unicode character escape") }
    @Test func emptyKey() { expectError("a: 1\n: b\n", line: 2, "expected key") }
    @Test func emptyExplicitKey() { expectError("a: 1\n?\n: b\n", line: 2, "key is missing") }
    @Test func sequenceAsKey() { expectError("a: 1\n? [x]\n: b\n", line: 2, "key must be a scalar, not a sequence") }
    @Test func mappingAsKey() { expectError("{x: 1}: b\n", line: 1, "key must be a scalar, not a mapping") }
    @Test func emptyFlowItem() { expectError("a: [1,,2]\n", line: 1, "expected node content") }
    @Test func controlCharacter() { expectError("a: 1\r\nb: \u{01}\n", line: 2, "control characters", "(U+0001)") }

    @Test func nestingTooDeep() {
        expectError("a: " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "\n", line: 1,
                    "nesting deeper than 64")
        let block = (0..<100).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n")
        expectError(block, line: 65, "nesting deeper than 64")
        // libyaml's own limit, 1,000 collections, some 2,000 nodes deep here; Yams composes recursively.
        let pairs = 999
        expectError(String(repeating: "[a: ", count: pairs) + "1" + String(repeating: "]", count: pairs), line: 1,
                    "nesting deeper than 64")
        expectError(String(repeating: "[", count: 100_000), line: 1, "nesting deeper than 64")
        expectError(String(repeating: "- ", count: 5_000) + "x", line: 1, "nesting deeper than 64")
    }
}
