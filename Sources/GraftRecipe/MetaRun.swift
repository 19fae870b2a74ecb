import Foundation
import GraftCore
import GraftData
import GraftDistributed
import GraftIO
import GraftMeta
import GraftNN
import GraftOptim
import GraftTrain

/// Meta-training as a recipe says, on every rank of `communicator`: each meta-step's tasks are split over the ranks,
/// each rank sums its tasks' meta-gradients (or Reptile deltas), the sums are reduced, rank 0 applies the outer step
/// and broadcasts the new meta-parameters. Tasks depend on (seed, meta-step, task index) only, so any number of ranks
/// computes what one process would. Rank 0 logs, validates on held-out tasks and writes `last/` and `best/`.
public final class MetaRun {
    public let recipe: MetaRecipe
    public let communicator: any Communicator
    public var log: (String) -> Void = { print($0) }
    public var progress: ProgressReporter?
    /// Asked after every meta-step; true on any rank stops every rank there, saves `last/` and throws
    /// `TrainingInterrupted`.
    public var stopRequested: () -> Bool = { false }

    public init(_ recipe: MetaRecipe, communicator: any Communicator = LocalCommunicator()) {
        (self.recipe, self.communicator) = (recipe, communicator)
    }

    private func say(_ line: String) { if communicator.isRoot { log(line) } }

    /// Meta-trains; `resume` continues the run in that directory from its `last/`.
    public func run(overwrite: Bool = false, resume: String? = nil) throws {
        let output = resume ?? recipe.output
        let setup = try communicator.agree { try MetaSetup(recipe, progress: communicator.isRoot ? progress : nil, cachedIn: resume) }
        let model = setup.model, loop = recipe.meta
        let state = MetaCheckpoint.State(recipe: recipe, communicator: communicator)
        var metaState = state
        let outer = loop.algorithm == .reptile ? nil
            : try OuterStep.adam(model, learningRate: loop.outerRate, body: setup.bodyParameters, bodyScale: setup.bodyRateScale)
        try communicator.agree {
            if let resume {
                metaState = try MetaCheckpoint.load(from: "\(resume)/last", into: model, optimizer: outer?.optimizer, recipe: recipe)
            } else if let output, communicator.isRoot {
                let existing = ((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []).filter { $0 != "recipe.yaml" }
                if !existing.isEmpty && !overwrite {
                    throw RecipeError(file: recipe.file, line: nil, field: "output", "\(output) already holds a run; choose another "
                                      + "output, pass --overwrite, or --resume \(output)")
                }
                try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
                try AtomicDirectory.writeFile(String(decoding: try readRegularFile(recipe.file), as: UTF8.self),
                                              named: "recipe.yaml", in: output)
                if let (features, key) = setup.bodyFeatures { try BodyFeatureCache.save(features, key: key, in: output) }
            }
        }
        try communicator.broadcast(model.parameterTensors)
        setup.notes.forEach(say)
        say("meta: \(loop.algorithm.rawValue), \(loop.metaSteps) meta-steps of \(loop.metaBatch) tasks"
            + (loop.innerSteps > 0 ? ", \(loop.innerSteps) inner step\(loop.innerSteps == 1 ? "" : "s") at \(loop.innerRate)" : "")
            + (communicator.size > 1 ? "; \(communicator.size) ranks share each meta-batch" : "")
            + (resume.map { "; resumed \($0) after meta-step \(metaState.metaStep)" } ?? ""))
        let mine = Batches.share(loop.metaBatch, rank: communicator.rank, of: communicator.size)
        let kind: ContributionKind = loop.algorithm == .reptile ? .delta : .gradient
        var (lossSum, steps) = (0.0, 0)
        var started = Date()
        progress?.begin("meta-training", total: loop.metaSteps, unit: "steps")
        for step in metaState.metaStep..<loop.metaSteps {
            var update = MetaUpdate(model, kind: kind)
            for index in mine { update.add(setup.learner.contribution(model, task: setup.train.task(metaStep: step, index: index))) }
            var packed = update.packed
            try communicator.allReduce(&packed)
            update.unpack(packed)
            if communicator.isRoot {
                let rate = loop.outerRate(at: step)
                if let outer {
                    let groups = outer.optimizer.groups.count
                    for g in 0..<groups { try outer.optimizer.setLearningRate(g < groups - 1 ? rate * setup.bodyRateScale : rate, group: g) }
                    outer.apply(update)
                } else {
                    OuterStep.reptile(model, update, stepSize: rate, body: setup.bodyParameters, bodyScale: setup.bodyRateScale)
                }
            }
            try communicator.broadcast(model.parameterTensors)
            (lossSum, steps) = (lossSum + Double(update.meanLoss), steps + 1)
            metaState.metaStep = step + 1
            progress?.advance(to: step + 1)
            let stop = try communicator.allReduce(Int64(stopRequested() ? 1 : 0), op: .max) > 0
            guard stop || (step + 1) % loop.validateEvery == 0 || step + 1 == loop.metaSteps else { continue }
            progress?.end()
            // Without meta-validation classes (tasks.validation 0) there is no best/, only last/.
            let validation = try setup.validation.map {
                try setup.score($0, tasks: loop.validationTasks, steps: loop.testInnerSteps, communicator: communicator)
            }
            let improved = validation.map { metaState.improves($0, higherIsBetter: setup.classification) } ?? false
            say(String(format: "meta-step %6d  train loss %.4f  %@%5.1f s%@", step + 1, lossSum / Double(max(steps, 1)),
                       validation.map { "val \(setup.describe($0))  " } ?? "", Date().timeIntervalSince(started), improved ? "  *" : ""))
            (lossSum, steps, started) = (0, 0, Date())
            if improved, let validation { metaState.best = .init(value: validation.mean, metaStep: step + 1) }
            if let output {
                try communicator.agree {
                    guard communicator.isRoot else { return }
                    try MetaCheckpoint.save(model, optimizer: outer?.optimizer, state: metaState, to: "\(output)/last")
                    if improved { try MetaCheckpoint.save(model, optimizer: outer?.optimizer, state: metaState, to: "\(output)/best") }
                }
            }
            if stop {
                say("stopped after meta-step \(step + 1)" + (output.map { "; wrote \($0)/last, continue with --resume \($0)" } ?? ""))
                throw TrainingInterrupted(epoch: 0, step: step + 1, steps: loop.metaSteps)
            }
            progress?.begin("meta-training", total: loop.metaSteps, unit: "steps")
        }
        progress?.end()
        if let output { say("wrote " + (setup.validation == nil ? "" : "\(output)/best, ") + "\(output)/last") }
    }
}

/// Meta-testing a run: its recipe, its best meta-parameters, the held-out tasks.
public struct MetaTest {
    public let setup: MetaSetup
    public let state: MetaCheckpoint.State

    /// `overrides` change the test tasks (`tasks.shots=5`, say); what shapes the model cannot change.
    public init(_ directory: String, overrides: [String] = [], progress: ProgressReporter? = nil) throws {
        let best = FileManager.default.fileExists(atPath: "\(directory)/best/state.json") ? "\(directory)/best" : "\(directory)/last"
        let saved = try MetaCheckpoint.loadState(from: best)
        let trained = try MetaRecipe.load(path: "\(directory)/recipe.yaml", overrides: saved.overrides)
        let recipe = try MetaRecipe.load(path: "\(directory)/recipe.yaml", overrides: saved.overrides + overrides)
        setup = try MetaSetup(recipe, progress: progress, cachedIn: directory)
        state = try MetaCheckpoint.load(from: best, into: setup.model, optimizer: nil, recipe: trained)
    }

    /// The mean score over `episodes` test tasks after each of `steps` adaptation steps (prototypes need none).
    public func run(episodes: Int, steps: [Int], communicator: any Communicator = LocalCommunicator()) throws -> [(steps: Int, score: MetaScore)] {
        try steps.map { ($0, try setup.score(setup.test, tasks: episodes, steps: $0, communicator: communicator)) }
    }
}

/// Mean and 95 % confidence half-width (1.96 σ / √n) of a per-task figure: accuracy, or the query MSE / loss. Tasks
/// whose figure is not finite (adaptation diverged) are counted in `diverged` and left out of the mean.
public struct MetaScore: Sendable {
    public let mean: Double, interval: Double, tasks: Int
    public var diverged = 0
}

/// Tasks, model and learner made from a recipe, the same on every rank.
public struct MetaSetup {
    public let recipe: MetaRecipe
    public let model: any MetaModel
    public let learner: any MetaLearner
    /// Validation is nil when no classes are held out for it (`tasks.validation: 0`).
    public let train: TaskSource, validation: TaskSource?, test: TaskSource
    public let classification: Bool
    public let notes: [String]
    /// A frozen body's features of every row and what they depend on, for `BodyFeatureCache`.
    public let bodyFeatures: (features: Tensor, key: String)?
    /// The leading meta-parameters that came from an unfrozen pretrained body, and their outer-rate scale.
    public let bodyParameters: Int, bodyRateScale: Float

    /// Where a split's tasks come from.
    public enum TaskSource {
        case sinusoid(SinusoidTasks)
        case episodes(EpisodeSampler, inputs: Tensor)

        public func task(metaStep: Int, index: Int) -> MetaTask {
            switch self {
            case let .sinusoid(tasks): tasks.task(metaStep: metaStep, index: index).task
            case let .episodes(sampler, inputs): sampler.task(metaStep: metaStep, index: index).task(inputs: inputs)
            }
        }
    }

    /// `progress` shows the pass of a frozen body over the rows; `cachedIn` is a run directory whose saved body
    /// features are used when they were made by the same data and body.
    public init(_ recipe: MetaRecipe, progress: ProgressReporter? = nil, cachedIn: String? = nil) throws {
        self.recipe = recipe
        var cacheable: (features: Tensor, key: String)?
        let t = recipe.tasks, loop = recipe.meta
        var rng = RandomGenerator(seed: recipe.seed)
        var notes: [String] = []
        var inputs: Tensor?, labels: [Int], split: ClassSplit?
        var body: PretrainedBody?
        var (bodyParameters, bodyRateScale) = (0, Float(1))
        switch t.source {
        case .sinusoid:
            (inputs, labels, split) = (nil, [], nil)
            notes.append("tasks: sinusoids A sin(x − φ), A ∈ [0.1, 5], φ ∈ [0, π], x ∈ [−5, 5]; \(t.shots) support and \(t.queries) query points")
        case .glyphs:
            let glyphs = try GlyphSet(charactersPerScript: t.charactersPerScript, side: t.side, seed: recipe.seed)
            let scripts = ClassSplit(classes: Array(glyphs.scripts.indices), validation: t.validation, test: t.test, seed: recipe.seed)
            let byScript = glyphs.classesByScript
            split = ClassSplit(train: scripts.train.flatMap { byScript[$0] }, validation: scripts.validation.flatMap { byScript[$0] },
                               test: scripts.test.flatMap { byScript[$0] })
            let rendered = glyphs.images(classes: Array(glyphs.classes.indices), samplesPerClass: t.samplesPerClass)
            (inputs, labels) = (rendered.images, rendered.labels)
            notes.append("tasks: rendered glyphs (not handwriting) of \(glyphs.scripts.count) scripts, \(glyphs.classes.count) characters × "
                         + "\(t.samplesPerClass) samples at \(t.side)×\(t.side); scripts split \(scripts.train.count) / "
                         + "\(scripts.validation.count) / \(scripts.test.count) for meta-training, validation and test")
        case .data:
            var spec = t.data!
            (spec.validation, spec.test) = (0, 0)
            var data: RecipeData
            if let bodySpec = recipe.body {
                let loaded: PretrainedBody
                (loaded, data) = try PretrainedBody.load(spec, body: bodySpec, recipe: recipe)
                notes.append(loaded.source)
                if bodySpec.freeze {
                    let key = BodyFeatureCache.key(recipe)
                    let cached = BodyFeatureCache.load(from: cachedIn, key: key, rows: data.train.count)
                    let features = try cached ?? FeatureCache.features(of: loaded.model, inputs: data.train.inputs, progress: progress)
                    data = data.replacingTrainingInputs(features)
                    cacheable = (features, key)
                    notes.append("body frozen: tasks are episodes over its \(features.shape[1]) features, "
                                 + (cached == nil ? "computed once" : "read from \(cachedIn!)/\(BodyFeatureCache.file)"))
                } else {
                    body = loaded
                }
            } else {
                data = try RecipeData.load(spec, seed: recipe.seed, tokenizer: nil)
            }
            let rows = data.train
            (inputs, labels) = (rows.inputs, rows.labels)
            split = ClassSplit(labels: labels, validation: t.validation, test: t.test, seed: recipe.seed)
            notes.append("tasks: \(spec.path), \(labels.count) rows of \(Set(labels).count) classes, split \(split!.train.count) / "
                         + "\(split!.validation.count) / \(split!.test.count) for meta-training, validation and test")
            if data.classNames.count <= 20 {
                let names = { (classes: [Int]) in
                    classes.isEmpty ? "none" : classes.sorted().map { data.classNames[$0] }.joined(separator: ", ")
                }
                notes.append("classes: meta-training \(names(split!.train)); validation \(names(split!.validation)); test \(names(split!.test))")
            }
        }
        classification = t.source != .sinusoid
        if let split {
            for (name, classes) in [("meta-training", split.train), ("meta-validation", split.validation), ("meta-test", split.test)]
            where classes.count < t.ways && !(name == "meta-validation" && t.validation == 0) {
                throw RecipeError(file: recipe.file, line: nil, field: "tasks.ways", "\(t.ways)-way tasks need \(t.ways) \(name) "
                                  + "classes, the split leaves \(classes.count); lower tasks.ways or change tasks.validation/test")
            }
        }
        // An MLP takes each example as one vector.
        let flat = recipe.architecture == .mlp ? inputs.map { $0.reshaped([$0.shape[0], $0.count / max($0.shape[0], 1)]) } : inputs
        let width = flat.map { $0.shape.dropFirst().reduce(1, *) } ?? 1
        let outputs: Int? = loop.algorithm == .protonet ? nil : (classification ? t.ways : 1)
        switch recipe.architecture {
        case .mlp:
            if let body {
                let (mlp, tensors) = try body.metaMLP(then: recipe.hidden + (outputs.map { [$0] } ?? []), field: "model.body.freeze",
                                                      file: recipe.file, using: &rng)
                model = mlp
                (bodyParameters, bodyRateScale) = (tensors, recipe.body!.rateScale)
                notes.append("body unfrozen: its \(tensors / 2) layers start the meta-learned MLP \(mlp.sizes), outer rate × "
                             + "\(bodyRateScale)")
            } else {
                model = MetaMLP(sizes: [width] + recipe.hidden + (outputs.map { [$0] } ?? []), using: &rng)
            }
        case .conv4:
            guard let shape = inputs?.shape, shape.count == 4, shape[2] == shape[3] else {
                throw RecipeError(file: recipe.file, line: nil, field: "model.architecture", "conv4 needs square images [channels, side, side]")
            }
            model = Conv4(inputChannels: shape[1], filters: recipe.filters, imageSize: shape[2], outputs: outputs, using: &rng)
        }
        (self.bodyParameters, self.bodyRateScale, bodyFeatures) = (bodyParameters, bodyRateScale, cacheable)
        switch loop.algorithm {
        case .maml, .firstOrderMAML, .pretrain:
            learner = MAML(innerSteps: loop.innerSteps, innerRate: loop.innerRate, firstOrder: loop.algorithm == .firstOrderMAML)
        case .reptile: learner = Reptile(innerSteps: loop.innerSteps, innerRate: loop.innerRate)
        case .protonet: learner = PrototypicalNetworks()
        }
        func source(_ offset: UInt64, _ classes: [Int]?) -> TaskSource {
            guard let flat, let classes else { return .sinusoid(SinusoidTasks(shots: t.shots, queries: t.queries, seed: recipe.seed &+ offset)) }
            return .episodes(EpisodeSampler(labels: labels, classes: classes, ways: t.ways, shots: t.shots, queries: t.queries,
                                            seed: recipe.seed &+ offset), inputs: flat)
        }
        train = source(0, split?.train)
        validation = split?.validation.isEmpty == true ? nil : source(1, split?.validation)
        test = source(2, split?.test)
        notes.append("model: \(recipe.architecture.rawValue), \(model.parameterCount) meta-parameters")
        self.notes = notes
    }

    /// The mean query figure over `tasks` tasks of `source` after `steps` adaptation steps (accuracy for
    /// classification, loss otherwise), each rank taking a share of the tasks.
    public func score(_ source: TaskSource, tasks: Int, steps: Int, communicator: any Communicator) throws -> MetaScore {
        var sums = [0.0, 0.0, 0.0]
        for index in Batches.share(tasks, rank: communicator.rank, of: communicator.size) {
            let task = source.task(metaStep: 0, index: index)
            let result: TaskEvaluation
            switch learner {
            case let maml as MAML: result = maml.evaluate(model, task: task, steps: steps)
            case let reptile as Reptile: result = reptile.evaluate(model, task: task, steps: steps)
            default: result = learner.evaluate(model, task: task)
            }
            let value = Double(classification ? result.accuracy ?? 0 : result.loss)
            // A square that overflows counts as diverged too.
            guard value.isFinite && (value * value).isFinite else { sums[2] += 1; continue }
            sums[0] += value
            sums[1] += value * value
        }
        try communicator.allReduce(&sums)
        let diverged = Int(sums[2]), n = Double(tasks - diverged), mean = n > 0 ? sums[0] / n : .nan
        let variance = n > 1 ? max(0, (sums[1] - n * mean * mean) / (n - 1)) : 0
        return MetaScore(mean: mean, interval: 1.96 * variance.squareRoot() / n.squareRoot(), tasks: tasks, diverged: diverged)
    }

    /// "acc 97.3 % ± 0.4" or "MSE 0.512 ± 0.030", with the tasks that diverged.
    public func describe(_ s: MetaScore) -> String { (classification ? "acc " : "MSE ") + figure(s) }

    /// "97.30% ± 0.40" or "0.5120 ± 0.0300"; "(k of n tasks diverged, left out)" after it when some did.
    public func figure(_ s: MetaScore) -> String {
        guard s.diverged < s.tasks else { return "diverged on all \(s.tasks) tasks" }
        let figure = classification ? String(format: "%.2f%% ± %.2f", 100 * s.mean, 100 * s.interval)
            : String(format: "%.4f ± %.4f", s.mean, s.interval)
        return figure + (s.diverged > 0 ? " (\(s.diverged) of \(s.tasks) tasks diverged, left out)" : "")
    }
}

/// A meta-training checkpoint: `model.safetensors` (the meta-parameters), `optimizer.safetensors` (the outer
/// optimizer's state, absent for Reptile) and `state.json`.
public enum MetaCheckpoint {
    public struct State: Codable, Sendable {
        public struct Best: Codable, Sendable { public var value: Double; public var metaStep: Int }
        public var metaStep = 0
        public var best: Best?
        public var recipe: [String]
        public var overrides: [String]
        public var ranks: Int

        init(recipe: MetaRecipe, communicator: any Communicator) {
            (self.recipe, overrides, ranks) = (recipe.fields.map { "\($0.path)=\($0.value)" }, recipe.overrides, communicator.size)
        }

        func improves(_ score: MetaScore, higherIsBetter: Bool) -> Bool {
            guard score.mean.isFinite, score.diverged == 0 || best == nil else { return false }
            return best.map { higherIsBetter ? score.mean > $0.value : score.mean < $0.value } ?? true
        }
    }

    static func save(_ model: any MetaModel, optimizer: (any Optimizer)?, state: State, to directory: String) throws {
        let text = try jsonText(state)
        let slots = optimizer?.namedState()
        try AtomicDirectory.write(directory) { dir in
            try SafeTensors.write(model.parameters, to: "\(dir)/model.safetensors")
            if let slots { try SafeTensors.write(slots, to: "\(dir)/optimizer.safetensors") }
            try AtomicDirectory.writeFile(text, named: "state.json", in: dir)
        }
    }

    public static func loadState(from directory: String) throws -> State {
        let path = "\(directory)/state.json"
        do { return try JSONDecoder().decode(State.self, from: Data(try readRegularFile(path))) } catch {
            throw CheckpointError(path: path, "not a meta-training checkpoint: \(error)")
        }
    }

    /// Loads the meta-parameters (and the optimizer's state) into place; refuses a run of another recipe.
    static func load(from directory: String, into model: any MetaModel, optimizer: (any Optimizer)?, recipe: MetaRecipe) throws -> State {
        let state = try loadState(from: directory)
        let fields = recipe.fields.map { "\($0.path)=\($0.value)" }.filter { !$0.hasPrefix("output=") && !$0.hasPrefix("meta.meta-steps=") }
        let saved = state.recipe.filter { !$0.hasPrefix("output=") && !$0.hasPrefix("meta.meta-steps=") }
        if Set(fields) != Set(saved) {
            throw RecipeError(file: recipe.file, line: nil, field: "--resume", "the recipe differs from the one \(directory) was trained with: "
                              + Set(fields).symmetricDifference(saved).sorted().joined(separator: ", "))
        }
        let tensors = Dictionary(try SafeTensorsFile(path: "\(directory)/model.safetensors").tensors(), uniquingKeysWith: { a, _ in a })
        for (name, p) in model.parameters {
            guard let saved = tensors[name], saved.shape == p.shape else {
                throw CheckpointError(path: "\(directory)/model.safetensors", "tensor '\(name)' is missing or has another shape")
            }
            p.pointer.update(from: saved.pointer, count: p.count)
        }
        if let optimizer { try Checkpoint.loadOptimizer(optimizer, from: directory) }
        return state
    }
}
