import Foundation

/// BERT's uncased normaliser and pre-tokenizer, step for step as Hugging Face `tokenizers` runs them for
/// `BertTokenizer` (`BertNormalizer(clean_text, handle_chinese_chars, strip_accents=None, lowercase)` then
/// `BertPreTokenizer`), working on Unicode scalars because that is what Rust's `char` and Python's `str` count.
enum BertNormalizer {
    /// Cleans, isolates CJK ideographs, strips accents and lowercases `raw`, then splits it into words and single
    /// punctuation marks, appended to `words` as ranges of `scalars`.
    static func preTokenize(_ raw: ArraySlice<Unicode.Scalar>, scalars: inout [Unicode.Scalar],
                            words: inout [Range<Int>]) {
        let normalized = normalize(raw)
        var start: Int?
        for s in normalized {
            if s == " " || (s.value >= 0x80 && s.properties.isWhitespace) {
                if let open = start { words.append(open..<scalars.count); start = nil }
            } else if isPunctuation(s) {
                if let open = start { words.append(open..<scalars.count); start = nil }
                scalars.append(s)
                words.append(scalars.count - 1..<scalars.count)
            } else {
                if start == nil { start = scalars.count }
                scalars.append(s)
            }
        }
        if let open = start { words.append(open..<scalars.count) }
    }

    /// The normalised scalars of `raw`; whitespace becomes a plain space and CJK ideographs get a space each side.
    static func normalize(_ raw: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        var cleaned: [Unicode.Scalar] = []
        cleaned.reserveCapacity(raw.count)
        var ascii = true
        for s in raw {
            let v = s.value
            if v < 0x80 {
                // Tab, newline and return are controls that BERT treats as spaces; the other C0 controls and
                // DEL (NUL included) are dropped.
                if v == 0x09 || v == 0x0A || v == 0x0D || v == 0x20 {
                    cleaned.append(" ")
                } else if v >= 0x20 && v != 0x7F {
                    cleaned.append(v >= 0x41 && v <= 0x5A ? Unicode.Scalar(v + 0x20)! : s)
                }
                continue
            }
            ascii = false
            // Controls go first: U+0085 is both a control and whitespace, and HF drops it.
            if v == 0xFFFD || isControl(s) { continue }
            if s.properties.isWhitespace {
                cleaned.append(" ")
            } else if isCJKIdeograph(v) {
                cleaned += [" ", s, " "]
            } else {
                cleaned.append(s)
            }
        }
        if ascii { return cleaned }
        // Accents are stripped before lowercasing, as `tokenizers` does: decompose (NFD), drop nonspacing marks,
        // then lowercase scalar by scalar (full mappings, no context, so a final capital sigma becomes σ, not ς).
        let decomposed = String(String.UnicodeScalarView(cleaned)).decomposedStringWithCanonicalMapping
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(cleaned.count)
        for s in decomposed.unicodeScalars {
            if s.value < 0x80 {
                // Decomposition can expose an ASCII capital (Å is A + ring, the Kelvin sign is K).
                out.append(s.value >= 0x41 && s.value <= 0x5A ? Unicode.Scalar(s.value + 0x20)! : s)
            } else if category(s) == .nonspacingMark {
                continue
            } else if s.properties.changesWhenLowercased {
                out += s.properties.lowercaseMapping.unicodeScalars
            } else {
                out.append(s)
            }
        }
        return out
    }

    /// The general category as `tokenizers` sees it: its `unicode_categories` tables stop at Unicode 8.0, so a
    /// scalar assigned later counts as unassigned there (no control, punctuation or mark), and here too.
    static func category(_ s: Unicode.Scalar) -> Unicode.GeneralCategory {
        guard let age = s.properties.age, age.major <= 8 else { return .unassigned }
        return s.properties.generalCategory
    }

    /// Controls, formats and private-use scalars, which cleaning drops (unassigned ones are kept, as in HF).
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        switch category(s) {
        case .control, .format, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// All non-alphanumeric printable ASCII (so `$`, `^`, `` ` `` split too) and every Unicode punctuation category.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 {
            return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
        }
        switch category(s) {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT splits into single characters. The ranges are `tokenizers`' own,
    /// which start extension E at U+2B920 where Python's BasicTokenizer uses U+2B820.
    static func isCJKIdeograph(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}

/// A prefix tree over the vocabulary's Unicode scalars. One walk finds the longest vocabulary entry at a position,
/// which is what WordPiece's greedy longest-match-first asks for, without building substrings. Matching is exact
/// on scalars: Swift's `String ==` would also match canonically equivalent spellings (a precomposed Hangul syllable
/// against its jamo), which HF never does.
struct VocabularyTrie: Sendable {
    /// Child node of (node, scalar), keyed as node << 21 | scalar (scalars need 21 bits).
    private var children: [UInt64: Int32] = [:]
    /// The token id ending at each node, or -1.
    private var ids: [Int32] = [-1]

    static let root: Int32 = 0

    /// Adds `token` as `id`; a repeated token keeps the later id, as HF's vocabulary loader does.
    mutating func insert(_ token: String, id: Int) {
        var node = Self.root
        for s in token.unicodeScalars {
            let key = UInt64(node) << 21 | UInt64(s.value)
            if let next = children[key] {
                node = next
            } else {
                ids.append(-1)
                node = Int32(ids.count - 1)
                children[key] = node
            }
        }
        ids[Int(node)] = Int32(id)
    }

    @inline(__always)
    func child(_ node: Int32, _ s: Unicode.Scalar) -> Int32? { children[UInt64(node) << 21 | UInt64(s.value)] }

    @inline(__always)
    func id(at node: Int32) -> Int? { ids[Int(node)] >= 0 ? Int(ids[Int(node)]) : nil }

    /// The node reached by `prefix`'s scalars, or nil.
    func node(after prefix: some Sequence<Unicode.Scalar>, from start: Int32 = root) -> Int32? {
        var node = start
        for s in prefix {
            guard let next = child(node, s) else { return nil }
            node = next
        }
        return node
    }

    /// The id of the longest entry that `scalars[from...]` starts with, read from `start`, and where it ends.
    @inline(__always)
    func longestMatch(_ scalars: ArraySlice<Unicode.Scalar>, from: Int, start: Int32) -> (id: Int, end: Int)? {
        var node = start, i = from
        var best: (id: Int, end: Int)?
        while i < scalars.endIndex, let next = child(node, scalars[i]) {
            node = next
            i += 1
            if let id = id(at: node) { best = (id, i) }
        }
        return best
    }
}
