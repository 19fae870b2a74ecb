import Foundation
import Testing
import GraftCore
import GraftIO
import GraftNN
import GraftTrain
@testable import GraftRecipe

/// The `distillation:` section and `model.layers`: fields, errors naming the field, a teacher that read the data
/// differently refused, and a distilled MLP run end to end.
@Suite struct DistillationRecipeTests {
    private func quiet(_ path: String, _ overrides: [String] = []) throws -> RunResult {
        let run = RecipeRun(try Recipe.load(path: path, overrides: overrides))
        run.log = { _ in }
        return try run.run(overwrite: true)
    }

    @Test func fieldsDefaultsAndMistakes() throws {
        let path = try recipeFile(blobRecipe(csv: "/x.csv", output: "/o", extra: "distillation: {teacher: runs/t}"))
        let d = try #require(try Recipe.load(path: path).distillation)
        #expect(d.teacher == "runs/t" && d.temperature == 4 && d.alpha == 0.5 && d.featureWeight == 0 && d.cacheTeacher)
        let full = try Recipe.load(path: path, overrides: ["distillation.temperature=2", "distillation.alpha=0.9",
                                                          "distillation.features={weight: 0.5}", "distillation.cache-teacher=false"])
        #expect(full.distillation?.temperature == 2 && full.distillation?.alpha == 0.9)
        #expect(full.distillation?.featureWeight == 0.5 && full.distillation?.cacheTeacher == false)
        func message(_ overrides: [String]) -> String { errorText { _ = try Recipe.load(path: path, overrides: overrides) } }
        #expect(message(["distillation.teacher=null"]).contains("distillation.teacher: is required"))
        #expect(message(["distillation.temperature=0"]).contains("distillation.temperature: must be in (0, 100], got 0"))
        #expect(message(["distillation.temperature=hot"]).contains("distillation.temperature: 'hot' is not a finite number"))
        #expect(message(["distillation.alpha=1.5"]).contains("distillation.alpha: must be in [0, 1], got 1.5"))
        #expect(message(["distillation.alpha=0"]).contains("distillation.alpha: 0 with no features term leaves the teacher unused"))
        #expect(message(["distillation.features={scale: 1}"]).contains("distillation.features.weight: is required"))
        #expect(message(["distillation.features={weight: 0}"]).contains("distillation.features.weight: must be > 0, got 0.0"))
        #expect(message(["distillation.features={weight: 1, layer: 2}"]).contains("distillation.features.layer: unknown field"))
        #expect(message(["distillation.teachers=x"]).contains("distillation.teachers: unknown field"))
        #expect(message(["distillation.cache-teacher=maybe"]).contains("distillation.cache-teacher: 'maybe' is not true or false"))
        let lora = message(["distillation.features={weight: 1}", "model.weights=/w", "adapters={targets: [layers.0]}"])
        #expect(lora.contains("distillation.features: the feature projection trains beside the model"), "\(lora)")
    }

    /// A teacher MLP trained on the blobs, then a student distilled from it (soft targets and features): the run
    /// trains and tests, the projection is checkpointed beside the student but not loaded with it, and teachers that
    /// are no run, or read other classes or another split, are refused naming the field.
    @Test func distilledRunAndMismatchedTeachers() throws {
        let csv = try blobCSV()
        let dir = try temporaryDirectory()
        let teacher = "\(dir)/teacher"
        _ = try quiet(try recipeFile(blobRecipe(csv: csv, output: teacher)), ["training.epochs=3"])
        let student = try recipeFile(blobRecipe(csv: csv, output: "\(dir)/student", extra: """
            distillation: {teacher: \(teacher), temperature: 2, alpha: 0.7, features: {weight: 0.5}}
            """))
        let result = try quiet(student, ["model.hidden=[8]"])
        let accuracy = try #require(result.test).accuracy
        #expect(accuracy > 0.9, "test accuracy \(accuracy)")
        let saved = try SafeTensorsFile(path: "\(dir)/student/best/model.safetensors").tensors().map(\.0)
        #expect(saved.contains("distill_projection.weight") && saved.contains("distill_projection.bias"))
        let loaded = try TrainedRun("\(dir)/student")
        #expect(!loaded.model.stateDict().contains { $0.0.hasPrefix("distill_projection") })

        func refusal(_ overrides: [String]) -> String { errorText { _ = try quiet(student, overrides) } }
        let notRun = refusal(["distillation.teacher=\(dir)"])
        #expect(notRun.contains("distillation.teacher: \(dir) is not a graft train run directory"), "\(notRun)")
        let split = refusal(["data.test=0.3"])
        #expect(split.contains("distillation.teacher: \(teacher) was trained with data.test 0.2, this recipe has 0.3"), "\(split)")
        let seed = refusal(["seed=2"])
        #expect(seed.contains("the split seed (data.split-seed, else seed) 1, this recipe has 2"), "\(seed)")
        // Three of the four classes: another class list.
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").filter { !$0.hasSuffix(",3") }
        let three = "\(dir)/three.csv"
        try lines.joined(separator: "\n").write(toFile: three, atomically: true, encoding: .utf8)
        let classes = refusal(["data.path=\(three)"])
        #expect(classes.contains("distillation.teacher: \(teacher) was trained on classes 0, 1, 2, 3, the data has 0, 1, 2"), "\(classes)")
        let cached = refusal(["strategy={name: feature-extraction, lr: 0.1}"])
        #expect(cached.contains("strategy: distillation runs the student's body in every step"), "\(cached)")
    }

    /// `model.layers: N` keeps the first N encoder layers of the pretrained weights; more than the file has is refused.
    @Test func shallowBertKeepsTheLowerLayers() throws {
        let dir = try temporaryDirectory()
        var config = BertConfig()
        (config.vocabularySize, config.hidden, config.layers, config.heads, config.intermediate, config.maxPositions) = (40, 8, 3, 2, 16, 16)
        let json = """
            {"vocab_size": 40, "hidden_size": 8, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 16,
             "max_position_embeddings": 16, "type_vocab_size": 2, "hidden_act": "gelu"}
            """
        try json.write(toFile: "\(dir)/config.json", atomically: true, encoding: .utf8)
        var rng = RandomGenerator(seed: 5)
        let full = BertModel(config, using: &rng)
        try SafeTensors.write(full.stateDict(), to: "\(dir)/model.safetensors")
        let path = try recipeFile("""
            data: {format: text-folder, path: /texts}
            model: {architecture: bert, weights: \(dir), layers: 2}
            strategy: {name: full, lr: 1e-3}
            training: {epochs: 1}
            """)
        let spec = try Recipe.load(path: path).model
        #expect(spec.layers == 2)
        let (model, line) = try spec.build(classes: 3, inputShape: [6], padId: 0, using: &rng)
        let bert = try #require((model as? BertClassifier)?.bert)
        #expect(bert.layers.count == 2 && line.contains("its lower 2 of 3 layers"), "\(line)")
        let original = Dictionary(uniqueKeysWithValues: full.stateDict())
        for (name, t) in bert.stateDict() { #expect(t.scalars == original[name]?.scalars, "\(name)") }
        #expect(!bert.stateDict().contains { $0.0.hasPrefix("encoder.layer.2.") })
        let deep = try Recipe.load(path: path, overrides: ["model.layers=4"]).model
        let message = errorText { _ = try deep.build(classes: 3, inputShape: [6], padId: 0, using: &rng) }
        #expect(message.contains("model.layers: 4 is more than the 3 encoder layers of \(dir)/config.json"), "\(message)")
        let zero = errorText { _ = try Recipe.load(path: path, overrides: ["model.layers=0"]) }
        #expect(zero.contains("model.layers: must be ≥ 1, got 0"), "\(zero)")
        let mlp = errorText { _ = try Recipe.load(path: try recipeFile(blobRecipe(csv: "x", output: "o")), overrides: ["model.layers=2"]) }
        #expect(mlp.contains("model.layers: unknown field"), "\(mlp)")
    }
}
