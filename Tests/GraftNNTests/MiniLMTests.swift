import Foundation
import Testing
import GraftCore
import GraftData
import GraftIO
@testable import GraftNN

/// The asset cache `launch/assets.sh` fills: $GRAFT_ASSETS, else .cache/assets in the repository.
func assetPath(_ relative: String) -> String {
    let root = ProcessInfo.processInfo.environment["GRAFT_ASSETS"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".cache/assets").path
    return "\(root)/\(relative)"
}

let miniLMFiles = ["minilm/model.safetensors", "minilm/config.json", "minilm/vocab.txt"].map(assetPath)

@Suite(.enabled(if: miniLMFiles.allSatisfy { FileManager.default.fileExists(atPath: $0) },
                "MiniLM assets missing (\(miniLMFiles.joined(separator: ", "))): run launch/assets.sh minilm"))
struct MiniLM {
    /// Real all-MiniLM-L6-v2 weights, strictly loaded, in eval mode.
    static func load() throws -> (BertModel, WordPieceTokenizer) {
        var rng = RandomGenerator(seed: 0)
        let model = BertModel(try BertConfig(file: miniLMFiles[1]), using: &rng)
        let weights = try SafeTensorsFile(path: miniLMFiles[0])
        try model.load(Dictionary(uniqueKeysWithValues: try weights.tensors()), strict: true, source: miniLMFiles[0])
        model.eval()
        return (model, try WordPieceTokenizer(vocabularyFile: miniLMFiles[2]))
    }

    static func embed(_ sentences: [String], _ model: BertModel, _ tokenizer: WordPieceTokenizer) -> Tensor {
        let batch = tokenizer.encodeBatch(sentences, maxLength: 128, padding: .longest)
        let mask = batch.maskTensor()
        return withNoGrad {
            BertModel.meanPooledEmbedding(model(batch.idIndices, typeIds: batch.typeIdIndices, mask: mask), mask: mask)
        }
    }

    @Test func configAndSize() throws {
        let (model, _) = try MiniLM.load()
        #expect(model.config.hidden == 384 && model.config.layers == 6 && model.config.heads == 12)
        #expect(model.parameterCount() == 22_713_216)
    }

    @Test func sentenceEmbeddingMatchesReference() throws {
        let (model, tokenizer) = try MiniLM.load()
        let sentences = ["A man is eating food.", "A man is eating a piece of bread.", "Stock markets fell sharply on Monday."]
        let e = MiniLM.embed(sentences, model, tokenizer)
        #expect(e.shape == [3, 384])
        let reference: [Float] = [0.03324, 0.00441, -0.00628, 0.04838, -0.13870, -0.03362, 0.10113, -0.05438]
        for (got, want) in zip(e.scalars.prefix(8), reference) {
            #expect(abs(got - want) <= 1e-4 + 5e-6, "embedding \(Array(e.scalars.prefix(8))) vs \(reference)")
        }
        let rows = (0..<3).map { Array(e.scalars[$0 * 384..<($0 + 1) * 384]) }
        func cosine(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map(*).reduce(0, +) }
        #expect(abs(cosine(rows[0], rows[1]) - 0.755) <= 1e-3)
        #expect(abs(cosine(rows[0], rows[2]) - 0.005) <= 1e-3)
        // Padding must not change a sentence's embedding: embedded alone it gives the same row.
        let alone = MiniLM.embed([sentences[0]], model, tokenizer)
        for (a, b) in zip(alone.scalars, rows[0]) { #expect(abs(a - b) < 1e-5) }
    }
}
