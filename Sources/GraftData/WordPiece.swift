import Foundation
import GraftCore

/// How `encode` and `encodeBatch` pad sequences with `[PAD]` (on the right, type id 0, mask 0).
public enum SequencePadding: Sendable, Equatable {
    /// No padding.
    case none
    /// To the longest sequence of the batch.
    case longest
    /// To `maxLength`.
    case maxLength
}

/// One encoded text or text pair: `[CLS] a [SEP] (b [SEP])`, with segment ids and the attention mask.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int]
    /// 0 for `[CLS]`, the first text and its `[SEP]`; 1 for the second text and its `[SEP]`; 0 for padding.
    public var typeIds: [Int]
    /// 1 for tokens, 0 for padding.
    public var attentionMask: [Int]

    public var count: Int { ids.count }
}

/// A rectangular batch of encodings, stored row-major with shape [batch, sequence].
public struct BatchEncoding: Sendable, Equatable {
    public let ids: [Int]
    public let typeIds: [Int]
    public let attentionMask: [Int]
    /// [batch, sequence].
    public let shape: [Int]

    /// The token ids as [batch, sequence] indices, the input of an embedding or a BERT model.
    public var idIndices: Indices { Indices(ids, shape: shape) }
    /// The segment ids as [batch, sequence] indices.
    public var typeIdIndices: Indices { Indices(typeIds, shape: shape) }
    /// The attention mask as a [batch, sequence] tensor of 1 (token) and 0 (padding).
    public func maskTensor() -> Tensor { Tensor(attentionMask.map(Float.init), shape: shape) }
}

/// BERT's WordPiece tokenizer, equal to Hugging Face `BertTokenizer(vocab, do_lower_case=True)`: clean, split CJK,
/// strip accents, lowercase, split on whitespace and punctuation, then greedy longest-match-first subwords with
/// `##` continuations; words longer than 100 scalars, or with no split into vocabulary pieces, become `[UNK]`.
public struct WordPieceTokenizer: Sendable {
    /// The tokens by id.
    public let vocabulary: [String]
    public let padId: Int
    public let unkId: Int
    public let clsId: Int
    public let sepId: Int
    /// `[MASK]`'s id, when the vocabulary has one.
    public let maskId: Int?
    /// Longer words (in Unicode scalars, after normalisation) become `[UNK]` without a subword search.
    public let maxInputCharsPerWord = 100

    private let trie: VocabularyTrie
    /// Where `##` pieces start in the trie; nil when the vocabulary has no continuation pieces.
    private let continuationRoot: Int32?
    /// The special tokens the vocabulary has, matched verbatim in the raw text as HF's added tokens are.
    private let specials: [(scalars: [Unicode.Scalar], id: Int)]

    /// Reads a `vocab.txt`: one token per line, the id being the line's index from 0.
    public init(vocabularyFile path: String) throws {
        let bytes: [UInt8]
        do { bytes = try readRegularFile(path) } catch {
            let missing = !FileManager.default.fileExists(atPath: path)
            throw DataError(file: path, line: nil, problem: missing ? "no such vocabulary file" : error.problem)
        }
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var tokens: [String] = []
        tokens.reserveCapacity(lines.count)
        for (n, line) in lines.enumerated() {
            let body = line.last == UInt8(ascii: "\r") ? line.dropLast() : line[...]
            guard let token = String(validating: body, as: UTF8.self) else {
                throw DataError(file: path, line: n + 1, problem: "the token is not valid UTF-8")
            }
            tokens.append(token)
        }
        try self.init(vocabulary: tokens, source: path)
    }

    /// A tokenizer over `vocabulary`, the tokens by id; it must hold `[PAD]`, `[UNK]`, `[CLS]` and `[SEP]`.
    public init(vocabulary: [String]) throws {
        try self.init(vocabulary: vocabulary, source: "<vocabulary>")
    }

    private init(vocabulary: [String], source: String) throws {
        guard !vocabulary.isEmpty else { throw DataError(file: source, line: nil, problem: "the vocabulary is empty") }
        var trie = VocabularyTrie()
        for (id, token) in vocabulary.enumerated() { trie.insert(token, id: id) }
        func id(_ token: String) -> Int? { trie.node(after: token.unicodeScalars).flatMap(trie.id(at:)) }
        let required = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        let missing = required.filter { id($0) == nil }
        guard missing.isEmpty else {
            throw DataError(file: source, line: nil,
                            problem: "the vocabulary lacks BERT's special token(s) \(missing.joined(separator: ", "))")
        }
        self.vocabulary = vocabulary
        self.trie = trie
        padId = id("[PAD]")!
        unkId = id("[UNK]")!
        clsId = id("[CLS]")!
        sepId = id("[SEP]")!
        maskId = id("[MASK]")
        continuationRoot = trie.node(after: "##".unicodeScalars)
        specials = (required + ["[MASK]"]).compactMap { t in id(t).map { (Array(t.unicodeScalars), $0) } }
    }

    /// The id of `token` exactly as written in the vocabulary, or nil.
    public func id(of token: String) -> Int? { trie.node(after: token.unicodeScalars).flatMap(trie.id(at:)) }

    /// The WordPiece tokens of `text`, without `[CLS]`/`[SEP]`.
    public func tokenize(_ text: String) -> [String] { ids(text).map { vocabulary[$0] } }

    /// The token ids of `text`, without `[CLS]`/`[SEP]`.
    public func ids(_ text: String) -> [Int] {
        let raw = Array(text.unicodeScalars)
        var out: [Int] = []
        out.reserveCapacity(raw.count / 3)
        var scalars: [Unicode.Scalar] = []
        var words: [Range<Int>] = []
        var segmentStart = 0, i = 0
        // Special tokens written in the text ("[MASK]") are kept whole: HF matches them before normalising.
        while i < raw.count {
            if raw[i] == "[", let special = specials.first(where: { raw[i...].starts(with: $0.scalars) }) {
                appendWordPieces(raw[segmentStart..<i], to: &out, scalars: &scalars, words: &words)
                out.append(special.id)
                i += special.scalars.count
                segmentStart = i
            } else {
                i += 1
            }
        }
        appendWordPieces(raw[segmentStart...], to: &out, scalars: &scalars, words: &words)
        return out
    }

    private func appendWordPieces(_ raw: ArraySlice<Unicode.Scalar>, to out: inout [Int],
                                  scalars: inout [Unicode.Scalar], words: inout [Range<Int>]) {
        guard !raw.isEmpty else { return }
        scalars.removeAll(keepingCapacity: true)
        words.removeAll(keepingCapacity: true)
        BertNormalizer.preTokenize(raw, scalars: &scalars, words: &words)
        for word in words { appendPieces(of: scalars[word], to: &out) }
    }

    /// Greedy longest-match-first: the longest vocabulary entry at the word's start, then the longest `##` entry at
    /// each following position; a word with a position no entry matches is a single `[UNK]`.
    private func appendPieces(of word: ArraySlice<Unicode.Scalar>, to out: inout [Int]) {
        guard word.count <= maxInputCharsPerWord else { out.append(unkId); return }
        let mark = out.count
        var start = word.startIndex
        while start < word.endIndex {
            let from = start == word.startIndex ? VocabularyTrie.root : continuationRoot
            guard let from, let piece = trie.longestMatch(word, from: start, start: from) else {
                out.removeSubrange(mark...)
                out.append(unkId)
                return
            }
            out.append(piece.id)
            start = piece.end
        }
    }

    /// `[CLS] text [SEP]`, or `[CLS] text [SEP] pair [SEP]`. With `truncation` and a `maxLength`, the longer
    /// text loses tokens from its end first (HF's `longest_first`); `maxLength` must leave room for the specials.
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil, truncation: Bool = true,
                       padding: SequencePadding = .none) -> Encoding {
        var first = ids(text)
        var second = pair.map(ids)
        if truncation, let maxLength {
            let specialCount = second == nil ? 2 : 3
            require(maxLength >= specialCount,
                    "WordPieceTokenizer: maxLength \(maxLength) leaves no room for the \(specialCount) special tokens")
            let keep = Self.longestFirstLengths(first.count, second?.count, budget: maxLength - specialCount)
            first.removeLast(first.count - keep.first)
            if let count = second?.count { second!.removeLast(count - keep.second) }
        }
        var encoding = Encoding(ids: [clsId] + first + [sepId], typeIds: [], attentionMask: [])
        encoding.typeIds = [Int](repeating: 0, count: encoding.ids.count)
        if let second {
            encoding.ids += second + [sepId]
            encoding.typeIds += [Int](repeating: 1, count: second.count + 1)
        }
        encoding.attentionMask = [Int](repeating: 1, count: encoding.ids.count)
        if padding == .maxLength {
            require(maxLength != nil, "WordPieceTokenizer: padding to maxLength needs a maxLength")
            pad(&encoding, to: maxLength!)
        }
        return encoding
    }

    /// Encodes `texts` (each with `pairs[i]` when given) into a rectangular batch, padded to the longest row or to
    /// `maxLength`; rows longer than `maxLength` are truncated.
    public func encodeBatch(_ texts: [String], pairs: [String]? = nil, maxLength: Int? = nil,
                            padding: SequencePadding = .longest) -> BatchEncoding {
        require(padding != .none, "WordPieceTokenizer: a batch is rectangular, so pad to .longest or .maxLength")
        require(padding != .maxLength || maxLength != nil, "WordPieceTokenizer: padding to maxLength needs a maxLength")
        if let pairs {
            require(pairs.count == texts.count, "WordPieceTokenizer: \(texts.count) texts but \(pairs.count) pairs")
        }
        var rows = texts.indices.map { encode(texts[$0], pair: pairs?[$0], maxLength: maxLength) }
        let width = padding == .maxLength ? maxLength! : rows.map(\.count).max() ?? 0
        for r in rows.indices { pad(&rows[r], to: width) }
        return BatchEncoding(ids: rows.flatMap(\.ids), typeIds: rows.flatMap(\.typeIds),
                             attentionMask: rows.flatMap(\.attentionMask), shape: [rows.count, width])
    }

    private func pad(_ encoding: inout Encoding, to length: Int) {
        let n = length - encoding.count
        guard n > 0 else { return }
        encoding.ids += repeatElement(padId, count: n)
        encoding.typeIds += repeatElement(0, count: n)
        encoding.attentionMask += repeatElement(0, count: n)
    }

    /// How many tokens of each text `longest_first` keeps within `budget`. This is the `tokenizers` rule (which
    /// HF's BertTokenizer uses), not the one-token-at-a-time loop of the Python tokenizer: when both texts are long
    /// each keeps half, and for equal lengths the first text gets the smaller half.
    static func longestFirstLengths(_ n1: Int, _ n2: Int?, budget: Int) -> (first: Int, second: Int) {
        guard let n2 else { return (min(n1, budget), 0) }
        guard n1 + n2 > budget else { return (n1, n2) }
        var short = min(n1, n2)
        var long = short > budget ? short : max(short, budget - short)
        if short + long > budget {
            short = budget / 2
            long = short + budget % 2
        }
        return n1 > n2 ? (long, short) : (short, long)
    }

    /// The text of `ids` as HF decodes it: `##` pieces join the previous token, others follow a space, and
    /// `.`, `,`, `?`, `!` attach to the word before.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        let specialIds = Set(specials.map(\.id))
        var text = ""
        var first = true
        for id in ids {
            require(vocabulary.indices.contains(id), "WordPieceTokenizer.decode: id \(id) is outside the vocabulary")
            if skipSpecialTokens && specialIds.contains(id) { continue }
            let token = vocabulary[id]
            // Scalar-wise like Rust's `starts_with`: `hasPrefix` compares Characters, so "##" + a mark would fail.
            let continues = token.unicodeScalars.starts(with: "##".unicodeScalars)
            let piece = first ? token : continues ? String(token.unicodeScalars.dropFirst(2)) : " " + token
            text += Self.cleanUp(piece)
            first = false
        }
        return text
    }

    /// The `tokenizers` WordPiece decoder's clean-up, applied to each piece.
    private static func cleanUp(_ piece: String) -> String {
        guard piece.unicodeScalars.contains(" ") else { return piece }
        let rules = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                     (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
        return rules.reduce(piece) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
    }
}
