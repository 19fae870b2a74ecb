import Foundation
import Testing
import GraftCore
import GraftIO
import GraftNN
import GraftTrain
@testable import GraftRecipe

/// `regularization:` (L2-SP) and `continual:` (graft continual): fields, refusals naming file:line: field, and short
/// runs on the blob data.
@Suite struct ForgettingRecipeTests {
    /// A recipe without schedule or patience, as continual runs need.
    func plainRecipe(csv: String, output: String, extra: String = "") -> String {
        """
        seed: 1
        data:
          format: csv
          path: \(csv)
          validation: 0.2
          test: 0.2
        model:
          architecture: mlp
          hidden: [16]
        strategy:
          name: full
          lr: 0.05
        optimizer:
          name: sgd
          momentum: 0.9
        training:
          epochs: 2
          batch-size: 16
        output: \(output)
        \(extra)
        """
    }

    @Test func readsL2SP() throws {
        let path = try recipeFile(plainRecipe(csv: "x", output: "o", extra: "regularization: {method: l2-sp, body: 0.01, head: 0.001}"))
        let r = try Recipe.load(path: path, overrides: ["model.weights=w.safetensors"])
        #expect(r.regularization?.body == 0.01 && r.regularization?.head == 0.001)
    }

    @Test func l2spMistakesNameTheField() throws {
        let path = try recipeFile(plainRecipe(csv: "x", output: "o", extra: "regularization: {method: l2-sp, body: 0.01}"))
        func message(_ overrides: [String]) -> String {
            errorText { _ = try Recipe.load(path: path, overrides: ["model.weights=w.safetensors"] + overrides) }
        }
        #expect(message([]).isEmpty)
        let noWeights = errorText { _ = try Recipe.load(path: path) }
        #expect(noWeights.contains("recipe.yaml:20") && noWeights.contains("regularization.method") && noWeights.contains("pretrained"),
                "\(noWeights)")
        let decay = message(["optimizer.weight-decay=0.01"])
        #expect(decay.contains("regularization.method") && decay.contains("weight-decay: 0"), "\(decay)")
        let adamw = message(["optimizer={name: adamw}"])
        #expect(adamw.contains("AdamW's default is 0.01"), "\(adamw)")
        #expect(message(["optimizer={name: adamw, weight-decay: 0}"]).isEmpty)
        #expect(message(["regularization.body=-1"]).contains("regularization.body: must be a number ≥ 0"))
        #expect(message(["regularization.body=0"]).contains("both 0"))
        #expect(message(["regularization.method=l1"]).contains("l2-sp"))
        #expect(message(["regularization.lambda=3"]).contains("regularization.lambda: unknown field"))
        #expect(message(["model.pretrained=false"]).contains("pretrained"))
    }

    @Test func continualMistakesNameTheField() throws {
        let path = try recipeFile(plainRecipe(csv: "x", output: "o", extra: "continual: {count: 3, method: ewc, lambda: 50}"))
        func message(_ overrides: [String]) -> String { errorText { _ = try Recipe.load(path: path, overrides: overrides) } }
        let r = try Recipe.load(path: path)
        #expect(r.continual?.count == 3 && r.continual?.method == .ewc && r.continual?.lambda == 50 && r.continual?.seed == 1)
        #expect(message(["continual={method: ewc}"]).contains("continual.lambda: is required for ewc"))
        #expect(message(["continual={method: l2-sp}"]).contains("continual.alpha: is required for l2-sp"))
        #expect(message(["continual.alpha=1"]).contains("continual.alpha: unknown field"))
        #expect(message(["continual.lambda=-2"]).contains("must be a number ≥ 0"))
        #expect(message(["continual.count=0"]).contains("continual.count: must be ≥ 1"))
        #expect(message(["continual.tasks=split"]).contains("permuted"))
        #expect(message(["continual.method=replay"]).contains("naive, l2-sp, ewc"))
        #expect(message(["strategy={name: partial, lr: 0.1, top-blocks: 1}"]).contains("strategy.name must be full"))
        #expect(message(["training.patience=2"]).contains("training.patience"))
        #expect(message(["data.test=0"]).contains("data.test > 0"))
        let both = message(["regularization={method: l2-sp, body: 1}", "model.weights=w"])
        #expect(both.contains("regularization") && both.contains("continual.method"), "\(both)")
        let line = message(["continual.method=ewc2"])
        #expect(line.contains("recipe.yaml:") && line.contains("continual.method"), "\(line)")
    }

    @Test func summaryAndPermutations() {
        let (average, backward) = ContinualResult.summary([[0.9, nil, nil], [0.8, 0.95, nil], [0.7, 0.85, 0.9]])
        #expect(abs(average - 0.8166666) < 1e-6)
        // ((0.7 − 0.9) + (0.85 − 0.95)) / 2
        #expect(abs(backward! + 0.15) < 1e-9)
        #expect(ContinualResult.summary([[0.5]]).backward == nil)
        #expect(ContinualRun.permutation(task: 0, width: 10, seed: 4) == Array(0..<10))
        let p = ContinualRun.permutation(task: 2, width: 10, seed: 4)
        #expect(p.sorted() == Array(0..<10) && p != Array(0..<10))
        #expect(p == ContinualRun.permutation(task: 2, width: 10, seed: 4) && p != ContinualRun.permutation(task: 1, width: 10, seed: 4))
    }

    @Test func continualRunWritesTheAccuracyMatrix() throws {
        let out = "\(try temporaryDirectory())/run"
        let csv = try blobCSV()
        for method in ["method: naive", "method: l2-sp, alpha: 0.1", "method: ewc, lambda: 10"] {
            let path = try recipeFile(plainRecipe(csv: csv, output: out, extra: "continual: {count: 3, \(method)}"))
            let recipe = try Recipe.load(path: path)
            let run = try ContinualRun(recipe)
            var lines: [String] = []
            run.log = { lines.append($0) }
            let result = try run.run(overwrite: true)
            #expect(result.accuracy.count == 3 && result.accuracy[0][1] == nil && result.accuracy[2].allSatisfy { $0 != nil })
            #expect(result.accuracy[0][0]! > 0.9, "\(lines.joined(separator: "\n"))")
            #expect(result.backwardTransfer != nil && result.validationAccuracy?.count == 3)
            #expect(lines.contains { $0.contains("average accuracy after the last task") })
            if method.contains("ewc") { #expect(lines.contains { $0.contains("empirical Fisher") }) }
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/results.json"))) as! [String: Any]
            #expect((json["average_accuracy"] as? Double).map { abs($0 - result.averageAccuracy) < 1e-9 } == true)
            let metrics = try String(contentsOfFile: "\(out)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            #expect(metrics.count == 3 * 2 + 3)
        }
    }

    @Test func trainRefusesAContinualRecipe() throws {
        let path = try recipeFile(plainRecipe(csv: try blobCSV(), output: "\(try temporaryDirectory())/o",
                                              extra: "continual: {method: naive}"))
        let text = errorText { try RecipeRun(try Recipe.load(path: path)).run() }
        #expect(text.contains("continual") && text.contains("graft continual"), "\(text)")
    }

    /// Fine-tuning with L2-SP from saved weights runs and says what it adds.
    @Test func l2spFineTuningRuns() throws {
        var rng = RandomGenerator(seed: 2)
        let pretrained = MLP(sizes: [6, 16, 4], using: &rng)
        let dir = try temporaryDirectory()
        try SafeTensors.write(pretrained.stateDict(), to: "\(dir)/w.safetensors")
        let path = try recipeFile(plainRecipe(csv: try blobCSV(), output: "\(dir)/run",
                                              extra: "regularization: {method: l2-sp, body: 0.1, head: 0.01}"))
        let run = RecipeRun(try Recipe.load(path: path, overrides: ["model.weights=\(dir)/w.safetensors"]))
        var lines: [String] = []
        run.log = { lines.append($0) }
        let result = try run.run()
        #expect(lines.contains { $0.contains("regularization: l2-sp") })
        #expect(result.test!.accuracy > 0.9)
    }
}
