import Foundation
import Testing
import GraftCore
import GraftData
import GraftDistributed
import GraftIO
import GraftNN
import GraftTrain
@testable import GraftRecipe

/// The blobs of `blobCSV` moved by `shift` in every feature and stretched by `scale`: the same classes in another
/// domain.
private func shiftedBlobCSV(rows: Int = 120, shift: Float, scale: Float) throws -> String {
    var rng = RandomGenerator(seed: 8)
    var lines: [String] = []
    for r in 0..<rows {
        let label = r % 4
        let x = (0..<6).map { d in ((d == label ? 5 : 0) + rng.nextNormal()) * scale + shift }
        lines.append((x.map { String($0) } + [String(label)]).joined(separator: ","))
    }
    let path = "\(try temporaryDirectory())/target.csv"
    try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

private func adaptationRecipe(source: String, target: String, output: String, method: String, extra: String = "") -> String {
    blobRecipe(csv: source, output: output, extra: """
    adaptation:
      method: \(method)
      target:
        format: csv
        path: \(target)
        validation: 0.1
        test: 0.4
    \(extra.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n"))
    """)
}

@Suite struct AdaptationTests {
    @Test func everyMethodTrainsAndReportsTheTargetTestRows() throws {
        let (source, target) = (try blobCSV(), try shiftedBlobCSV(shift: 1.5, scale: 1.3))
        for method in AdaptationSpec.Method.allCases.map(\.rawValue) {
            let output = "\(try temporaryDirectory())/\(method)"
            let recipe = try Recipe.load(path: try recipeFile(adaptationRecipe(source: source, target: target, output: output,
                                                                               method: method)))
            let run = RecipeRun(recipe)
            var lines: [String] = []
            run.log = { lines.append($0) }
            let result = try run.run()
            let targetTest = try #require(result.targetTest, "\(method)")
            #expect(targetTest.confusion.total == 48, "\(method): 40% of 120 target rows")
            #expect(lines.contains { $0.hasPrefix("target test (\(method)") }, "\(lines)")
            let results = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(output)/results.json")))
            let adaptation = try #require((results as? [String: Any])?["adaptation"] as? [String: Any])
            #expect(adaptation["method"] as? String == method && adaptation["selection"] as? String == "source-validation")
            let accuracy = (adaptation["target_test"] as? [String: Any])?["accuracy"] as? Double
            #expect(accuracy == targetTest.accuracy)
            if ["dann", "mmd", "coral", "pseudo-label"].contains(method) {
                #expect(lines.contains { $0.contains(method == "dann" ? "domain loss" : "adaptation ") }, "\(lines)")
            }
            if method == "dann" {
                // The domain classifier is trained and saved beside the model, under its own name.
                let saved = try SafeTensorsFile(path: "\(output)/last/model.safetensors").tensors().map(\.0)
                #expect(saved.contains("domain_classifier.layers.0.weight") && saved.contains("layers.0.weight"))
            }
        }
    }

    /// DANN with its domain classifier, pseudo-labelling with the labels its epoch started with.
    @Test(arguments: ["dann", "pseudo-label"])
    func aRunStoppedInsideAnEpochResumesBitIdentical(method: String) throws {
        // A target far enough off that the pseudo-labels still change within an epoch.
        let (source, target) = (try blobCSV(), try shiftedBlobCSV(shift: 3, scale: 2))
        let dir = try temporaryDirectory()
        let extra = method == "pseudo-label" ? "threshold: 0.4\nwarmup-epochs: 1" : ""
        let path = try recipeFile(adaptationRecipe(source: source, target: target, output: "\(dir)/whole", method: method,
                                                   extra: extra))
        let whole = try RecipeRun(Recipe.load(path: path)).run()
        // Stopped after the 15th step, inside the third epoch, as a signal would stop it.
        let stopped = RecipeRun(try Recipe.load(path: path, overrides: ["output=\(dir)/half"]))
        var steps = 0
        stopped.stopRequested = { steps += 1; return steps == 15 }
        #expect(throws: TrainingInterrupted.self) { try stopped.run() }
        if method == "pseudo-label" {
            let saved = try Checkpoint.loadState(from: "\(dir)/half/last").pseudoLabels
            #expect(saved?.epoch == 2 && saved?.labels.contains { $0 >= 0 } == true, "\(String(describing: saved))")
        }
        let resumed = try RecipeRun(Recipe.load(path: path, overrides: ["output=\(dir)/half"])).run(resume: "\(dir)/half")
        let a = try SafeTensorsFile(path: "\(dir)/whole/last/model.safetensors").tensors()
        let b = try SafeTensorsFile(path: "\(dir)/half/last/model.safetensors").tensors()
        #expect(a.map(\.0) == b.map(\.0))
        for ((name, x), (_, y)) in zip(a, b) { #expect(x.scalars == y.scalars, "\(name)") }
        #expect(resumed.targetTest?.accuracy == whole.targetTest?.accuracy)
    }

    @Test func aFewLabelledTargetRowsJoinTraining() throws {
        let (source, target) = (try blobCSV(), try shiftedBlobCSV(shift: 1.5, scale: 1.3))
        let path = try recipeFile(adaptationRecipe(source: source, target: target, output: "\(try temporaryDirectory())/r",
                                                   method: "coral", extra: "labelled-per-class: 2"))
        let run = RecipeRun(try Recipe.load(path: path))
        var lines: [String] = []
        run.log = { lines.append($0) }
        try run.run()
        #expect(lines.contains("adaptation: 8 labelled target rows (at most 2 per class) join the source's training rows"), "\(lines)")
        // 96 source training rows (160 less 20% validation and 20% test) and the 8 target rows.
        #expect(lines.contains { $0.hasPrefix("data: 104 training") }, "\(lines)")
        let baseline = errorText { _ = try Recipe.load(path: path, overrides: ["adaptation.method=target-only"]) }
        #expect(baseline.contains("adaptation.labelled-per-class: unknown field"), "\(baseline)")
    }

    @Test func mistakesAreNamed() throws {
        let (source, target) = (try blobCSV(), try shiftedBlobCSV(shift: 1.5, scale: 1.3))
        let path = try recipeFile(adaptationRecipe(source: source, target: target, output: "o", method: "mmd"))
        func message(_ overrides: [String]) -> String { errorText { _ = try Recipe.load(path: path, overrides: overrides) } }
        #expect(message(["adaptation.method=magic"]).contains("adaptation.method"))
        let other = message(["adaptation.threshold=0.5"])
        #expect(other.contains("adaptation.threshold: unknown field"), "\(other)")
        #expect(message(["adaptation.kernel-multipliers=[1, -2]"]).contains("adaptation.kernel-multipliers"))
        #expect(message(["data.validation=0"]).contains("adaptation.select: source-validation needs data.validation"))
        #expect(message(["adaptation.weight=-1"]).contains("adaptation.weight: must be ≥ 0"))
        #expect(message(["adaptation.target.resize=[8, 8]"]).contains("adaptation.target.resize: needs image"))

        func runMessage(_ overrides: [String]) -> String {
            errorText { _ = try RecipeRun(Recipe.load(path: path, overrides: overrides + ["output=\(try temporaryDirectory())/r"])).run() }
        }
        #expect(runMessage(["strategy={name: feature-extraction, lr: 0.01}"]).contains("cannot be cached"))
        let fewer = "\(try temporaryDirectory())/three-classes.csv"
        try String(contentsOfFile: target, encoding: .utf8).split(separator: "\n").filter { !$0.hasSuffix(",3") }
            .joined(separator: "\n").write(toFile: fewer, atomically: true, encoding: .utf8)
        let classes = runMessage(["adaptation.target.path=\(fewer)"])
        #expect(classes.contains("adaptation.target.path") && classes.contains("0, 1, 2, 3"), "\(classes)")
    }

    @Test func dannWeightScheduleRisesFromZero() throws {
        var rng = RandomGenerator(seed: 1)
        let model = MLP(sizes: [2, 3, 2], using: &rng)
        let target = Batches(inputs: .zeros([4, 2]), labels: [0, 0, 0, 0], batchSize: 2)
        let dann = DomainAdaptation(method: .dann, model: model, target: target, weight: 0.5, schedule: .dann, totalSteps: 100,
                                    communicator: LocalCommunicator(), using: &rng)
        #expect(dann.weight(atStep: 0) == 0)
        #expect(abs(dann.weight(atStep: 50) - 0.5 * Float(2 / (1 + exp(-5.0)) - 1)) < 1e-6)
        #expect(abs(dann.weight(atStep: 100) - 0.5 * Float(2 / (1 + exp(-10.0)) - 1)) < 1e-6)
        #expect(dann.domainClassifier?.featureCount == 100)
    }
}
