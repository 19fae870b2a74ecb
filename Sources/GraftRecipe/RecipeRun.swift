import Foundation
import GraftCore
import GraftData
import GraftDistributed
import GraftIO
import GraftNN
import GraftOptim
import GraftTrain

/// Carries out a recipe on every rank of `communicator`: data, model, strategy, optimizer and schedule, training
/// with evaluation each epoch, checkpoints `last/` (every epoch) and `best/` (each improvement) under `output`, then
/// the best weights on the test rows. Rank 0 alone logs and writes; every rank computes.
public final class RecipeRun {
    public let recipe: Recipe
    public let communicator: any Communicator
    /// Where rank 0's progress lines go.
    public var log: (String) -> Void = { print($0) }
    /// Shows how far long passes are, on rank 0 (nil: nothing).
    public var progress: ProgressReporter?
    /// Asked after every training step; true on any rank stops every rank after that step, saves `last/` with the
    /// position inside the epoch, and `run` throws `TrainingInterrupted`.
    public var stopRequested: () -> Bool = { false }

    public init(_ recipe: Recipe, communicator: any Communicator = LocalCommunicator()) {
        self.recipe = recipe
        self.communicator = communicator
    }

    private func say(_ line: String) { if communicator.isRoot { log(line) } }

    /// Trains; `resume` continues the run in that directory from its `last/` checkpoint.
    @discardableResult
    public func run(overwrite: Bool = false, resume: String? = nil) throws -> RunResult {
        try inPrecision { try train(overwrite: overwrite, resume: resume) }
    }

    /// Runs `body` with matrix products in the recipe's precision, saying which when it is not fp32.
    func inPrecision<R>(_ body: () throws -> R) throws -> R {
        let precision = recipe.training.precision
        if precision == .bfloat16 {
            say(MatmulPrecision.hardware ? "matrix products in bf16 (AVX-512 BF16), weights and sums in fp32"
                : "matrix products in bf16, emulated: this CPU has no AVX-512 BF16 (same rounding, slower than fp32)")
        }
        return try withMatmulPrecision(precision, body)
    }

    private func train(overwrite: Bool, resume: String?) throws -> RunResult {
        let start = Date()
        let output = resume ?? recipe.output
        // A killed run's half-written checkpoints go first (rank 0 alone writes the directory; the others wait).
        if let output {
            try communicator.agree { if communicator.isRoot { try AtomicDirectory.removeLeftovers(in: output) } }
        }
        // Start-up may fail on one rank only (a file missing on one node); the ranks agree before any training
        // collective, so that none is left waiting.
        let setup = try communicator.agree { try prepare(output: output, overwrite: overwrite, resume: resume) }
        let (data, tuner, strategy, reason) = (setup.data, setup.tuner, setup.strategy, setup.reason)
        let trainer = tuner.trainer
        trainer.stopRequested = stopRequested
        if communicator.isRoot { trainer.progress = progress }
        let t = recipe.training
        let headGroup = tuner.blockNames.count - 1
        // A resumed run continues its own directory; a new one takes over `output` at its first checkpoint.
        var started = resume != nil
        var epochStart = Date()
        trainer.onEpochStart.append { _ in epochStart = Date() }
        trainer.onEpochEnd.append { [unowned self] report in
            let seconds = Date().timeIntervalSince(epochStart)
            say(String(format: "epoch %3d  train loss %.4f  %@ loss %.4f  acc %5.1f%%  F1 %.3f  lr %.2e  %5.1f s%@",
                       report.epoch + 1, report.trainLoss, data.validation == nil ? "fit" : "val", report.evaluation.loss,
                       100 * report.evaluation.accuracy, report.evaluation.macroF1,
                       report.learningRates[headGroup], seconds, report.improved ? "  *" : "")
                + (report.skippedSteps > 0 ? "  (\(report.skippedSteps) steps skipped: non-finite gradient)" : "")
                + (setup.objective.map(adaptationSummary) ?? "") + (setup.tasks?.summary(report.evaluation) ?? "")
                + (try setup.distillation.map(distillationSummary) ?? ""))
            guard let output, communicator.isRoot else { return .proceed }
            if !started { try startOutput(output); started = true }
            var metrics = EpochMetrics(report)
            metrics.seconds = seconds
            metrics.tasks = setup.tasks?.metrics(report.evaluation)
            try appendLine(try jsonText(metrics, pretty: false), to: "\(output)/metrics.jsonl")
            try writeCurves(in: output, validation: data.validation != nil)
            var state = CheckpointState(trainer: trainer, strategyEpoch: tuner.strategyEpoch,
                                        recipe: recipe.fields.map { "\($0.path)=\($0.value)" }, report: report,
                                        overrides: recipe.overrides, classes: data.classNames, inputShape: data.inputShape)
            state.tasks = setup.tasks?.state
            try Checkpoint.save(trainer, state: state, to: "\(output)/last")
            if report.improved { try Checkpoint.save(trainer, state: state, to: "\(output)/best") }
            return .proceed
        }

        let remaining = t.epochs - min(tuner.strategyEpoch, t.epochs)
        var reports: [EpochReport] = []
        if remaining > 0 {
            trainer.configuration.epochs = remaining
            do {
                reports = try tuner.fit(setup.batches(data.train, true), validation: data.validation.map { setup.batches($0, false) })
            } catch let interruption as TrainingInterrupted {
                // Every rank stopped after the same step; rank 0 keeps the position for --resume.
                try communicator.agree {
                    guard let output, communicator.isRoot else { return }
                    if !started { try startOutput(output) }
                    var state = CheckpointState(trainer: trainer, strategyEpoch: tuner.strategyEpoch,
                                                recipe: recipe.fields.map { "\($0.path)=\($0.value)" }, report: nil,
                                                overrides: recipe.overrides, classes: data.classNames, inputShape: data.inputShape)
                    state.pseudoLabels = setup.objective?.pseudoLabelState
                    state.tasks = setup.tasks?.state
                    try Checkpoint.save(trainer, state: state, to: "\(output)/last")
                }
                say("\(interruption)" + (output.map { "; wrote \($0)/last, continue with --resume \($0)" }
                    ?? "; nothing saved (the recipe has no output)"))
                throw interruption
            }
        }
        // The best epoch is chosen on validation rows; without them the last weights stand.
        var weightsEpoch = trainer.epochCount - 1
        if data.validation != nil, recipe.adaptation?.selection != .lastEpoch, let best = trainer.bestEpoch {
            trainer.restoreBest()
            weightsEpoch = best
        }
        let test = try data.test.map { try trainer.evaluate(setup.batches($0, false)) }
        if let test, setup.tasks != nil {
            taskTestLines(test, epoch: weightsEpoch).forEach(say)
        } else if let test, recipe.contrastive != nil {
            say(String(format: "test (weights of epoch %d): NT-Xent %.4f  positives retrieved %.2f%%", weightsEpoch + 1,
                       test.loss, 100 * test.accuracy))
        } else if let test {
            say(String(format: "test (weights of epoch %d): loss %.4f  accuracy %.2f%%  macro-F1 %.4f",
                       weightsEpoch + 1, test.loss, 100 * test.accuracy, test.macroF1))
            for (c, name) in data.classNames.enumerated() {
                say(String(format: "  %-16@ precision %.3f  recall %.3f  F1 %.3f", name, test.confusion.precision(c),
                           test.confusion.recall(c), test.confusion.f1(c)))
            }
        }
        var targetTest: Evaluation?
        if let a = recipe.adaptation, let rows = a.method == .targetOnly ? data.test : setup.target?.test {
            targetTest = try trainer.evaluate(setup.batches(rows, false))
            say(String(format: "target test (%@, weights of epoch %d by %@): loss %.4f  accuracy %.2f%%  macro-F1 %.4f",
                       a.method.rawValue, weightsEpoch + 1, a.selection.rawValue, targetTest!.loss,
                       100 * targetTest!.accuracy, targetTest!.macroF1))
        }
        let result = RunResult(strategy: strategy, reason: reason, reports: reports, bestEpoch: trainer.bestEpoch,
                               testedEpoch: weightsEpoch, test: test, targetTest: targetTest,
                               trainableParameters: trainer.optimizer.groups.filter { !$0.frozen }
                                   .flatMap(\.parameters).filter { $0.1.requiresGrad }.map { $0.1.count }.reduce(0, +),
                               trainingRows: data.train.count)
        if let output {
            // Rank 0 writes; the others learn whether it could.
            try communicator.agree {
                guard communicator.isRoot else { return }
                if recipe.adapters != nil {
                    // The tested weights with each adapter folded in, under the model's plain names.
                    let merged = tuner.model.mergedStateDict()
                    try AtomicDirectory.write("\(output)/merged") { dir in
                        try SafeTensors.write(merged, to: "\(dir)/model.safetensors", metadata: ["format": "pt"])
                    }
                }
                // A contrastive run has no classes to report: its confusion matrix counts retrieved positives.
                try writeResults(result, classNames: recipe.contrastive == nil ? data.classNames : [], tasks: setup.tasks?.layout,
                                 seconds: Date().timeIntervalSince(start), to: output)
            }
            say("wrote \(output)/best, \(output)/last, \(recipe.adapters != nil ? "merged/model.safetensors (adapters folded in), " : "")"
                + "metrics.jsonl, results.json")
        }
        return result
    }

    /// What training needs, made on every rank.
    private struct Setup {
        let data: RecipeData
        /// Domain adaptation: the target domain's rows, and the objective that uses them.
        let target: RecipeData?
        let objective: DomainAdaptation?
        /// Multi-task training: the tasks' objective.
        let tasks: MultiTaskObjective?
        let distillation: Distillation?
        let tuner: FineTuner
        let strategy: FineTuningStrategy
        let reason: String?
        let batches: (LabelledRows, Bool) -> Batches
    }

    /// Data, model, output directory (rank 0), strategy and trainer; with `resume`, the checkpoint's state.
    private func prepare(output: String?, overwrite: Bool, resume: String?) throws -> Setup {
        if recipe.continual != nil {
            throw RecipeError(file: recipe.file, line: nil, field: "continual", "a sequence of tasks: run it with graft continual")
        }
        var saved: CheckpointState?
        if let resume {
            saved = try Checkpoint.loadState(from: "\(resume)/last")
            try checkResumable(saved!, directory: resume)
        } else if let output, communicator.isRoot {
            try checkOutput(output, overwrite: overwrite)
        }
        var rng = RandomGenerator(seed: recipe.seed)
        let tokenizer = try recipe.model.tokenizer(vocabulary: recipe.data.vocabulary)
        if recipe.data.format == .textFolder && tokenizer == nil {
            throw RecipeError(file: recipe.file, line: nil, field: "model.architecture", "text data needs a bert model")
        }
        // An MLP takes each row as one vector: image rows are flattened (contrastive views, after their transforms).
        let flat = recipe.model.architecture == .mlp && recipe.contrastive == nil
        func load(_ spec: Recipe.DataSpec) throws -> RecipeData {
            let data = try RecipeData.load(spec, seed: recipe.seed, tokenizer: tokenizer)
            return flat && data.inputShape.count > 1 ? data.flattened() : data
        }
        var data = try load(recipe.data)
        data.notes.forEach(say)
        var target: RecipeData?
        if let a = recipe.adaptation {
            let targetData = try load(a.target)
            targetData.notes.forEach(say)
            guard targetData.classNames == data.classNames else {
                throw RecipeError(file: recipe.file, line: nil, field: "adaptation.target.path", "\(a.target.path) has classes "
                    + "\(targetData.classNames.joined(separator: ", ")), the source \(data.classNames.joined(separator: ", "))")
            }
            guard targetData.inputShape == data.inputShape else {
                throw RecipeError(file: recipe.file, line: nil, field: "adaptation.target", "target rows are \(targetData.inputShape), "
                    + "source rows \(data.inputShape); give both the same shape (resize: for images)")
            }
            say("source: \(recipe.data.path): \(data.train.count) training, \(data.validation?.count ?? 0) validation rows")
            say("target: \(a.target.path): \(targetData.train.count) \(a.method == .targetOnly ? "labelled training" : "unlabelled")"
                + ", \(targetData.validation?.count ?? 0) validation, \(targetData.test?.count ?? 0) test rows (labels for the report only)")
            if a.method == .targetOnly { data = targetData } else { target = targetData }
            if a.labelledPerClass > 0 {
                let picked = targetData.train.subset(limited(targetData.train.labels, a.labelledPerClass, seed: recipe.seed))
                data = data.addingTrainingRows(picked)
                say("adaptation: \(picked.count) labelled target rows (at most \(a.labelledPerClass) per class) join the source's training rows")
            }
        }
        say("data: \(data.train.count) training, \(data.validation?.count ?? 0) validation, \(data.test?.count ?? 0) test rows; "
            + "\(data.classNames.count) classes (\(data.classNames.joined(separator: ", ")))")

        let layout = try recipe.tasks?.layout(classNames: data.classNames)
        let flatViews = recipe.contrastive != nil && recipe.model.architecture == .mlp
        let (model, modelLine) = try recipe.model.build(classes: layout?.width ?? data.classNames.count,
                                                        inputShape: flatViews ? [data.inputShape.reduce(1, *)] : data.inputShape,
                                                        padId: tokenizer?.padId ?? 0, using: &rng)
        say("model: \(modelLine)")
        if let adapters = recipe.adapters { say("adapters: " + (try adapters.apply(to: model, using: &rng))) }
        let (strategy, reason) = recipe.strategy.resolve(rows: data.train.count)
        say("strategy: \(strategy)")
        if let reason { say("  auto: \(reason)") }

        let t = recipe.training
        let ranks = communicator.size
        // Batch norm normalises each rank's rows by their own statistics: it needs two of them per step, and a short
        // last batch would leave a rank with fewer.
        let batchNorms = model.namedModules().compactMap { $0.1 as? BatchNorm }
        let synchronised = t.syncBatchNorm && ranks > 1
        // Per-rank batch norm needs two rows per rank per step; synchronised, one row per rank is enough, but every
        // rank must take part in every step's statistics.
        let perRank = synchronised ? 1 : 2
        if !batchNorms.isEmpty && t.batchSize / ranks < perRank {
            throw RecipeError(file: recipe.file, line: nil, field: "training.batch-size",
                              "\(t.batchSize) rows over \(ranks) rank\(ranks == 1 ? "" : "s") leaves a rank fewer than \(perRank) "
                                  + "row\(perRank == 1 ? "" : "s") per step, which batch norm cannot normalise; use a batch size of at least \(perRank * ranks)")
        }
        if recipe.contrastive != nil && !batchNorms.isEmpty && ranks > 1 && !synchronised {
            throw RecipeError(file: recipe.file, line: nil, field: "training.sync-batch-norm", "contrastive pre-training on "
                + "several ranks needs batch norm over the global batch's views (SimCLR's global batch norm) to equal 1 rank: set it to true")
        }
        if synchronised {
            for bn in batchNorms { bn.sumAcrossRanks = { [communicator] in communicator.differentiableSum($0) } }
        }
        if !batchNorms.isEmpty && ranks > 1 {
            say(synchronised ? "batch norm: statistics over the global batch (synchronised across ranks)"
                : "batch norm: statistics over each rank's rows; running statistics taken from rank 0 before each evaluation and checkpoint")
        }
        let hasBatchNorm = !batchNorms.isEmpty
        let dropLast = hasBatchNorm && data.train.count % t.batchSize != 0
        // Training rows (the shuffled ones) go through a random train pipeline at batch time.
        let augment = data.trainTransform(seed: recipe.seed)
        let batches = { (rows: LabelledRows, shuffle: Bool) in
            Batches(inputs: rows.inputs, labels: rows.labels, batchSize: t.batchSize, shuffle: shuffle, seed: self.recipe.seed,
                    dropLast: shuffle && dropLast, transform: shuffle ? augment : nil)
        }
        if data.trainAugmentation != nil && strategy.stages.contains(where: \.cached) {
            throw RecipeError(file: recipe.file, line: nil, field: "strategy", "the train transforms are random, so the body's "
                + "features change every epoch and cannot be cached: set the strategy's cached (or cached-head) to false")
        }
        if ranks > 1 {
            let share = Batches.share(t.batchSize, rank: ranks - 1, of: ranks).count
            say("data-parallel: \(ranks) ranks, global batch \(t.batchSize) (\(share)\(t.batchSize % ranks == 0 ? "" : "–\(share + 1)") rows per rank)")
        }
        if dropLast {
            say("batch norm: the last \(data.train.count % t.batchSize) rows of each epoch's shuffled order (a short batch) are left out")
        }

        var configuration = t.trainerConfiguration
        let stepsPerEpoch = batches(data.train, true).batchCount
        if stepsPerEpoch == 0 {
            throw RecipeError(file: recipe.file, line: nil, field: "training.batch-size", "\(t.batchSize) is more than the "
                + "\(data.train.count) training rows, and batch norm leaves a short batch out, so no step would train; use a "
                + "batch size of at most \(data.train.count)")
        }
        let steps = t.epochs * ((stepsPerEpoch + t.accumulationSteps - 1) / t.accumulationSteps)
        var plateau: ReduceOnPlateau?
        if let (kind, options) = recipe.schedule {
            do {
                switch try kind.make(options, totalSteps: steps) {
                case let .perStep(s): configuration.schedule = s
                case let .plateau(p): plateau = p
                }
            } catch { throw RecipeError(file: recipe.file, line: nil, field: "schedule", "\(error)") }
        }
        let kind = recipe.optimizer.kind
        let smoothing = t.labelSmoothing
        let loss: (Tensor, [Int]) -> Tensor = { Tensor.crossEntropy($0, targets: $1, labelSmoothing: smoothing) }
        var objective: DomainAdaptation?
        if let a = recipe.adaptation, let method = a.objective, let target {
            if strategy.stages.contains(where: \.cached) {
                throw RecipeError(file: recipe.file, line: nil, field: "strategy", "\(a.method.rawValue) adapts the body's "
                    + "features in every step, so they cannot be cached: set the strategy's cached (or cached-head) to false")
            }
            let targetBatches = Batches(inputs: target.train.inputs, labels: [Int](repeating: 0, count: target.train.count),
                                        batchSize: a.targetBatchSize ?? t.batchSize, shuffle: true, seed: recipe.seed)
            objective = DomainAdaptation(method: method, model: model, target: targetBatches, weight: a.weight,
                                         schedule: a.schedule, totalSteps: steps, domainHidden: a.domainHidden,
                                         communicator: communicator, loss: loss, using: &rng)
            say("adaptation: \(a.method.rawValue), weight \(a.weight) (\(a.schedule.rawValue) schedule), target batch "
                + "\(targetBatches.batchSize); weights chosen by \(a.selection.rawValue)")
        } else if let a = recipe.adaptation {
            say("adaptation: \(a.method.rawValue) baseline; weights chosen by \(a.selection.rawValue)")
        }
        let tasks = try recipe.tasks.map { try multiTaskObjective($0, layout: layout!, loss: loss) }
        let distillation = try recipe.distillation.map {
            try $0.objective(recipe: recipe, strategy: strategy, student: model, data: data, tokenizer: tokenizer, loss: loss,
                             communicator: communicator, using: &rng)
        }
        if let line = distillation?.1 { say(line) }
        let contrastive = recipe.contrastive.map {
            $0.objective(model: model, seed: recipe.seed, flatten: flatViews, communicator: communicator, using: &rng)
        }
        if let c = recipe.contrastive {
            say("contrastive: NT-Xent at temperature \(c.temperature) over the global batch's \(2 * t.batchSize) views, projection "
                + "\(([model.featureCount] + c.projection).map(String.init).joined(separator: " → ")) (dropped after training); labels unused")
        }
        // Modules trained beside the model, each an optimizer group of its own and saved under its name.
        let beside: [(String, Module?)] = [("domain_classifier", objective?.domainClassifier),
                                           (MultiTaskObjective.auxiliaryName, tasks?.logVariances),
                                           ("distill_projection", distillation?.0.projection),
                                           ("projection", contrastive?.projection)]
        let tuner: FineTuner
        do {
            tuner = try FineTuner(model: model, strategy: strategy, configuration: configuration,
                                  base: recipe.optimizer.options, communicator: communicator,
                                  auxiliaries: beside.compactMap { name, module in module.map { (name, $0) } },
                                  makeOptimizer: { try kind.make($0) })
        } catch let error as AdapterStrategyError {
            throw RecipeError(file: recipe.file, line: nil, field: "strategy", "\(error)")
        }
        if recipe.adapters != nil {
            let adapters = model.loraLayers().flatMap(\.1.adapterParameters).map(\.count).reduce(0, +)
            let head = model.blocks.last!.1.parameterCount(), total = model.parameterCount()
            say("trainable: \(grouped(adapters)) adapter + \(grouped(head)) head parameters of \(grouped(total)) "
                + String(format: "(%.2f %%)", 100 * Double(adapters + head) / Double(total))
                + "; checkpoints hold these (adapters.safetensors), the frozen base is read from model.weights")
        }
        tuner.trainer.objective = objective.map { $0 as any StepObjective } ?? distillation?.0
        if let r = recipe.regularization {
            // Anchored now, at the pretrained weights as loaded: before a resumed run's checkpoint replaces them.
            tuner.trainer.penalty = r.penalty(for: model)
            say("regularization: l2-sp, α = \(r.body) towards the pretrained body, β = \(r.head) towards 0 for the head")
        }
        if let tasks { use(tasks, in: tuner.trainer) }
        if let contrastive {
            tuner.trainer.objective = contrastive
            tuner.trainer.evaluator = contrastive.evaluate
        }
        let trainer = tuner.trainer
        trainer.plateau = plateau
        if t.labelSmoothing > 0 { trainer.loss = loss }
        say("optimizer: \(kind.rawValue), \(steps) steps of \(t.batchSize)"
            + (t.accumulationSteps > 1 ? " × \(t.accumulationSteps) accumulated" : "")
            + (recipe.schedule.map { ", schedule \($0.kind.rawValue)" } ?? ""))

        if let resume, let saved {
            try Checkpoint.loadModel(trainer.model, from: "\(resume)/last")
            try Checkpoint.loadOptimizer(trainer.optimizer, from: "\(resume)/last")
            let bestFrom = try bestCheckpoint(of: saved, in: resume)
            let best = try bestFrom.map { try Checkpoint.loadWeights(from: $0, over: trainer.model) }
            try trainer.restore(saved, bestWeights: best)
            if bestFrom == "\(resume)/last" && communicator.isRoot {
                // Killed between writing last/ and best/ of its best epoch: best/ gets that epoch now.
                try Checkpoint.save(trainer, state: saved, to: "\(resume)/best")
            }
            tuner.resume(strategyEpoch: saved.strategyEpoch, stopping: saved.stopping)
            if saved.epochPosition != nil, let labels = saved.pseudoLabels { try objective?.restore(labels) }
            if let state = saved.tasks { try tasks?.restore(state) }
            if communicator.isRoot { try keepMetrics(in: resume, before: saved.epoch) }
            say("resumed \(resume) after epoch \(saved.epoch)"
                + (saved.epochPosition.map { " and step \($0.step) of epoch \(saved.epoch + 1)" } ?? "") + " (step \(saved.step) in all)"
                + (saved.ranks == ranks ? "" : "; written by \(saved.ranks) rank\(saved.ranks == 1 ? "" : "s"), now \(ranks): "
                    + "batches split differently, so results match an uninterrupted run within float tolerance, not bit for bit"))
        } else if let output, communicator.isRoot {
            // Only now that data and weights have loaded is `output` made; an earlier run in it goes at the first
            // checkpoint.
            try prepareOutput(output)
        }
        if output == nil { say("output: none, so nothing is saved (set output: in the recipe, or pass --output)") }
        return Setup(data: data, target: target, objective: objective, tasks: tasks, distillation: distillation?.0, tuner: tuner,
                     strategy: strategy, reason: reason,
                     batches: batches)
    }
}

/// 73728 as "73,728".
func grouped(_ n: Int) -> String {
    var text = String(n.magnitude), out = ""
    while text.count > 3 {
        out = "," + text.suffix(3) + out
        text.removeLast(3)
    }
    return (n < 0 ? "-" : "") + text + out
}

extension Recipe.TrainingSpec {
    /// The trainer's settings from `training:`.
    var trainerConfiguration: Trainer.Configuration {
        var c = Trainer.Configuration(epochs: epochs)
        c.accumulationSteps = accumulationSteps
        c.clipGradientNorm = clipGradientNorm
        c.monitor = monitor == "loss" ? .loss : monitor == "accuracy" ? .accuracy : .macroF1
        c.patience = patience
        c.minDelta = minDelta
        c.trainFrozenBatchNorm = trainFrozenBatchNorm
        c.checkReplicasEvery = checkReplicasEvery
        c.bucketBytes = bucketBytes
        c.onNonFinite = onNonFinite
        c.stepTimeout = stepTimeout
        return c
    }
}
