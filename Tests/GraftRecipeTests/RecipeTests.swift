import Foundation
import Testing
import GraftCore
import GraftIO
import GraftNN
import GraftOptim
import GraftTrain
@testable import GraftRecipe

func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graft-recipe-\(UUID())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Writes `text` as a recipe file in a fresh directory and returns its path.
func recipeFile(_ text: String) throws -> String {
    let path = "\(try temporaryDirectory())/recipe.yaml"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// Four well-separated Gaussian blobs in 6-D as a labelled CSV; returns its path.
func blobCSV(rows: Int = 160) throws -> String {
    var rng = RandomGenerator(seed: 3)
    var lines: [String] = []
    for r in 0..<rows {
        let label = r % 4
        let x = (0..<6).map { d in (d == label ? 5 : 0) + rng.nextNormal() }
        lines.append((x.map { String($0) } + [String(label)]).joined(separator: ","))
    }
    let path = "\(try temporaryDirectory())/blobs.csv"
    try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

func blobRecipe(csv: String, output: String, extra: String = "") -> String {
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
      lr: 0.03
    optimizer:
      name: adam
    schedule:
      name: cosine
      warmup-steps: 3
    training:
      epochs: 6
      batch-size: 16
      monitor: accuracy
    output: \(output)
    \(extra)
    """
}

func errorText(_ body: () throws -> Void) -> String {
    do { try body(); return "" } catch { return "\(error)" }
}

@Suite struct RecipeTests {
    @Test func readsEveryFieldOfARecipe() throws {
        let path = try recipeFile(blobRecipe(csv: "/data/x.csv", output: "/tmp/out"))
        let r = try Recipe.load(path: path)
        #expect(r.seed == 1 && r.data.format == .csv && r.data.path == "/data/x.csv" && r.data.validation == 0.2)
        #expect(r.model.architecture == .mlp && r.model.hidden == [16])
        #expect(r.strategy.fixed == .fullFineTuning(lr: 0.03))
        #expect(r.optimizer.kind == .adam && r.schedule?.kind == .cosine)
        #expect(r.training.epochs == 6 && r.training.batchSize == 16 && r.training.monitor == "accuracy")
        #expect(r.output == "/tmp/out")
    }

    @Test func everyShippedRecipeReads() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("recipes").path
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 3)
        for file in files {
            // Meta-learning recipes have a meta section (and name their tasks instead of data; a multi-task recipe's
            // tasks are heads).
            let text = try String(contentsOfFile: "\(dir)/\(file)", encoding: .utf8)
            if text.contains("\nmeta:") { _ = try MetaRecipe.load(path: "\(dir)/\(file)") } else { _ = try Recipe.load(path: "\(dir)/\(file)") }
        }
    }

    @Test func everyStrategyByName() throws {
        let cases: [(String, FineTuningStrategy)] = [
            ("{name: feature-extraction, lr: 1e-3, cached: false}", .featureExtraction(lr: 1e-3, cached: false)),
            ("{name: full, lr: 1e-3, lowest-lr: 1e-5}", .fullFineTuning(lr: 1e-3, lowestRate: 1e-5)),
            ("{name: partial, lr: 1e-4, top-blocks: 3}", .partial(.topBlocks(3), lr: 1e-4)),
            ("{name: partial, lr: 1e-4, top-fraction: 0.3}", .partial(.topFraction(0.3), lr: 1e-4)),
            ("{name: two-stage, head-epochs: 2, head-lr: 1e-3, top-blocks: 2, lr: 1e-4}",
             .twoStage(headEpochs: 2, headLR: 1e-3, thenTopBlocks: 2, lr2: 1e-4)),
            ("{name: gradual-unfreezing, every: 2, lr: 1e-3, lowest-lr: 1e-4}",
             .gradualUnfreezing(every: 2, lr: 1e-3, lowestRate: 1e-4)),
        ]
        for (yaml, expected) in cases {
            let r = try Recipe.load(path: try recipeFile(blobRecipe(csv: "x", output: "o")), overrides: ["strategy=\(yaml)"])
            #expect(r.strategy.fixed == expected, "\(yaml)")
        }
        let auto = try Recipe.load(path: try recipeFile(blobRecipe(csv: "x", output: "o")),
                                   overrides: ["strategy={name: auto, similarity: low}"])
        let (strategy, reason) = auto.strategy.resolve(rows: 500)
        #expect(strategy == .partial(.topBlocks(2), lr: 1e-4) && reason?.contains("500") == true)
    }

    @Test func mistakesNameTheFieldAndLine() throws {
        let path = try recipeFile(blobRecipe(csv: "x", output: "o"))
        func message(_ overrides: [String]) -> String { errorText { _ = try Recipe.load(path: path, overrides: overrides) } }
        let unknown = message(["training.epoch=3"])
        #expect(unknown.contains("training.epoch") && unknown.contains("unknown field") && unknown.contains("epochs"))
        let misspelt = errorText { _ = try Recipe.load(path: try recipeFile(blobRecipe(csv: "x", output: "o", extra: "trainig: {}"))) }
        #expect(misspelt.contains("recipe.yaml:23") && misspelt.contains("trainig"), "\(misspelt)")
        #expect(message(["training.epochs=0"]).contains("training.epochs: must be ≥ 1"))
        #expect(message(["training.epochs=many"]).contains("not an integer"))
        #expect(message(["strategy.lr=-1"]).contains("strategy.lr: learning rate must be ≥ 0"))
        #expect(message(["strategy.name=everything"]).contains("feature-extraction"))
        #expect(message(["strategy={name: partial, lr: 1}"]).contains("top-blocks"))
        #expect(message(["optimizer.name=adagrad"]).contains("unknown optimizer 'adagrad'"))
        #expect(message(["optimizer.momentum=0.9"]).contains("optimizer.momentum: unknown field"))
        #expect(message(["optimizer={name: sgd, momentum: 1.5}"]).contains("momentum"))
        let schedule = message(["schedule.eta_min=0.1"])
        #expect(schedule.contains("eta_min") && schedule.contains("eta-min") && schedule.contains("unknown option"))
        #expect(message(["schedule.name=linear"]).contains("cosine-warmup"))
        #expect(message(["model.architecture=vgg"]).contains("model.architecture"))
        #expect(message(["data.path=${GRAFT_SURELY_UNSET_VARIABLE}/x"]).contains("GRAFT_SURELY_UNSET_VARIABLE is not set"))
        #expect(message(["data.test=0.9"]).contains("validation + test"))
        #expect(message(["epochs"]).contains("field.path=value"))
    }

    @Test func environmentVariablesAndOverridesApply() throws {
        setenv("GRAFT_RECIPE_TEST_DIR", "/srv/data", 1)
        let r = try Recipe.load(path: try recipeFile(blobRecipe(csv: "${GRAFT_RECIPE_TEST_DIR}/a.csv", output: "${NOPE_UNSET:-runs}/b")),
                                overrides: ["training.epochs=2", "training.patience=1", "model.hidden=[8, 4]"])
        #expect(r.data.path == "/srv/data/a.csv" && r.output == "runs/b")
        #expect(r.training.epochs == 2 && r.training.patience == 1 && r.model.hidden == [8, 4])
        // A null value removes the field: its default applies.
        let removed = try Recipe.load(path: try recipeFile(blobRecipe(csv: "a.csv", output: "b")), overrides: ["model.hidden=null"])
        #expect(removed.model.hidden == [256] && !removed.fields.contains { $0.path.hasPrefix("model.hidden") })
    }

    @Test func runTrainsCheckpointsAndReportsTheBestEpochOnTheTestRows() throws {
        let output = "\(try temporaryDirectory())/run"
        let recipe = try Recipe.load(path: try recipeFile(blobRecipe(csv: try blobCSV(), output: output)))
        let run = RecipeRun(recipe)
        var lines: [String] = []
        run.log = { lines.append($0) }
        let result = try run.run()
        #expect(result.reports.count == 6)
        #expect(try #require(result.test).accuracy > 0.9, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("epoch   6") } && lines.contains { $0.hasPrefix("test (weights of epoch") })

        // The best checkpoint holds the weights the test figures came from.
        var rng = RandomGenerator(seed: 99)
        let model = MLP(sizes: [6, 16, 4], using: &rng)
        try Checkpoint.loadModel(model, from: "\(output)/best")
        let rows = try RecipeData.load(recipe.data, seed: recipe.seed, tokenizer: nil)
        let test = try #require(rows.test)
        let logits = withNoGrad { model(test.inputs) }
        var confusion = ConfusionMatrix(classes: 4)
        confusion.add(logits: logits, targets: test.labels)
        #expect(confusion.accuracy == result.test!.accuracy)

        let metrics = try String(contentsOfFile: "\(output)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 6)
        let results = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(output)/results.json")))
        #expect((results as? [String: Any])?["best_epoch"] as? Int == result.bestEpoch)
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(output)/last/state.json")))
        #expect((state as? [String: Any])?["epoch"] as? Int == 6)
        let optimizer = try SafeTensorsFile(path: "\(output)/last/optimizer.safetensors")
        #expect(try optimizer.tensors().map(\.0).contains("layers.0.weight.exp_avg"))
        #expect(FileManager.default.fileExists(atPath: "\(output)/recipe.yaml"))
    }

    @Test func anEarlierRunIsNeitherMixedInNorDamaged() throws {
        let output = "\(try temporaryDirectory())/run"
        let csv = try blobCSV()
        let path = try recipeFile(blobRecipe(csv: csv, output: output, extra: ""))
        let run = RecipeRun(try Recipe.load(path: path, overrides: ["training.epochs=1"]))
        run.log = { _ in }
        try run.run()
        let before = try Data(contentsOf: URL(fileURLWithPath: "\(output)/best/model.safetensors"))
        let again = RecipeRun(try Recipe.load(path: path, overrides: ["training.epochs=1"]))
        again.log = { _ in }
        let refused = errorText { try again.run() }
        #expect(refused.contains(output) && refused.contains("--overwrite"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(output)/best/model.safetensors")) == before)
        // A data error found after the output check still leaves the earlier run whole.
        let broken = RecipeRun(try Recipe.load(path: path, overrides: ["data.path=\(csv).missing", "training.epochs=1"]))
        broken.log = { _ in }
        #expect(errorText { try broken.run(overwrite: true) }.contains("\(csv).missing"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(output)/best/model.safetensors")) == before)
    }

    @Test func weightsLoadTheBodyAndANewHeadTrains() throws {
        let first = "\(try temporaryDirectory())/first"
        let csv = try blobCSV()
        let path = try recipeFile(blobRecipe(csv: csv, output: first))
        let pretrain = RecipeRun(try Recipe.load(path: path, overrides: ["training.epochs=2"]))
        pretrain.log = { _ in }
        try pretrain.run()

        // Feature extraction from the first run's body: the body is its checkpoint, untouched; the head is new.
        let second = "\(try temporaryDirectory())/second"
        let run = RecipeRun(try Recipe.load(path: path, overrides: [
            "output=\(second)", "model.weights=\(first)/best", "strategy={name: feature-extraction, lr: 0.05}"]))
        var lines: [String] = []
        run.log = { lines.append($0) }
        try run.run()
        #expect(lines.contains { $0.contains("mlp body from \(first)/best/model.safetensors (2 tensors), new head 'layers.2'") })
        let before = try SafeTensorsFile(path: "\(first)/best/model.safetensors").tensors()
        let after = try SafeTensorsFile(path: "\(second)/last/model.safetensors").tensors()
        #expect(before.count == 4 && after.count == 4)
        for ((name, a), (_, b)) in zip(before, after) {
            #expect((a.scalars == b.scalars) == name.hasPrefix("layers.0."), "\(name)")
        }

        // Weights of another shape are refused, naming the file and the tensor.
        let wrong = RecipeRun(try Recipe.load(path: path, overrides: [
            "output=\(try temporaryDirectory())/x", "model.weights=\(first)/best", "model.hidden=[8]"]))
        wrong.log = { _ in }
        let message = errorText { try wrong.run() }
        #expect(message.contains("\(first)/best/model.safetensors") && message.contains("layers.0.weight"))
    }

    @Test func plateauFollowsTheMonitorAndLowersTheRate() throws {
        let output = "\(try temporaryDirectory())/run"
        let path = try recipeFile(blobRecipe(csv: try blobCSV(), output: output))
        let recipe = try Recipe.load(path: path, overrides: ["schedule={name: plateau, patience: 0, factor: 0.5, threshold: 0.5}",
                                                             "training.epochs=8", "training.monitor=loss"])
        let run = RecipeRun(recipe)
        run.log = { _ in }
        let reports = try run.run().reports
        let rates = reports.map { $0.learningRates[$0.learningRates.count - 1] }
        #expect(rates.first == 0.03 && rates.last! < 0.03)
    }
}
