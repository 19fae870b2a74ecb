import Foundation
import GraftCore
import GraftData
import GraftDistributed
import GraftNN
import GraftTrain

/// Knowledge distillation (`distillation:`): the recipe's model, the student, learns from the labels and from the
/// model of a finished `graft train` run, the teacher, which must have read the same data the same way (classes,
/// tokenizer, split) so that its outputs describe the student's rows. See `Distillation`.
public struct DistillationSpec {
    /// The teacher's run directory: its recipe builds the model, `best/` (or `last/`) holds the weights.
    public var teacher: String
    public var temperature: Float
    /// Weight of the soft term; the labels' cross-entropy has 1 − α.
    public var alpha: Float
    /// Weight of the feature term (pooled features through a learned projection); 0 leaves it out.
    public var featureWeight: Float = 0
    /// Keep the teacher's outputs per training row after the first epoch instead of running it every step.
    public var cacheTeacher: Bool
    var file: String
    var teacherLine: Int?

    init(_ f: inout Fields) throws {
        guard let teacher = try f.string("teacher"), !teacher.isEmpty else {
            throw f.error("teacher", "is required: the directory of a finished graft train run (its recipe and best/ checkpoint)")
        }
        self.teacher = teacher
        (file, teacherLine) = (f.file, f.line(of: "teacher"))
        let t = try f.double("temperature") ?? 4
        guard t > 0 && t <= 100 else { throw f.error("temperature", "must be in (0, 100], got \(t)") }
        temperature = Float(t)
        let a = try f.double("alpha") ?? 0.5
        guard a >= 0 && a <= 1 else { throw f.error("alpha", "must be in [0, 1], got \(a)") }
        alpha = Float(a)
        cacheTeacher = try f.bool("cache-teacher") ?? true
        if f.has("features") {
            var features = try f.section("features")
            guard let w = try features.double("weight") else { throw features.error("weight", "is required: the feature term's weight (> 0)") }
            guard w > 0 else { throw features.error("weight", "must be > 0, got \(w); leave features out for none") }
            featureWeight = Float(w)
            try features.finish()
        } else {
            _ = f.node("features")
        }
        if alpha == 0 && featureWeight == 0 {
            throw f.error("alpha", "0 with no features term leaves the teacher unused; train without a distillation section instead")
        }
    }

    /// Refuses what distillation cannot go with; called once the rest of the recipe is read.
    func check(adaptation: AdaptationSpec?, adapters: AdapterSpec?) throws {
        let error = { (field: String, problem: String) in RecipeError(file: file, line: teacherLine, field: field, problem) }
        if adaptation != nil { throw error("distillation", "distillation with domain adaptation is not supported") }
        if adapters != nil && featureWeight > 0 {
            throw error("distillation.features", "the feature projection trains beside the model, which adapters do not support; leave features out")
        }
    }

    /// The teacher run loaded and checked against the student's recipe and data, and the objective that uses it.
    func objective(recipe: Recipe, strategy: FineTuningStrategy, student: any BlockClassifier, data: RecipeData,
                   tokenizer: WordPieceTokenizer?, loss: @escaping (Tensor, [Int]) -> Tensor, communicator: any Communicator,
                   using rng: inout RandomGenerator) throws -> (Distillation, String) {
        if strategy.stages.contains(where: \.cached) {
            throw RecipeError(file: file, line: nil, field: "strategy", "distillation runs the student's body in every step, so its "
                + "features cannot be cached: set the strategy's cached (or cached-head) to false")
        }
        let problem = { (text: String) in RecipeError(file: file, line: teacherLine, field: "distillation.teacher", text) }
        guard FileManager.default.fileExists(atPath: "\(teacher)/recipe.yaml") else {
            throw problem("\(teacher) is not a graft train run directory (no recipe.yaml): train the teacher first")
        }
        let run: TrainedRun
        do { run = try TrainedRun(teacher) } catch { throw problem("cannot load the teacher run \(teacher): \(error)") }
        guard run.classNames == data.classNames else {
            throw problem("\(teacher) was trained on classes \(run.classNames.joined(separator: ", ")), the data has "
                + "\(data.classNames.joined(separator: ", "))")
        }
        guard run.inputShape == data.inputShape else {
            throw problem("\(teacher) takes rows of \(run.inputShape), the data's are \(data.inputShape)")
        }
        guard run.tokenizer?.vocabulary == tokenizer?.vocabulary else {
            throw problem("\(teacher)'s tokenizer (vocabulary of \(run.tokenizer?.vocabulary.count ?? 0) words) differs from the "
                + "student's (\(tokenizer?.vocabulary.count ?? 0) words): the teacher would read other tokens")
        }
        try checkSameRows(teacher: run.recipe, student: recipe, problem: problem)
        let distillation = Distillation(student: student, teacher: run.model, temperature: temperature, alpha: alpha,
                                        featureWeight: featureWeight, cacheTeacher: cacheTeacher && data.trainAugmentation == nil,
                                        communicator: communicator, loss: loss, using: &rng)
        let line = "distillation: teacher \(run.checkpoint) (\(run.model.parameterCount()) parameters), T \(temperature), α \(alpha)"
            + (featureWeight > 0 ? ", features through a \(student.featureCount)→\(run.model.featureCount) projection, weight \(featureWeight)" : "")
            + (distillation.cachesTeacher ? "; the teacher's outputs are kept per training row after their first step" : "")
        return (distillation, line)
    }

    /// The teacher must have read the same file the same way and split it alike: otherwise its training rows may be
    /// the student's validation or test rows, and the comparison would flatter the student.
    private func checkSameRows(teacher: Recipe, student: Recipe, problem: (String) -> RecipeError) throws {
        let (t, s) = (teacher.data, student.data)
        func resolved(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path }
        let pairs: [(String, String, String)] = [
            ("data.format", t.format.rawValue, s.format.rawValue),
            ("data.path", resolved(t.path), resolved(s.path)),
            ("data.max-tokens", "\(t.maxTokens)", "\(s.maxTokens)"),
            ("data.validation", "\(t.validation)", "\(s.validation)"),
            ("data.test", "\(t.test)", "\(s.test)"),
            ("data.limit-per-class", t.limitPerClass.map(String.init) ?? "none", s.limitPerClass.map(String.init) ?? "none"),
            ("the split seed (data.split-seed, else seed)", "\(t.splitSeed ?? teacher.seed)", "\(s.splitSeed ?? student.seed)"),
        ]
        for (field, theirs, ours) in pairs where theirs != ours {
            throw problem("\(self.teacher) was trained with \(field) \(theirs), this recipe has \(ours): the teacher must read and split "
                + "the data as the student does")
        }
    }
}

/// The epoch's distillation terms for the progress line (a collective: every rank calls it).
func distillationSummary(_ objective: Distillation) throws -> String {
    let means = try objective.epochMeans()
    return String(format: "  CE %.4f  KD %.4f", means.hard, means.soft)
        + (objective.projection == nil ? "" : String(format: "  feature MSE %.4f", means.feature))
}
