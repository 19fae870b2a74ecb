import Foundation
import Testing
@testable import GraftRecipe

@Suite struct RunWeightsTests {
    @Test func aTrainedRunsBestWeightsAreAPretrainedBody() throws {
        let csv = try blobCSV()
        let first = "\(try temporaryDirectory())/first"
        let source = try Recipe.load(path: try recipeFile(blobRecipe(csv: csv, output: first)), overrides: ["training.epochs=2"])
        try RecipeRun(source).run()
        let weights = "\(first)/best/model.safetensors"
        var lines: [String] = []
        let run = RecipeRun(try Recipe.load(path: try recipeFile(blobRecipe(csv: csv, output: "~")),
                                            overrides: ["model.weights=\(weights)", "training.epochs=1"]))
        run.log = { lines.append($0) }
        try run.run()
        #expect(lines.contains { $0.hasPrefix("model: mlp body from \(weights) (2 tensors), new head 'layers.2'") }, "\(lines)")
    }

    @Test func missingWeightsNameTheField() throws {
        let recipe = try Recipe.load(path: try recipeFile(blobRecipe(csv: try blobCSV(), output: "~")),
                                     overrides: ["model.weights=/no/run/best/model.safetensors"])
        #expect(errorText { try RecipeRun(recipe).run() }
                .hasPrefix("/no/run/best/model.safetensors: model.weights: no such file or directory"))
    }
}
