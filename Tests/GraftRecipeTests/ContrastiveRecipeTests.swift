import Foundation
import Testing
import GraftCore
import GraftIO
import GraftTrain
@testable import GraftRecipe

/// 1×4×4 images of four classes, class c bright in quadrant c, with noise; returns the CSV's path.
private func quadrantCSV(rows: Int = 160) throws -> String {
    var rng = RandomGenerator(seed: 5)
    var lines: [String] = []
    for r in 0..<rows {
        let label = r % 4
        let pixels = (0..<16).map { i -> Float in
            let quadrant = (i / 8) * 2 + (i % 4) / 2
            return (quadrant == label ? 1 : 0) + 0.2 * rng.nextNormal()
        }
        lines.append((pixels.map { String($0) } + [String(label)]).joined(separator: ","))
    }
    let path = "\(try temporaryDirectory())/quadrants.csv"
    try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

private func contrastiveRecipe(csv: String, output: String) -> String {
    """
    seed: 2
    data:
      format: csv
      path: \(csv)
      image: [1, 4, 4]
      validation: 0.2
      test: 0.2
    model:
      architecture: mlp
      hidden: [16]
    contrastive:
      temperature: 0.5
      projection: [8]
      transforms: [{affine: {degrees: 10, translate: [0.25, 0.25]}}]
    strategy:
      name: full
      lr: 0.03
    optimizer:
      name: adam
    training:
      epochs: 4
      batch-size: 16
    output: \(output)
    """
}

@Suite struct ContrastiveRecipeTests {
    /// Pre-training lowers the validation NT-Xent; the run's weights hold the projection head beside the model, and a
    /// later recipe loads the body from them, the projection left out.
    @Test func pretrainsThenServesItsBody() throws {
        let csv = try quadrantCSV()
        let output = "\(try temporaryDirectory())/simclr"
        let run = RecipeRun(try Recipe.load(path: try recipeFile(contrastiveRecipe(csv: csv, output: output))))
        var lines: [String] = []
        run.log = { lines.append($0) }
        let result = try run.run()
        let losses = result.reports.map(\.evaluation.loss)
        #expect(losses.count == 4 && losses.last! < losses.first!, "\(losses)")
        // 32 validation rows, so 64 anchors, each counted twice in the mirrored matrix.
        #expect(result.reports.allSatisfy { $0.evaluation.confusion.total == 128 })
        #expect(lines.contains { $0.hasPrefix("contrastive: NT-Xent at temperature 0.5 over the global batch's 32 views, projection 16 → 8") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("test (weights of epoch") && $0.contains("NT-Xent") }, "\(lines)")

        // results.json: the test rows' NT-Xent and retrieval, no per-class figures (there are no classes).
        let results = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(output)/results.json")))
        let test = try #require((results as? [String: Any])?["test"] as? [String: Any])
        #expect((test["per_class"] as? [Any])?.isEmpty == true && test["accuracy"] as? Double == result.test?.accuracy, "\(test)")
        let file = try SafeTensorsFile(path: "\(output)/best/model.safetensors")
        let pretrained = Dictionary(uniqueKeysWithValues: try file.tensors())
        #expect(file.metadata[Checkpoint.auxiliaryKey] == "projection")
        #expect(pretrained["projection.layers.0.weight"]?.shape == [8, 16])
        // The run loads as a trained run (for a meta-learning body, say), but has no classifier to evaluate.
        let trained = try TrainedRun(output)
        #expect(errorText { try trained.requireClassifier() }.contains("is a contrastive pre-training run"))

        // Feature extraction on the labels: the body stays the pre-trained one.
        let probeOutput = "\(try temporaryDirectory())/probe"
        let probe = try Recipe.load(path: try recipeFile(blobRecipeOnImages(csv: csv, output: probeOutput)),
                                    overrides: ["model.weights=\(output)/best/model.safetensors"])
        let probeRun = RecipeRun(probe)
        var probeLines: [String] = []
        probeRun.log = { probeLines.append($0) }
        try probeRun.run()
        #expect(probeLines.contains { $0.contains("body from") && $0.hasSuffix("its projection left out") }, "\(probeLines)")
        let probed = Dictionary(uniqueKeysWithValues: try SafeTensorsFile(path: "\(probeOutput)/best/model.safetensors").tensors())
        #expect(probed["layers.0.weight"]?.scalars == pretrained["layers.0.weight"]?.scalars)
        #expect(probed["projection.layers.0.weight"] == nil)
    }

    @Test func mistakesAreNamed() throws {
        let csv = try quadrantCSV(rows: 40)
        let path = try recipeFile(contrastiveRecipe(csv: csv, output: "o"))
        func message(_ overrides: [String]) -> String { errorText { _ = try Recipe.load(path: path, overrides: overrides) } }
        #expect(message(["contrastive.temperature=0"]).contains("contrastive.temperature: must be > 0"))
        #expect(message(["contrastive.projection=[8, 0]"]).contains("contrastive.projection: must be one or more positive widths"))
        #expect(message(["contrastive.transforms=~"]).contains("contrastive.transforms: is required"))
        #expect(message(["contrastive.transforms=[{resize: {size: 4}}]"]).contains("contrastive.transforms: has no random transform"))
        let shape = message(["contrastive.transforms=[{random-resized-crop: {size: 3}}]"])
        #expect(shape.contains("contrastive.transforms: turn rows of [1, 4, 4] into [1, 3, 3]"), "\(shape)")
        #expect(message(["contrastive.bogus=1"]).contains("contrastive.bogus: unknown field"))
        #expect(message(["data.image=~"]).contains("contrastive: contrastive pre-training takes images from a CSV"))
        #expect(message(["strategy={name: feature-extraction, lr: 0.1}"]).contains("strategy.name: contrastive pre-training trains the whole body"))
        #expect(message(["training.label-smoothing=0.1"]).contains("training.label-smoothing: has no effect"))
        #expect(message(["contrastive.temperature=0"]).contains("recipe.yaml:"))
    }
}

/// A supervised feature-extraction recipe on the quadrant images (an MLP on flattened rows).
private func blobRecipeOnImages(csv: String, output: String) -> String {
    """
    seed: 2
    data:
      format: csv
      path: \(csv)
      image: [1, 4, 4]
      validation: 0.2
      test: 0.2
    model:
      architecture: mlp
      hidden: [16]
    strategy:
      name: feature-extraction
      lr: 0.05
      cached: false
    optimizer:
      name: adam
    training:
      epochs: 2
      batch-size: 16
    output: \(output)
    """
}
