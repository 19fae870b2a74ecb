import Foundation
import Testing
import GraftCore
import GraftIO
import GraftMeta
import GraftTrain
@testable import GraftRecipe

private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

@Suite struct MetaRecipeTests {
    @Test func theShippedRecipesRead() throws {
        let sine = try MetaRecipe.load(path: "\(repository)/recipes/sine-maml.yaml")
        #expect(sine.tasks.source == .sinusoid && sine.meta.algorithm == .maml && sine.meta.innerSteps == 1)
        #expect(sine.meta.innerRate == 0.01 && sine.meta.metaBatch == 25 && sine.hidden == [40, 40])
        let glyphs = try MetaRecipe.load(path: "\(repository)/recipes/glyphs-protonet.yaml")
        #expect(glyphs.tasks.ways == 5 && glyphs.tasks.shots == 1 && glyphs.architecture == .conv4 && glyphs.meta.innerSteps == 0)
    }

    @Test func mistakesAreNamed() throws {
        let path = "\(repository)/recipes/sine-maml.yaml"
        func message(_ overrides: [String]) -> String { errorText { _ = try MetaRecipe.load(path: path, overrides: overrides) } }
        #expect(message(["meta.algorithm=magic"]).contains("meta.algorithm"))
        #expect(message(["model.architecture=conv4"]).contains("sinusoid tasks need mlp"))
        #expect(message(["meta.inner-lr=-1"]).contains("meta.inner-lr"))
        #expect(message(["tasks.ways=5"]).contains("tasks.ways: unknown field"))
        let glyphs = "\(repository)/recipes/glyphs-protonet.yaml"
        #expect(errorText { _ = try MetaRecipe.load(path: glyphs, overrides: ["tasks.test=0.9"]) }.contains("validation + test"))
        #expect(errorText { _ = try MetaRecipe.load(path: glyphs, overrides: ["meta.inner-steps=3"]) }.contains("meta.inner-steps: unknown field"))
    }

    @Test func theOuterRateIsConstantOrAnnealedLinearly() throws {
        let path = "\(repository)/recipes/sine-maml.yaml"
        let sets = ["meta.meta-steps=4", "meta.outer-lr=1"]
        let constant = try MetaRecipe.load(path: path, overrides: sets)
        #expect((0..<4).map { constant.meta.outerRate(at: $0) } == [1, 1, 1, 1])
        let linear = try MetaRecipe.load(path: path, overrides: sets + ["meta.outer-schedule=linear"])
        #expect((0..<4).map { linear.meta.outerRate(at: $0) } == [1, 0.75, 0.5, 0.25])
        #expect(errorText { _ = try MetaRecipe.load(path: path, overrides: ["meta.outer-schedule=cosine"]) }.contains("meta.outer-schedule"))
    }

    /// A two-way episode recipe over the blob CSV with `body` under `model`.
    private func bodyRecipe(csv: String, body: String, algorithm: String = "maml") throws -> String {
        try recipeFile("""
            seed: 2
            tasks:
              source: data
              data: {format: csv, path: \(csv)}
              ways: 2
              shots: 2
              queries: 3
              validation: 0
              test: 0.5
            meta:
              algorithm: \(algorithm)
              meta-batch: 2
              meta-steps: 3
              validate-every: 3
              validation-tasks: 2
            model:
              architecture: mlp
              hidden: [8]
              body: \(body)
            """)
    }

    @Test func aPretrainedBodyIsFrozenOrTrainsAtItsOwnRate() throws {
        let dir = try temporaryDirectory(), csv = try blobCSV()
        try RecipeRun(try Recipe.load(path: try recipeFile(blobRecipe(csv: csv, output: "\(dir)/body")), overrides: ["training.epochs=2"])).run()
        let pretrained = Dictionary(uniqueKeysWithValues: try TrainedRun("\(dir)/body").model.namedParameters())

        // Frozen: episodes over the body's 16 features, under a meta-learned 16 → 8 → 2 MLP.
        let frozen = try MetaSetup(try MetaRecipe.load(path: try bodyRecipe(csv: csv, body: "{run: \(dir)/body}")))
        #expect((frozen.model as? MetaMLP)?.sizes == [16, 8, 2] && frozen.bodyParameters == 0 && frozen.validation == nil)

        // Unfrozen: the body's layer starts the MLP; at outer rate 0 it stays as pretrained, at rate 1 it moves.
        for (scale, moves) in [(0.0, false), (1.0, true)] {
            let out = "\(dir)/meta-\(scale)"
            let recipe = try bodyRecipe(csv: csv, body: "{run: \(dir)/body, freeze: false, lr-scale: \(scale)}")
            try MetaRun(try MetaRecipe.load(path: recipe, overrides: ["output=\(out)"])).run()
            let after = Dictionary(uniqueKeysWithValues: try SafeTensorsFile(path: "\(out)/last/model.safetensors").tensors())
            #expect(after["layers.2.weight"]?.shape == [8, 16] && after["layers.4.weight"]?.shape == [2, 8])
            for name in ["layers.0.weight", "layers.0.bias"] {
                #expect((after[name]!.scalars == pretrained[name]!.scalars) == !moves, "\(name) at lr-scale \(scale)")
            }
            #expect(!FileManager.default.fileExists(atPath: "\(out)/best"))
        }
    }

    @Test func bodyMistakesAreNamed() throws {
        let dir = try temporaryDirectory(), csv = try blobCSV()
        func message(_ body: String, _ algorithm: String = "maml") -> String {
            errorText { _ = try MetaSetup(try MetaRecipe.load(path: try bodyRecipe(csv: csv, body: body, algorithm: algorithm))) }
        }
        #expect(message("{run: \(dir)/none, lr-scale: 0.1}").contains("model.body.lr-scale: applies to an unfrozen body"))
        #expect(message("{run: \(dir)/none}").contains("\(dir)/none"))
        #expect(message("{architecture: small-cnn}").contains("model.body.architecture: small-cnn needs square images"))
        let images = "\(dir)/images.csv"
        var lines: [String] = []
        for r in 0..<40 {
            let pixels: [String] = (0..<16).map { String(($0 + r) % 3) }
            lines.append((pixels + [String(r % 4)]).joined(separator: ","))
        }
        try lines.joined(separator: "\n").write(toFile: images, atomically: true, encoding: .utf8)
        let unfrozenCNN = try bodyRecipe(csv: images, body: "{architecture: small-cnn, freeze: false}")
        #expect(errorText { _ = try MetaSetup(try MetaRecipe.load(path: unfrozenCNN, overrides: ["tasks.data.image=[1, 4, 4]"])) }
            .contains("model.body.freeze: an unfrozen body must be an mlp"))
        #expect(message("{architecture: bert}").contains("model.body.weights: is required"))
        let glyphs = "\(repository)/recipes/glyphs-protonet.yaml"
        #expect(errorText { _ = try MetaRecipe.load(path: glyphs, overrides: ["model.body.run=x"]) }.contains("tasks.source data"))
        let sets = ["tasks.source=data", "tasks.data.format=csv", "tasks.data.path=\(csv)", "tasks.data.test=0.2", "model.architecture=mlp"]
        #expect(errorText { _ = try MetaRecipe.load(path: glyphs, overrides: sets) }.contains("tasks.data.test: meta-learning splits classes"))
        let augmented = ["tasks.source=data", "tasks.data.format=image-folder", "tasks.data.path=/x", "tasks.data.size=8",
                      "tasks.data.transforms={train: [horizontal-flip]}", "model.architecture=mlp"]
        #expect(errorText { _ = try MetaRecipe.load(path: glyphs, overrides: augmented) }
            .contains("tasks.data.transforms: random train transforms are not supported in meta-learning tasks"))
    }

    @Test func aStoppedRunResumesToTheSameMetaParameters() throws {
        let path = "\(repository)/recipes/sine-maml.yaml"
        let sets = ["meta.meta-steps=12", "meta.meta-batch=3", "meta.validate-every=4", "meta.validation-tasks=3"]
        let dir = try temporaryDirectory()
        try MetaRun(try MetaRecipe.load(path: path, overrides: sets + ["output=\(dir)/whole"])).run()
        let stopped = MetaRun(try MetaRecipe.load(path: path, overrides: sets + ["output=\(dir)/half"]))
        var steps = 0
        stopped.stopRequested = { steps += 1; return steps == 6 }
        #expect(throws: TrainingInterrupted.self) { try stopped.run() }
        #expect(try MetaCheckpoint.loadState(from: "\(dir)/half/last").metaStep == 6)
        try MetaRun(try MetaRecipe.load(path: path, overrides: sets + ["output=\(dir)/half"])).run(resume: "\(dir)/half")
        let a = try SafeTensorsFile(path: "\(dir)/whole/last/model.safetensors").tensors()
        let b = try SafeTensorsFile(path: "\(dir)/half/last/model.safetensors").tensors()
        #expect(a.map(\.0) == b.map(\.0) && !a.isEmpty)
        for ((name, x), (_, y)) in zip(a, b) { #expect(x.scalars == y.scalars, "\(name)") }
        // A changed recipe is refused.
        let changed = errorText {
            try MetaRun(try MetaRecipe.load(path: path, overrides: sets + ["meta.inner-lr=0.02"])).run(resume: "\(dir)/half")
        }
        #expect(changed.contains("meta.inner-lr=0.02"), "\(changed)")
    }

    @Test func tasksWhoseAdaptationDivergesAreCountedNotAveraged() throws {
        let dir = try temporaryDirectory()
        let sets = ["meta.meta-steps=2", "meta.meta-batch=2", "meta.validate-every=2", "meta.validation-tasks=2", "output=\(dir)/r"]
        try MetaRun(try MetaRecipe.load(path: "\(repository)/recipes/sine-maml.yaml", overrides: sets)).run()
        let wild = try MetaTest("\(dir)/r", overrides: ["meta.inner-lr=1e30"])
        let score = try #require(try wild.run(episodes: 4, steps: [3]).first).score
        #expect(score.diverged == 4 && wild.setup.figure(score) == "diverged on all 4 tasks")
        let plain = try MetaTest("\(dir)/r")
        let calm = try #require(try plain.run(episodes: 4, steps: [3]).first).score
        #expect(calm.diverged == 0 && calm.mean.isFinite && !plain.setup.figure(calm).contains("diverged"))
    }

    @Test func metaTestReportsAnIntervalOverTestTasks() throws {
        let dir = try temporaryDirectory()
        let sets = ["meta.meta-steps=4", "meta.meta-batch=2", "meta.validate-every=2", "meta.validation-tasks=2", "output=\(dir)/r"]
        try MetaRun(try MetaRecipe.load(path: "\(repository)/recipes/sine-maml.yaml", overrides: sets)).run()
        let test = try MetaTest("\(dir)/r", overrides: ["tasks.shots=5"])
        #expect(test.setup.recipe.tasks.shots == 5 && test.state.metaStep == 4)
        let rows = try test.run(episodes: 20, steps: [0, 3])
        #expect(rows.map(\.steps) == [0, 3] && rows.allSatisfy { $0.score.tasks == 20 && $0.score.interval > 0 && $0.score.mean > 0 })
    }
}
