import Foundation
import GraftCore
import GraftData
import GraftDistributed
import GraftNN

/// Unsupervised domain adaptation as a training objective: every step takes a labelled source batch (the trainer's)
/// and an unlabelled target batch (this objective's), and adds to the source cross-entropy a term that pulls the
/// two domains' features together. Terms that span the batch (kernel sums, covariances) are computed over the
/// global batch, with the features of every rank gathered, so that N ranks compute what one would.
public final class DomainAdaptation: StepObjective {
    public enum Method: Sendable, Equatable {
        /// DANN (Ganin et al., 2016): a domain classifier on the features behind a gradient-reversal layer.
        case dann
        /// Multi-kernel MMD as in DAN (Long et al., 2015): Gaussian kernels of widths `multipliers` × a base width,
        /// the median heuristic over the batch's features when `bandwidth` is nil.
        case mmd(multipliers: [Float], bandwidth: Float?)
        /// Deep CORAL (Sun & Saenko, 2016).
        case coral
        /// Self-training: target rows the model labels with at least `threshold` confidence join training with
        /// those labels, decided afresh at the start of each epoch from `warmupEpochs` on.
        case pseudoLabel(threshold: Float, warmupEpochs: Int)
    }

    /// How the weight of the adaptation term grows: constant, or DANN's w · (2 / (1 + e^(−10p)) − 1) with p the
    /// fraction of training done, which keeps the noisy early term small.
    public enum WeightSchedule: String, Sendable, CaseIterable { case fixed, dann }

    public let method: Method
    public let model: any BlockClassifier
    /// The target rows (labels unused), in batches of their own, shuffled with the source's seed.
    public let target: Batches
    public let weight: Float
    public let schedule: WeightSchedule
    public let totalSteps: Int
    /// DANN's domain classifier, features → one logit (source 1, target 0); train it beside the model.
    public let domainClassifier: MLP?
    let communicator: any Communicator
    let loss: (Tensor, [Int]) -> Tensor
    /// Pseudo-labelling: each target row's label for the current epoch, when confident enough.
    private var pseudoLabels: [Int?] = []
    private var labelledEpoch: Int?
    /// Sums over the current epoch of the adaptation term and of the steps (and, for pseudo-labelling, rows labelled).
    private var epochTerm = 0.0, epochSteps = 0
    private var currentEpoch: Int?
    public private(set) var pseudoLabelled = 0

    public init(method: Method, model: any BlockClassifier, target: Batches, weight: Float, schedule: WeightSchedule,
                totalSteps: Int, domainHidden: [Int] = [100], communicator: any Communicator,
                loss: @escaping (Tensor, [Int]) -> Tensor = { Tensor.crossEntropy($0, targets: $1) },
                using rng: inout RandomGenerator) {
        require(weight >= 0 && weight.isFinite && totalSteps > 0 && target.count > 0,
                "DomainAdaptation: weight \(weight), \(totalSteps) steps, \(target.count) target rows")
        (self.method, self.model, self.target, self.weight, self.schedule) = (method, model, target, weight, schedule)
        (self.totalSteps, self.communicator, self.loss) = (totalSteps, communicator, loss)
        domainClassifier = method == .dann ? MLP(sizes: [model.featureCount] + domainHidden + [1], using: &rng) : nil
    }

    /// The weight of the adaptation term at a step.
    public func weight(atStep step: Int) -> Float {
        switch schedule {
        case .fixed: weight
        case .dann:
            weight * (2 / (1 + Float(Foundation.exp(-10 * Double(min(step, totalSteps)) / Double(totalSteps)))) - 1)
        }
    }

    public func share(of batch: Batch, at position: StepPosition) throws -> ObjectiveShare {
        if currentEpoch != position.epoch { (currentEpoch, epochTerm, epochSteps) = (position.epoch, 0, 0) }
        if case let .pseudoLabel(threshold, warmup) = method, labelledEpoch != position.epoch {
            try relabel(epoch: position.epoch, threshold: threshold, active: position.epoch >= warmup)
        }
        let lambda = weight(atStep: position.globalStep)
        let targetBatch = targetPart(at: position)
        let features = batch.labels.isEmpty ? nil : model.features(batch.inputs)
        let sourceLoss = features.map { loss(model.head($0), batch.labels) }
        var share = sourceLoss.map { $0 * (Float(batch.labels.count) / Float(batch.globalCount)) }
        func add(_ term: Tensor) { share = share.map { $0 + term } ?? term }
        let targetFeatures = targetBatch.inputs.shape[0] == 0 ? nil : targetKeyed(targetBatch) { model.features(targetBatch.inputs) }
        let width = model.featureCount
        switch method {
        case .dann:
            let classifier = domainClassifier!
            // The domain loss is a mean over the global batch's source and target rows.
            let rows = batch.labels.count + targetBatch.labels.count
            let global = batch.globalCount + targetBatch.globalCount
            var term = 0.0
            if rows > 0 {
                let joined = Tensor.concat([features, targetFeatures].compactMap { $0 }, axis: 0)
                let logits = classifier(joined.reversingGradient(scale: lambda))
                let domains = Tensor([Float](repeating: 1, count: batch.labels.count)
                                     + [Float](repeating: 0, count: targetBatch.labels.count), shape: [rows, 1])
                let domainLoss = Loss.binaryCrossEntropyWithLogits(logits, targets: domains) * (Float(rows) / Float(global))
                term = Double(domainLoss.item)
                add(domainLoss)
            }
            record(try communicator.allReduce(term))
        case let .mmd(multipliers, bandwidth):
            let source = try communicator.gatherRows(features ?? .zeros([0, width]))
            let targetAll = try communicator.gatherRows(targetFeatures ?? .zeros([0, width]))
            guard source.shape[0] > 0 && targetAll.shape[0] > 0 else { break }
            let base = bandwidth ?? Tensor.medianBandwidth(Tensor.concat([source, targetAll], axis: 0).detached())
            let term = Tensor.mmd(source: source, target: targetAll, bandwidths: multipliers.map { $0 * base })
            record(Double(term.item))
            add(term * lambda)
        case .coral:
            let source = try communicator.gatherRows(features ?? .zeros([0, width]))
            let targetAll = try communicator.gatherRows(targetFeatures ?? .zeros([0, width]))
            // A covariance needs two rows on each side (a last batch of one row has none).
            guard source.shape[0] >= 2 && targetAll.shape[0] >= 2 else { break }
            let term = Tensor.coralLoss(source: source, target: targetAll)
            record(Double(term.item))
            add(term * lambda)
        case .pseudoLabel:
            // Cross-entropy over the global batch's pseudo-labelled target rows.
            let chosen = targetBatch.rows.indices.filter { pseudoLabels[targetBatch.rows[$0]] != nil }
            let labelled = Int(try communicator.allReduce(Int64(chosen.count)))
            var term = 0.0
            if let targetFeatures, !chosen.isEmpty {
                let picked = targetFeatures.indexSelect(axis: 0, Indices(chosen, shape: [chosen.count]))
                let labels = chosen.map { pseudoLabels[targetBatch.rows[$0]]! }
                let part = loss(model.head(picked), labels) * (Float(chosen.count) / Float(labelled))
                term = Double(part.item)
                add(part * lambda)
            }
            record(try communicator.allReduce(term))
        }
        let rows = batch.labels.count
        return ObjectiveShare(loss: share, lossSum: sourceLoss.map { Double($0.item) * Double(rows) } ?? 0, rows: rows)
    }

    /// Pseudo-labels as a checkpoint keeps them: the epoch they were decided for, each target row's label or −1.
    public struct PseudoLabels: Codable, Sendable, Equatable {
        public var epoch: Int
        public var labels: [Int]
    }

    /// The current epoch's pseudo-labels, for a checkpoint taken inside the epoch (nil before any are decided).
    public var pseudoLabelState: PseudoLabels? {
        labelledEpoch.map { PseudoLabels(epoch: $0, labels: pseudoLabels.map { $0 ?? -1 }) }
    }

    /// Continues an epoch with the pseudo-labels it started with, as a run stopped inside it had them.
    public func restore(_ state: PseudoLabels) throws {
        guard state.labels.count == target.count, state.labels.allSatisfy({ $0 >= -1 }) else {
            throw CheckpointError(path: "state.json", "holds \(state.labels.count) pseudo-labels for \(target.count) target rows")
        }
        labelledEpoch = state.epoch
        pseudoLabels = state.labels.map { $0 < 0 ? nil : $0 }
        pseudoLabelled = pseudoLabels.count { $0 != nil }
    }

    /// The mean adaptation term over the epoch's steps so far (the domain classifier's loss for DANN).
    public var epochMeanTerm: Double { epochSteps == 0 ? 0 : epochTerm / Double(epochSteps) }

    private func record(_ term: Double) {
        epochTerm += term
        epochSteps += 1
    }

    /// This rank's part of the target batch of a step: target batches follow one another across epoch boundaries,
    /// the order reshuffled each time the target rows are used up.
    private func targetPart(at position: StepPosition) -> Batch {
        let index = position.globalStep
        let pass = index / target.batchCount
        return target.batch(target.order(epoch: pass), step: index % target.batchCount, rank: communicator.rank,
                            of: communicator.size)
    }

    /// Row keys for dropout on target rows, apart from the source rows' keys.
    private func targetKeyed<T>(_ batch: Batch, _ body: () -> T) -> T {
        withRowKeys(seed: target.seed ^ 0x7461_7267_6574, epoch: 0, rows: batch.rows, body)
    }

    /// Labels every target row the model is confident about, from the current weights in inference mode; each rank
    /// labels its share of the rows and the sums make every rank's copy.
    private func relabel(epoch: Int, threshold: Float, active: Bool) throws {
        labelledEpoch = epoch
        pseudoLabels = [Int?](repeating: nil, count: target.count)
        pseudoLabelled = 0
        guard active else { return }
        let part = Batches.share(target.count, rank: communicator.rank, of: communicator.size)
        var votes = [Float](repeating: 0, count: target.count * 2)  // (label + 1, confidence) per row
        let modes = model.namedModules().map { ($0.1, $0.1.isTraining) }
        model.eval()
        defer { for (module, training) in modes { module.isTraining = training } }
        withNoGrad {
            var start = part.lowerBound
            while start < part.upperBound {
                let end = min(start + 256, part.upperBound)
                let probabilities = model(target.inputs.slice(axis: 0, start..<end)).softmax(axis: 1)
                let classes = probabilities.shape[1]
                for i in 0..<(end - start) {
                    var best = 0
                    for c in 1..<classes where probabilities.pointer[i * classes + c] > probabilities.pointer[i * classes + best] { best = c }
                    votes[(start + i) * 2] = Float(best + 1)
                    votes[(start + i) * 2 + 1] = probabilities.pointer[i * classes + best]
                }
                start = end
            }
        }
        try communicator.allReduce(&votes)
        for row in 0..<target.count where votes[row * 2 + 1] >= threshold {
            pseudoLabels[row] = Int(votes[row * 2]) - 1
            pseudoLabelled += 1
        }
    }
}
