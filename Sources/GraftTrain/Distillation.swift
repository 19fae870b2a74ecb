import GraftCore
import GraftData
import GraftDistributed
import GraftNN

/// Knowledge distillation as a training objective (Hinton et al., 2015): the student learns from the labels and from
/// a frozen teacher's softened class probabilities,
///
///     loss = α · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α) · CE(s, y) + w · MSE(P·f_s, f_t),
///
/// the KL averaged over rows (`Loss.distillation`, PyTorch's `kl_div(…, reduction="batchmean")`), and, optionally,
/// the student's pooled features `f_s` mapped by a learned linear projection `P` onto the teacher's `f_t`. Every term
/// is a mean over rows, so a rank's share is its rows' loss times rows / global rows, and N ranks train as one: each
/// rank runs the teacher on its own rows. The teacher stays in inference mode with its parameters frozen; it is no
/// part of the trained model, so nothing of it is summed over ranks or saved. The projection is trained: add it to
/// the trainer beside the model as an auxiliary module (its own parameter group, summed over ranks like the model's).
public final class Distillation: StepObjective {
    public let student: any BlockClassifier
    public let teacher: any BlockClassifier
    public let temperature: Float
    /// The weight of the soft term; the labels' cross-entropy has 1 − α.
    public let alpha: Float
    /// Feature distillation: the projection from the student's features to the teacher's, and the term's weight.
    public let projection: Linear?
    public let featureWeight: Float
    let loss: (Tensor, [Int]) -> Tensor
    let communicator: any Communicator
    /// The teacher's logits and features per training row, filled as rows are first seen; nil computes them every
    /// step. Valid only while a row's inputs do not change (no random train transforms), which the caller decides.
    private var cache: [Int: (logits: [Float], features: [Float])]?
    /// Rows of the current epoch and the sums of each term over them (this rank's), for the epoch's report.
    private var epochTerms = [0.0, 0.0, 0.0], epochRows = 0
    private var currentEpoch: Int?

    /// `featureWeight` > 0 makes a projection from the student's `featureCount` to the teacher's, initialised from
    /// `rng`; `loss` is the hard-label loss (cross-entropy, with label smoothing if the recipe asks).
    public init(student: any BlockClassifier, teacher: any BlockClassifier, temperature: Float, alpha: Float,
                featureWeight: Float = 0, cacheTeacher: Bool, communicator: any Communicator = LocalCommunicator(),
                loss: @escaping (Tensor, [Int]) -> Tensor = { Tensor.crossEntropy($0, targets: $1) },
                using rng: inout RandomGenerator) {
        require(temperature > 0 && temperature.isFinite && alpha >= 0 && alpha <= 1 && featureWeight >= 0 && featureWeight.isFinite,
                "Distillation: temperature \(temperature), alpha \(alpha), feature weight \(featureWeight)")
        (self.student, self.teacher, self.temperature, self.alpha) = (student, teacher, temperature, alpha)
        (self.featureWeight, self.loss, self.communicator) = (featureWeight, loss, communicator)
        projection = featureWeight > 0 ? Linear(student.featureCount, teacher.featureCount, using: &rng) : nil
        cache = cacheTeacher ? [:] : nil
        teacher.eval()
        for (_, p) in teacher.namedParameters() { p.requiresGrad = false }
    }

    public func share(of batch: Batch, at position: StepPosition) throws -> ObjectiveShare {
        if currentEpoch != position.epoch { (currentEpoch, epochTerms, epochRows) = (position.epoch, [0, 0, 0], 0) }
        let rows = batch.labels.count
        guard rows > 0 else { return ObjectiveShare(loss: nil, lossSum: 0, rows: 0) }
        let (teacherLogits, teacherFeatures) = teacherOutputs(batch)
        let features = student.features(batch.inputs)
        let terms = self.terms(studentFeatures: features, studentLogits: student.head(features), labels: batch.labels,
                               teacherLogits: teacherLogits, teacherFeatures: teacherFeatures)
        let total = terms.total
        for (k, term) in [terms.hard, terms.soft, terms.feature].enumerated() {
            epochTerms[k] += term.map { Double($0.item) * Double(rows) } ?? 0
        }
        epochRows += rows
        return ObjectiveShare(loss: total * (Float(rows) / Float(batch.globalCount)), lossSum: Double(total.item) * Double(rows),
                              rows: rows)
    }

    /// The loss of a batch and its terms (each a mean over the rows, unweighted; nil when its weight is 0).
    public func terms(studentFeatures: Tensor, studentLogits: Tensor, labels: [Int], teacherLogits: Tensor,
                      teacherFeatures: Tensor?) -> (total: Tensor, hard: Tensor?, soft: Tensor?, feature: Tensor?) {
        let hard = alpha < 1 ? loss(studentLogits, labels) : nil
        let soft = alpha > 0 ? Loss.distillation(student: studentLogits, teacher: teacherLogits, temperature: temperature) : nil
        let feature = projection.map { Loss.meanSquaredError($0(studentFeatures), teacherFeatures!) }
        // α < 1 or α > 0 holds, so at least one term is present.
        let weighted = [hard.map { $0 * (1 - alpha) }, soft.map { $0 * alpha }, feature.map { $0 * featureWeight }].compactMap { $0 }
        return (weighted.dropFirst().reduce(weighted[0], +), hard, soft, feature)
    }

    /// The mean of each term over the epoch's rows so far on every rank: cross-entropy, the T²-scaled KL, the
    /// feature MSE. A collective: every rank calls it at the same point.
    public func epochMeans() throws -> (hard: Double, soft: Double, feature: Double) {
        var sums = epochTerms + [Double(epochRows)]
        try communicator.allReduce(&sums)
        let n = max(sums[3], 1)
        return (sums[0] / n, sums[1] / n, sums[2] / n)
    }

    /// Whether the teacher's outputs are kept per training row.
    public var cachesTeacher: Bool { cache != nil }

    /// Rows whose teacher outputs are cached.
    public var cachedRows: Int { cache?.count ?? 0 }

    /// The teacher's logits [B, C] and (with feature distillation) pooled features [B, H] for the batch's rows, from
    /// the cache where it has them; computed without recording, in inference mode.
    private func teacherOutputs(_ batch: Batch) -> (Tensor, Tensor?) {
        let wantFeatures = projection != nil
        func run(_ inputs: Tensor) -> (Tensor, Tensor?) {
            withNoGrad {
                let features = teacher.features(inputs)
                return (teacher.head(features), wantFeatures ? features : nil)
            }
        }
        guard var cache else { return run(batch.inputs) }
        let missing = batch.rows.indices.filter { cache[batch.rows[$0]] == nil }
        if !missing.isEmpty {
            let picked = batch.inputs.indexSelect(axis: 0, Indices(missing, shape: [missing.count]))
            let (logits, features) = run(picked)
            let (c, h) = (logits.shape[1], features?.shape[1] ?? 0)
            let (l, f) = (logits.scalars, features?.scalars ?? [])
            for (i, k) in missing.enumerated() {
                cache[batch.rows[k]] = (Array(l[i * c..<(i + 1) * c]), Array(f[i * h..<(i + 1) * h]))
            }
            self.cache = cache
        }
        let entries = batch.rows.map { cache[$0]! }
        let logits = Tensor(entries.flatMap(\.logits), shape: [entries.count, entries[0].logits.count])
        let features = wantFeatures ? Tensor(entries.flatMap(\.features), shape: [entries.count, entries[0].features.count]) : nil
        return (logits, features)
    }
}
