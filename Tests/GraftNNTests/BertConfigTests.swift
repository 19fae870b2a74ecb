import Foundation
import Testing
@testable import GraftNN

@Suite struct BertConfigTests {
    private func config(_ json: String) throws -> BertConfig {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-config-\(UUID()).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return try BertConfig(file: path)
    }

    private let miniLM = """
        {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
         "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_act": "gelu",
         "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "model_type": "bert"}
        """

    @Test func readsTheFieldsThatShapeTheEncoder() throws {
        let c = try config(miniLM)
        #expect(c.hidden == 384 && c.layers == 6 && c.heads == 12 && c.intermediate == 1536 && c.vocabularySize == 30522)
        #expect(c.layerNormEps == 1e-12 && c.hiddenDropout == 0.1)
    }

    @Test func mistakesNameTheField() {
        func problem(_ json: String) -> String {
            do { _ = try config(json); return "" } catch { return "\(error)" }
        }
        #expect(problem(miniLM.replacingOccurrences(of: "\"hidden_size\": 384", with: "\"hidden_size\": \"big\"")).contains("field 'hidden_size' must be a positive integer"))
        #expect(problem(miniLM.replacingOccurrences(of: "\"num_hidden_layers\": 6, ", with: "")).contains("field 'num_hidden_layers' must be a positive integer"))
        #expect(problem(miniLM.replacingOccurrences(of: "\"layer_norm_eps\": 1e-12", with: "\"layer_norm_eps\": \"small\"")).contains("field 'layer_norm_eps' must be a number"))
        #expect(problem(miniLM.replacingOccurrences(of: "\"gelu\"", with: "\"relu\"")).contains("hidden_act 'relu' is not supported"))
        #expect(problem(miniLM.replacingOccurrences(of: "\"num_attention_heads\": 12", with: "\"num_attention_heads\": 7")).contains("not divisible"))
        #expect(problem("[1, 2]").contains("not a JSON object"))
    }
}
