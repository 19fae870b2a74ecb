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
