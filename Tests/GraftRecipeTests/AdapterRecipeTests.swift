import Foundation
import Testing
import GraftCore
import GraftIO
import GraftNN
import GraftTrain
@testable import GraftRecipe

/// The `adapters:` section: fields, defaults and errors, and a LoRA run on a pretrained MLP end to end (adapter
/// checkpoints, merged weights, the trained run loaded back).
@Suite struct AdapterRecipeTests {
    private func bertRecipe(_ extra: String) throws -> String {
        try recipeFile("""
            data: {format: text-folder, path: /texts}
            model: {architecture: bert, weights: /minilm}
            strategy: {name: full, lr: 1e-3}
            training: {epochs: 2}
            \(extra)
            """)
    }

    @Test func fieldsAndPEFTDefaults() throws {
        let r = try Recipe.load(path: try bertRecipe("adapters: {method: lora}"))
        let a = try #require(r.adapters)
        #expect(a.method == .lora && a.configuration == LoRAConfiguration(rank: 8, alpha: 8, dropout: 0))
        #expect(a.targets == ["query", "value"])
        let custom = try Recipe.load(path: try bertRecipe("adapters: {r: 4, alpha: 16, dropout: 0.1, targets: [query, key, value]}"))
        #expect(custom.adapters?.configuration == LoRAConfiguration(rank: 4, alpha: 16, dropout: 0.1))
        #expect(custom.adapters?.configuration.scaling == 4 && custom.adapters?.targets == ["query", "key", "value"])
        #expect(try Recipe.load(path: try bertRecipe("")).adapters == nil)
    }

    @Test func mistakesNameTheFieldAndLine() throws {
        let path = try bertRecipe("adapters: {method: lora}")
        func message(_ overrides: [String]) -> String { errorText { _ = try Recipe.load(path: path, overrides: overrides) } }
        #expect(message(["adapters.method=prefix"]).contains("adapters.method: 'prefix' is not one of: lora"))
        #expect(message(["adapters.r=0"]).contains("adapters.r: must be ≥ 1, got 0"))
        #expect(message(["adapters.alpha=-2"]).contains("adapters.alpha: must be > 0"))
        #expect(message(["adapters.dropout=1"]).contains("adapters.dropout: must be in [0, 1)"))
        #expect(message(["adapters.targets=[]"]).contains("adapters.targets: must name at least one layer"))
        #expect(message(["adapters.rank=4"]).contains("adapters.rank: unknown field"))
        let extraction = message(["strategy={name: feature-extraction, lr: 0.1}"])
        #expect(extraction.contains("recipe.yaml: strategy.name: feature-extraction trains only the head"), "\(extraction)")
        #expect(message(["strategy={name: auto}"]).contains("strategy.name: auto may choose feature extraction"))
        #expect(message(["model.pretrained=false"]).contains("recipe.yaml:5: adapters.method: adapters train beside frozen pretrained weights"))
        let mlp = errorText { _ = try Recipe.load(path: try recipeFile(blobRecipe(csv: "x", output: "o", extra: "adapters: {r: 2}"))) }
        #expect(mlp.contains("adapters.targets: is required for mlp"), "\(mlp)")
        let fresh = errorText { _ = try Recipe.load(path: try recipeFile(blobRecipe(csv: "x", output: "o", extra: "adapters: {targets: [layers.0]}"))) }
        #expect(fresh.contains("(no model.weights)"), "\(fresh)")
    }

    /// LoRA on the hidden layer of a pretrained MLP: the adapters and head train, checkpoints hold them alone, the
    /// merged weights give the adapted model's outputs in a model without adapters, and the run loads back.
    @Test func loraRunOnAPretrainedMLP() throws {
        let csv = try blobCSV()
        let first = "\(try temporaryDirectory())/first"
        let path = try recipeFile(blobRecipe(csv: csv, output: first))
        let pretrain = RecipeRun(try Recipe.load(path: path, overrides: ["training.epochs=2"]))
        pretrain.log = { _ in }
        try pretrain.run()

        let output = "\(try temporaryDirectory())/lora"
        let recipe = try Recipe.load(path: path, overrides: [
            "output=\(output)", "model.weights=\(first)/best", "adapters={targets: [layers.0], r: 4}", "training.epochs=3"])
        let run = RecipeRun(recipe)
        var lines: [String] = []
        run.log = { lines.append($0) }
        let result = try run.run()
        // layers.0 is 6 → 16: A [4, 6] and B [16, 4]; the head layers.2 is 16 → 4.
        #expect(lines.contains("adapters: LoRA r 4, α 8 (scale 2) on 1 layers (layers.0): 88 adapter parameters; the wrapped weights are frozen"),
                "\(lines)")
        #expect(lines.contains { $0.hasPrefix("trainable: 88 adapter + 68 head parameters of 268 ") }, "\(lines)")
        #expect(result.trainableParameters == 88 + 68)
        for checkpoint in ["best", "last"] {
            #expect(Checkpoint.holdsAdapters("\(output)/\(checkpoint)"))
            #expect(!FileManager.default.fileExists(atPath: "\(output)/\(checkpoint)/model.safetensors"))
        }
        let saved = try SafeTensorsFile(path: "\(output)/last/adapters.safetensors").tensors().map(\.0)
        #expect(saved == ["layers.0.lora_A.weight", "layers.0.lora_B.weight", "layers.2.weight", "layers.2.bias"])

        // The run as `graft evaluate` and `predict` load it, and its merged weights in a plain MLP.
        let trained = try TrainedRun(output)
        #expect(trained.model.loraLayers().map(\.0) == ["layers.0"])
        var rng = RandomGenerator(seed: 0)
        let plain = MLP(sizes: [6, 16, 4], using: &rng)
        let merged = try SafeTensorsFile(path: "\(output)/merged/model.safetensors").tensors()
        #expect(merged.map(\.0) == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"])
        try plain.load(Dictionary(uniqueKeysWithValues: merged), strict: true)
        let x = Tensor.randomNormal([5, 6], using: &rng)
        let (a, b) = (plain(x).scalars, trained.model(x).scalars)
        #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
        // The pretrained weights under the adapters are untouched.
        let base = try SafeTensorsFile(path: "\(first)/best/model.safetensors").tensor("layers.0.weight").scalars
        #expect((trained.model.loraLayers()[0].1.base.weight.scalars) == base)

        // A strategy that trains only the head is refused once the model's blocks are known.
        let headOnly = RecipeRun(try Recipe.load(path: path, overrides: [
            "output=\(try temporaryDirectory())/x", "model.weights=\(first)/best", "adapters={targets: [layers.0]}",
            "strategy={name: partial, top-blocks: 1, lr: 0.1}"]))
        headOnly.log = { _ in }
        #expect(errorText { try headOnly.run() }.contains("strategy: partial fine-tuning (the top block, the head, lr 0.1) trains only the top 1 block(s) (layers.2)"))
    }
}
