// Fuzzes WordPieceTokenizer (BertNormalizer + greedy WordPiece) with MiniLM's vocab.txt ($GRAFT_VOCAB, default
// .cache/assets/minilm/vocab.txt). Input: byte 0 picks maxLength (3...66), the rest is the text, with an optional
// second text after byte 0x1E; invalid UTF-8 is repaired with U+FFFD.
// Checks: ids within the vocabulary; tokenize agrees with ids; encode has [CLS] first and [SEP] last, length
// ≤ maxLength with truncation and exactly maxLength with padding, consistent type ids and mask; encodeBatch is
// rectangular; decode does not trap.
import Foundation
import GraftData

private let tokenizer: WordPieceTokenizer = {
    let path = ProcessInfo.processInfo.environment["GRAFT_VOCAB"] ?? ".cache/assets/minilm/vocab.txt"
    do { return try WordPieceTokenizer(vocabularyFile: path) } catch {
        fputs("wordpiece fuzzer: cannot load the vocabulary: \(error)\n", stderr)
        exit(2)
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = buffer(data, size)
    guard let first = bytes.first else { return 0 }
    let maxLength = 3 + Int(first) % 64
    let parts = Array(bytes.dropFirst()).split(separator: 0x1E, maxSplits: 1, omittingEmptySubsequences: false)
    let text = String(decoding: parts[0], as: UTF8.self)
    let pair: String? = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : nil
    let v = tokenizer.vocabulary.indices

    let ids = tokenizer.ids(text)
    check(ids.allSatisfy(v.contains), "id outside the vocabulary")
    check(tokenizer.tokenize(text) == ids.map { tokenizer.vocabulary[$0] }, "tokenize disagrees with ids")
    let pairIds = pair.map(tokenizer.ids)

    // Untruncated: [CLS] a [SEP] (b [SEP]).
    let full = tokenizer.encode(text, pair: pair, truncation: false)
    check(full.count == ids.count + 2 + (pairIds.map { $0.count + 1 } ?? 0), "untruncated length \(full.count)")
    var expected: [Int] = [tokenizer.clsId] + ids
    expected.append(tokenizer.sepId)
    if let pairIds { expected += pairIds; expected.append(tokenizer.sepId) }
    check(full.ids == expected, "untruncated ids")

    let specials = pair == nil ? 2 : 3
    if maxLength >= specials {
        let e = tokenizer.encode(text, pair: pair, maxLength: maxLength, padding: .maxLength)
        check(e.count == maxLength, "padded length \(e.count) ≠ maxLength \(maxLength)")
        check(e.typeIds.count == e.count && e.attentionMask.count == e.count, "ragged encoding")
        check(e.ids.allSatisfy(v.contains), "encoded id outside the vocabulary")
        let tokens = e.attentionMask.prefix { $0 == 1 }.count
        check(e.attentionMask[tokens...].allSatisfy { $0 == 0 }, "mask not 1s then 0s")
        check(e.ids[tokens...].allSatisfy { $0 == tokenizer.padId }, "padding is not [PAD]")
        check(tokens <= maxLength && tokens >= specials, "\(tokens) tokens for maxLength \(maxLength)")
        check(e.ids[0] == tokenizer.clsId && e.ids[tokens - 1] == tokenizer.sepId, "no [CLS] … [SEP]")
        check(e.typeIds.allSatisfy { $0 == 0 || $0 == 1 } && (pair != nil || e.typeIds.allSatisfy { $0 == 0 }),
              "type ids \(e.typeIds)")
        check(tokens == min(full.count, maxLength) || (pair != nil && tokens <= maxLength), "truncated to \(tokens)")

        let batch = tokenizer.encodeBatch([text, pair ?? ""], maxLength: maxLength, padding: .longest)
        check(batch.shape.count == 2 && batch.shape[0] == 2 && batch.shape[1] <= maxLength, "batch shape \(batch.shape)")
        check(batch.ids.count == 2 * batch.shape[1] && batch.ids.allSatisfy(v.contains), "batch ids")
        _ = tokenizer.decode(e.ids, skipSpecialTokens: Bool(first & 1 == 1))
    }
    _ = tokenizer.decode(ids)
    return 0
}
