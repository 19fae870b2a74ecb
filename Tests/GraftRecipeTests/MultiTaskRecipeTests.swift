import Foundation
import Testing
import GraftCore
import GraftData
import GraftIO
import GraftNN
import GraftTrain
@testable import GraftRecipe

/// The blob classes and their parity as two tasks.
private func tasksRecipe(csv: String, output: String, weighting: String = "uniform", parity: String? = nil) -> String {
    blobRecipe(csv: csv, output: output, extra: """
    task-weighting: \(weighting)
    tasks:
      - name: class
        loss: cross-entropy
      - name: parity
        \(parity ?? "map: {0: even, 1: odd, 2: even, 3: odd}")
    """)
}

@Suite struct MultiTaskRecipeTests {
    @Test func readsTasksAndTheirWeighting() throws {
        let r = try Recipe.load(path: try recipeFile(tasksRecipe(csv: "/x.csv", output: "/tmp/o", weighting: "{method: dwa, temperature: 3}")))
        #expect(r.tasks?.tasks.map(\.name) == ["class", "parity"] && r.tasks?.weighting == .dwa(temperature: 3))
        let layout = try r.tasks!.layout(classNames: ["0", "1", "2", "3"])
        #expect(layout.tasks[1].classNames == ["even", "odd"] && layout.tasks[1].labelOf == [0, 1, 0, 1] && layout.width == 6)
        let groups = try Recipe.load(path: try recipeFile(tasksRecipe(csv: "/x.csv", output: "/tmp/o", parity: "groups: {low: [0, 1], high: [2, 3]}")))
        #expect(try groups.tasks!.layout(classNames: ["0", "1", "2", "3"]).tasks[1].labelOf == [0, 0, 1, 1])
        let fixed = try Recipe.load(path: try recipeFile(tasksRecipe(csv: "/x.csv", output: "/tmp/o", weighting: "fixed",
                                                                     parity: "weight: 0.25\n    map: {0: a, 1: b, 2: a, 3: b}")))
        #expect(fixed.tasks?.weighting == .fixed([1, 0.25]))
        #expect(try Recipe.load(path: try recipeFile(tasksRecipe(csv: "/x.csv", output: "/o", weighting: "uncertainty"))).tasks?.weighting == .uncertainty)
    }

    /// Each mistake names its file, line and field.
    @Test(arguments: [
        ("unknown", "parity", "map: {0: a, 1: b, 2: a, 3: b}\n    loss: hinge", ":29: tasks.1.loss: 'hinge' is not one of: cross-entropy"),
        ("unknown", "parity", "from: colour", ":28: tasks.1.from: 'colour' is not supported"),
        ("uniform", "parity", "weight: 2\n    map: {0: a, 1: b, 2: a, 3: b}", ":28: tasks.1.weight: is read only with task-weighting: fixed"),
        ("uniform", "parity", "map: {0: a}\n    groups: {a: [1]}", "tasks.1.groups: give map or groups, not both"),
        ("uniform", "parity", "map: {0: a, 1: b, 2: a, 3: b}\n    colour: red", ":29: tasks.1.colour: unknown field"),
        ("{method: uniform, temperature: 2}", "parity", "map: {0: a, 1: b, 2: a, 3: b}", "task-weighting.temperature: is DWA's"),
        ("{method: dwa, temperature: 0}", "parity", "map: {0: a, 1: b, 2: a, 3: b}", "task-weighting.temperature: must be > 0"),
        ("softmax", "parity", "map: {0: a, 1: b, 2: a, 3: b}", "task-weighting: 'softmax' is not one of: uniform, fixed, uncertainty, dwa"),
        ("uniform", "class", "map: {0: a, 1: b, 2: a, 3: b}", "tasks.1.name: 'class' names two tasks"),
    ])
    func refusesBadTasks(weighting: String, name: String, fields: String, expected: String) throws {
        var text = tasksRecipe(csv: "/x.csv", output: "/o", weighting: weighting == "unknown" ? "uniform" : weighting, parity: fields)
        text = text.replacingOccurrences(of: "- name: parity", with: "- name: \(name)")
        let path = try recipeFile(text)
        let error = errorText { _ = try Recipe.load(path: path) }
        #expect(error.hasPrefix(path) && error.contains(expected), "\(error)")
    }

    @Test func refusesMappingsThatDoNotFitTheData() throws {
        for (parity, expected) in [("map: {0: a, 1: b, 2: a}", ":28: tasks.1.map: class '3' of the data is not mapped"),
                                   ("map: {0: a, 1: b, 2: a, 3: b, 7: a}", ":28: tasks.1.map: '7' is not a class of the data"),
                                   ("groups: {a: [0, 1, 2, 3]}", "tasks.1.groups: maps every class to 'a'"),
                                   ("groups: {a: [0, 1], b: [1, 2, 3]}", "tasks.1.groups: class '1' is mapped twice")] {
            let path = try recipeFile(tasksRecipe(csv: try blobCSV(), output: "\(try temporaryDirectory())/r", parity: parity))
            let error = errorText { try RecipeRun(try Recipe.load(path: path)).run() }
            #expect(error.hasPrefix(path) && error.contains(expected), "\(error)")
        }
        let single = try recipeFile(blobRecipe(csv: "/x.csv", output: "/o", extra: "tasks:\n  - name: only"))
        #expect(errorText { _ = try Recipe.load(path: single) }.contains("tasks: must be a list of at least two tasks"))
    }

    /// Uncertainty weighting trains its log-variances beside the model, saves them, and every output reports each task;
    /// the trained run evaluates every task again, with the figures the run reported.
    @Test func aMultiTaskRunReportsEveryTask() throws {
        let dir = try temporaryDirectory()
        let path = try recipeFile(tasksRecipe(csv: try blobCSV(), output: "\(dir)/run", weighting: "uncertainty"))
        let run = RecipeRun(try Recipe.load(path: path))
        var lines: [String] = []
        run.log = { lines.append($0) }
        let result = try run.run()
        let test = try #require(result.test)
        #expect(test.tasks.map(\.name) == ["class", "parity"])
        #expect(abs(test.accuracy - (test.tasks[0].evaluation.accuracy + test.tasks[1].evaluation.accuracy) / 2) < 1e-12)
        #expect(test.tasks[0].evaluation.confusion.classes == 4 && test.tasks[1].evaluation.confusion.classes == 2)
        #expect(lines.contains { $0.contains("task parity: loss") } && lines.contains { $0.hasPrefix("epoch   6") && $0.contains("parity") })
        let saved = try SafeTensorsFile(path: "\(dir)/run/last/model.safetensors").tensors()
        let logVariance = try #require(saved.first { $0.0 == "task_weighting.log_variance" }?.1)
        #expect(logVariance.shape == [2] && logVariance.scalars.allSatisfy { $0 != 0 })
        let metrics = try String(contentsOfFile: "\(dir)/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let last = try JSONDecoder().decode(EpochMetrics.self, from: Data(metrics.last!.utf8))
        #expect(last.tasks?.map(\.name) == ["class", "parity"] && last.tasks?.allSatisfy { $0.trainLoss != nil && $0.weight != nil } == true)
        let results = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/run/results.json"))) as? [String: Any]
        let tasks = (results?["test"] as? [String: Any])?["tasks"] as? [[String: Any]]
        #expect(tasks?.map { $0["task"] as? String } == ["class", "parity"])
        let best = (results?["best_evaluation"] as? [String: Any])?["tasks"] as? [[String: Any]]
        #expect(best?.map { $0["name"] as? String } == ["class", "parity"] && best?.allSatisfy { $0["accuracy"] is Double } == true)
        let trained = try TrainedRun("\(dir)/run")
        #expect(trained.tasks?.width == 6)
        let rows = try #require(try trained.recipeData().test)
        let again = try Evaluation.of(trained.model, forward: { trained.model($0) },
                                      on: Batches(inputs: rows.inputs, labels: rows.labels, batchSize: 64, shuffle: false),
                                      tasks: trained.tasks)
        #expect(again.tasks.map(\.evaluation.accuracy) == test.tasks.map(\.evaluation.accuracy))
    }

    /// DWA's epoch losses are part of a checkpoint: a run stopped inside an epoch continues with the same weights.
    @Test func aDWARunStoppedInsideAnEpochResumesBitIdentical() throws {
        let dir = try temporaryDirectory()
        let path = try recipeFile(tasksRecipe(csv: try blobCSV(), output: "\(dir)/whole", weighting: "dwa"))
        let whole = try RecipeRun(Recipe.load(path: path)).run()
        let stopped = RecipeRun(try Recipe.load(path: path, overrides: ["output=\(dir)/half"]))
        var steps = 0
        // 96 training rows in batches of 16: 6 steps an epoch, so inside the fourth, after DWA's weights moved.
        stopped.stopRequested = { steps += 1; return steps == 21 }
        #expect(throws: TrainingInterrupted.self) { try stopped.run() }
        let saved = try #require(try Checkpoint.loadState(from: "\(dir)/half/last").tasks)
        #expect(saved.history.count == 3 && saved.epoch == 3)
        let resumed = try RecipeRun(Recipe.load(path: path, overrides: ["output=\(dir)/half"])).run(resume: "\(dir)/half")
        let a = try SafeTensorsFile(path: "\(dir)/whole/last/model.safetensors").tensors()
        let b = try SafeTensorsFile(path: "\(dir)/half/last/model.safetensors").tensors()
        #expect(a.map(\.0) == b.map(\.0))
        for ((name, x), (_, y)) in zip(a, b) { #expect(x.scalars == y.scalars, "\(name)") }
        #expect(resumed.test?.tasks.map(\.evaluation.accuracy) == whole.test?.tasks.map(\.evaluation.accuracy))
    }
}
