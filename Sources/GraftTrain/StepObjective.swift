import GraftCore
import GraftData

/// Where a training step is: its epoch, its index in the epoch, and the epoch's steps.
public struct StepPosition: Sendable {
    public var epoch: Int, step: Int, stepsPerEpoch: Int
    /// Steps before this one since the start of training.
    public var globalStep: Int { epoch * stepsPerEpoch + step }
}

/// A rank's share of one step's loss (see `StepObjective`).
public struct ObjectiveShare {
    /// Nil when this rank contributes nothing to the gradient.
    public var loss: Tensor?
    /// The reported training loss is Σ lossSum / Σ rows over steps and ranks.
    public var lossSum: Double
    public var rows: Int
    public init(loss: Tensor?, lossSum: Double, rows: Int) { (self.loss, self.lossSum, self.rows) = (loss, lossSum, rows) }
}

/// A training loss beyond one of logits and labels. Given this rank's part of a step's global batch (possibly
/// empty), it returns this rank's share of the loss of the whole global batch: the gradients of the shares, summed
/// over ranks, must be the gradient of that loss, so that N ranks train as one. It is called on every rank for every
/// step in the same order, and so may use collectives (to gather features of the whole batch, say).
public protocol StepObjective: AnyObject {
    func share(of batch: Batch, at position: StepPosition) throws -> ObjectiveShare
}
