import Foundation
import Testing
@testable import GraftCore
@testable import GraftData

/// Where launch/assets.sh puts the MiniLM vocabulary: $GRAFT_ASSETS/minilm/vocab.txt, by default under the repo.
let miniLMVocabularyPath: String = {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let assets = ProcessInfo.processInfo.environment["GRAFT_ASSETS"] ?? repo.appendingPathComponent(".cache/assets").path
    return URL(fileURLWithPath: assets).appendingPathComponent("minilm/vocab.txt").path
}()

let miniLMVocabularyPresent = FileManager.default.fileExists(atPath: miniLMVocabularyPath)
let miniLMMissing: Comment = "MiniLM vocabulary missing at \(miniLMVocabularyPath): run launch/assets.sh"

/// Specials at BERT's positions 0 and 100–103 would need filler; a tiny vocabulary puts them first.
func tinyTokenizer(_ extra: [String]) throws -> WordPieceTokenizer {
    try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + extra)
}

@Suite struct WordPieceTinyVocabulary {
    let tok = try! tinyTokenizer(["un", "##aff", "##a", "##ff", "##able", "aff", "able", "hello", "!", ",", "a", "东",
                                  "한", "naive", "##s"])

    @Test func greedyLongestMatchFirst() {
        #expect(tok.tokenize("unaffable") == ["un", "##aff", "##able"])
        #expect(tok.tokenize("affable") == ["aff", "##able"])
        #expect(tok.tokenize("aaa") == ["a", "##a", "##a"])
    }

    @Test func wordWithAnUnmatchedPositionIsOneUnknown() {
        // "unaffablex" matches up to "##able" and then finds no "##x": the whole word becomes [UNK], not a prefix.
        #expect(tok.tokenize("hello unaffablex hello") == ["hello", "[UNK]", "hello"])
        #expect(tok.tokenize("zz") == ["[UNK]"])
    }

    @Test func wordsOverOneHundredScalarsAreUnknown() {
        #expect(tok.ids(String(repeating: "a", count: 100)).count == 100)
        #expect(tok.tokenize(String(repeating: "a", count: 101)) == ["[UNK]"])
        // The limit counts scalars after normalisation: 100 "á" are 200 scalars in NFD but 100 once marks go.
        #expect(tok.ids(String(repeating: "\u{E1}", count: 100)).count == 100)
    }

    @Test func normalisesBeforeMatching() {
        #expect(tok.tokenize("HÉLLO,\tNaïve!!") == ["hello", ",", "naive", "!", "!"])
        #expect(tok.tokenize("a东a") == ["a", "东", "a"])
        #expect(tok.tokenize("hel\u{0}lo\u{7} \u{FFFD}") == ["hello"])
        #expect(tok.tokenize("") == [] && tok.tokenize(" \n\t\u{3000}") == [])
    }

    @Test func matchesScalarsExactlyNotCanonicalEquivalents() {
        // NFD turns the syllable 한 into three jamo; Swift's String == would still match the precomposed entry, HF not.
        #expect(tok.tokenize("한") == ["[UNK]"])
        #expect(tok.id(of: "\u{1112}\u{1161}\u{11AB}") == nil && tok.id(of: "한") == 17)
    }

    @Test func specialTokensInTheTextAreKeptWhole() {
        #expect(tok.tokenize("a[MASK]a [mask] [SEP]") == ["a", "[MASK]", "a", "[UNK]", "[UNK]", "[UNK]", "[SEP]"])
    }

    @Test func specialIdsComeFromTheVocabulary() throws {
        #expect((tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId) == (0, 1, 2, 3, 4))
        let noMask = try WordPieceTokenizer(vocabulary: ["x", "[SEP]", "[CLS]", "[UNK]", "[PAD]"])
        #expect((noMask.padId, noMask.unkId, noMask.clsId, noMask.sepId) == (4, 3, 2, 1) && noMask.maskId == nil)
        #expect(noMask.tokenize("[MASK]") == ["[UNK]", "[UNK]", "[UNK]"])
    }

    @Test func repeatedTokenKeepsTheLaterId() throws {
        let t = try tinyTokenizer(["a", "b", "a"])
        #expect(t.ids("a") == [7])
    }

    @Test func encodesPairsWithSegmentsTruncationAndPadding() {
        let e = tok.encode("hello a", pair: "naive")
        #expect(e.ids == [2, 12, 15, 3, 18, 3])
        #expect(e.typeIds == [0, 0, 0, 0, 1, 1] && e.attentionMask == [1, 1, 1, 1, 1, 1])
        let p = tok.encode("hello", maxLength: 6, padding: .maxLength)
        #expect(p.ids == [2, 12, 3, 0, 0, 0] && p.typeIds == [0, 0, 0, 0, 0, 0] && p.attentionMask == [1, 1, 1, 0, 0, 0])
        let t = tok.encode("a a a a", pair: "hello hello", maxLength: 6)
        #expect(t.ids == [2, 15, 15, 3, 12, 3])
        let long = tok.encode("a a a a a", maxLength: 4, truncation: false, padding: .maxLength)
        #expect(long.count == 7)
    }

    @Test func longestFirstFollowsTokenizers() {
        // Lengths kept by HF BertTokenizer (tokenizers 0.23) for a 13-token budget (max_length 16 minus 3 specials).
        let cases: [(Int, Int, Int, Int)] = [(7, 6, 7, 6), (7, 7, 6, 7), (8, 7, 7, 6), (7, 8, 6, 7), (8, 8, 6, 7),
                                             (5, 20, 5, 8), (20, 5, 8, 5), (0, 20, 0, 13), (20, 0, 13, 0),
                                             (17, 17, 6, 7), (6, 17, 6, 7), (17, 6, 7, 6), (14, 1, 12, 1)]
        for (n1, n2, k1, k2) in cases {
            let kept = WordPieceTokenizer.longestFirstLengths(n1, n2, budget: 13)
            #expect(kept == (k1, k2), "(\(n1), \(n2)) kept \(kept), HF keeps (\(k1), \(k2))")
        }
        #expect(WordPieceTokenizer.longestFirstLengths(20, nil, budget: 14) == (14, 0))
        #expect(WordPieceTokenizer.longestFirstLengths(3, 3, budget: 0) == (0, 0))
    }

    @Test func batchesAreRectangular() {
        let b = tok.encodeBatch(["hello", "a a a", ""])
        #expect(b.shape == [3, 5])
        #expect(b.ids == [2, 12, 3, 0, 0, 2, 15, 15, 15, 3, 2, 3, 0, 0, 0])
        #expect(b.attentionMask == [1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
        #expect(b.idIndices == Indices(b.ids, shape: [3, 5]) && b.typeIdIndices.values == [Int](repeating: 0, count: 15))
        let mask = b.maskTensor()
        #expect(mask.shape == [3, 5] && mask.scalars == b.attentionMask.map(Float.init))
        let fixed = tok.encodeBatch(["hello a a a a", "a"], pairs: ["hello", "hello"], maxLength: 6, padding: .maxLength)
        #expect(fixed.shape == [2, 6])
        #expect(fixed.ids == [2, 12, 15, 3, 12, 3, 2, 15, 3, 12, 3, 0])
        #expect(fixed.typeIds == [0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0])
    }

    @Test func decodesLikeHuggingFace() {
        #expect(tok.decode(tok.encode("Hello, unaffable a!").ids) == "[CLS] hello, unaffable a! [SEP]")
        #expect(tok.decode(tok.encode("Hello, unaffable a!").ids, skipSpecialTokens: true) == "hello, unaffable a!")
    }
}

@Suite struct WordPieceVocabularyErrors {
    func expectDataError(_ path: String, _ text: String, line: Int? = nil,
                         sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("no error", sourceLocation: sourceLocation)
        } catch let error as DataError {
            #expect(error.file == path && error.line == line, "\(error)", sourceLocation: sourceLocation)
            #expect(error.description.contains(path) && error.description.contains(text), "\(error)",
                    sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vocab-\(UUID().uuidString).txt").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func missingFileNamesThePath() {
        let path = "/nonexistent/graft/vocab.txt"
        expectDataError(path, "no such vocabulary file") { _ = try WordPieceTokenizer(vocabularyFile: path) }
    }

    @Test func emptyFileIsAnError() throws {
        let path = try temporaryFile([])
        defer { try? FileManager.default.removeItem(atPath: path) }
        expectDataError(path, "empty") { _ = try WordPieceTokenizer(vocabularyFile: path) }
        expectDataError("<vocabulary>", "empty") { _ = try WordPieceTokenizer(vocabulary: []) }
    }

    @Test func missingSpecialTokensAreNamed() throws {
        let path = try temporaryFile(Array("[PAD]\n[CLS]\nhello\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        expectDataError(path, "[UNK], [SEP]") { _ = try WordPieceTokenizer(vocabularyFile: path) }
    }

    @Test func invalidUTF8NamesTheLine() throws {
        let path = try temporaryFile(Array("[PAD]\n[UNK]\n".utf8) + [0x66, 0xFF, 0x0A] + Array("[CLS]\n[SEP]\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        expectDataError(path, "UTF-8", line: 3) { _ = try WordPieceTokenizer(vocabularyFile: path) }
    }

    @Test func readsLinesAsIdsWithOrWithoutFinalNewline() throws {
        for text in ["[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhi\r\n", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhi"] {
            let path = try temporaryFile(Array(text.utf8))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let t = try WordPieceTokenizer(vocabularyFile: path)
            #expect(t.vocabulary.count == 5 && t.ids("HI") == [4])
        }
    }
}

/// Hugging Face's output on tricky strings, written by Fixtures/make_wordpiece_fixtures.py.
nonisolated(unsafe) let wordPieceCases: [String: Any] = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/wordpiece_cases.json")
    return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
}()

@Suite(.enabled(if: miniLMVocabularyPresent, miniLMMissing))
struct WordPieceMiniLM {
    let tok = try! WordPieceTokenizer(vocabularyFile: miniLMVocabularyPath)

    @Test func specialIds() {
        #expect(tok.vocabulary.count == 30522)
        #expect((tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId) == (0, 100, 101, 102, 103))
    }

    @Test func referenceSentences() {
        #expect(tok.encode("A man is eating food.").ids == [101, 1037, 2158, 2003, 5983, 2833, 1012, 102])
        #expect(tok.encode("Héllo, naïve world! unaffable tokenization").ids
                == [101, 7592, 1010, 15743, 2088, 999, 14477, 20961, 3468, 19204, 3989, 102])
    }

    @Test func matchesHuggingFaceOnEveryText() {
        let cases = wordPieceCases["singles"] as! [[String: Any]]
        #expect(cases.count >= 30)
        for c in cases {
            let text = c["text"] as! String
            let e = tok.encode(text)
            #expect(tok.tokenize(text) == c["tokens"] as! [String], "tokens of \(text.debugDescription)")
            #expect(e.ids == c["ids"] as! [Int], "ids of \(text.debugDescription)")
            #expect(tok.decode(e.ids) == c["decoded"] as! String, "decoding of \(text.debugDescription)")
        }
    }

    @Test func matchesHuggingFaceOnPairsTruncationAndPadding() {
        for c in wordPieceCases["encodings"] as! [[String: Any]] {
            let padding: SequencePadding = c["padding"] as! String == "max_length" ? .maxLength : .none
            let e = tok.encode(c["text"] as! String, pair: c["pair"] as? String, maxLength: c["max_length"] as? Int,
                               truncation: c["truncation"] as! Bool, padding: padding)
            let label = "\((c["text"] as! String).debugDescription) / \(String(describing: c["pair"]))"
            #expect(e.ids == c["ids"] as! [Int], "ids of \(label)")
            #expect(e.typeIds == c["type_ids"] as! [Int], "type ids of \(label)")
            #expect(e.attentionMask == c["mask"] as! [Int], "mask of \(label)")
        }
    }

    @Test func matchesHuggingFaceOnBatches() {
        for c in wordPieceCases["batches"] as! [[String: Any]] {
            let padding: SequencePadding = c["padding"] as! String == "max_length" ? .maxLength : .longest
            let b = tok.encodeBatch(c["texts"] as! [String], maxLength: c["max_length"] as? Int, padding: padding)
            let ids = c["ids"] as! [[Int]]
            #expect(b.shape == [ids.count, ids[0].count])
            #expect(b.ids == ids.flatMap { $0 })
            #expect(b.typeIds == (c["type_ids"] as! [[Int]]).flatMap { $0 })
            #expect(b.attentionMask == (c["mask"] as! [[Int]]).flatMap { $0 })
        }
    }
}
