import GraftCore
import GraftData
import GraftDistributed
import GraftNN

/// SimCLR's contrastive pre-training (Chen et al., 2020) as a training objective: every row of a step's global batch
/// is seen twice, through two random views; the body embeds each view, a projection MLP maps the features to z, and
/// the loss is NT-Xent over the 2N views of the whole global batch (`Tensor.ntXent`). Labels are not used.
///
/// Data-parallel: each rank embeds its rows' views, the z of every rank are gathered (`gatherRows`), and every rank
/// computes the same loss of the global batch. Its share is that loss, whose gradient reaches only the rank's own
/// slice of z (the gather's backward), so the gradients summed over ranks are the 1-rank gradient: every view's
/// negatives are those of the whole global batch, whatever the rank count. The views of a row are keyed on (seed,
/// epoch, row, view) by `views`, and so do not depend on the ranks either. Batch norm in the body sees both views
/// of the rank's rows in one pass; N ranks equal 1 only with its statistics synchronised over the global batch.
public final class ContrastivePretraining: StepObjective {
    /// A view of rows: (their stored inputs [n, …], their row indices, epoch, view) → model inputs. Views 0 and 1 of
    /// each epoch train; views 2 and 3 of epoch 0 are the fixed pair evaluation scores. It must depend on nothing
    /// else (never on the rank) and must take zero rows too.
    public typealias Views = (_ inputs: Tensor, _ rows: [Int], _ epoch: Int, _ view: Int) -> Tensor

    public let model: any BlockClassifier
    /// The projection head g (features → widths, ReLU between): trained with the body, then dropped.
    public let projection: MLP
    public let temperature: Float
    let views: Views
    /// The seed dropout in the body is keyed on, per view.
    let seed: UInt64
    let communicator: any Communicator

    public init(model: any BlockClassifier, projection widths: [Int], temperature: Float, views: @escaping Views,
                seed: UInt64, communicator: any Communicator, using rng: inout RandomGenerator) {
        require(!widths.isEmpty && widths.allSatisfy { $0 > 0 }, "ContrastivePretraining: projection widths \(widths)")
        require(temperature > 0 && temperature.isFinite, "ContrastivePretraining: temperature \(temperature)")
        (self.model, self.temperature, self.views, self.seed, self.communicator) = (model, temperature, views, seed, communicator)
        projection = MLP(sizes: [model.featureCount] + widths, using: &rng)
    }

    /// The width of z.
    public var embeddingWidth: Int { projection.layers.layers.compactMap { $0 as? Linear }.last!.weight.shape[0] }

    public func share(of batch: Batch, at position: StepPosition) throws -> ObjectiveShare {
        let z = embed(batch.inputs, rows: batch.rows, epoch: position.epoch, views: (0, 1))
        let loss = Tensor.ntXent(try communicator.gatherRows(z ?? .zeros([0, embeddingWidth])), temperature: temperature)
        let rows = batch.rows.count
        // Every rank holds the global loss: the report's Σ lossSum / Σ rows is that loss.
        return ObjectiveShare(loss: z == nil ? nil : loss, lossSum: Double(loss.item) * Double(rows), rows: rows)
    }

    /// NT-Xent of the fixed evaluation views of `batches`' rows, batch by batch over each global batch as in
    /// training, in inference mode. Its confusion matrix counts anchors whose most similar other view is their
    /// positive: [[retrieved, missed], [missed, retrieved]], so that its accuracy and macro-F1 are both the share
    /// retrieved. Every rank computes the same figures. `onBatch` is called before each batch.
    public func evaluate(_ batches: Batches, onBatch: (Int) -> Void = { _ in }) throws -> Evaluation {
        model.eval()
        projection.eval()
        let data = batches.inOrder
        let order = data.order(epoch: 0)
        var (lossSum, retrieved, anchors) = (0.0, 0, 0)
        try withNoGrad {
            for s in 0..<data.batchCount {
                onBatch(s)
                let batch = data.batch(order, step: s, rank: communicator.rank, of: communicator.size)
                let z = embed(batch.inputs, rows: batch.rows, epoch: 0, views: (2, 3))
                let all = try communicator.gatherRows(z ?? .zeros([0, embeddingWidth]))
                lossSum += Double(Tensor.ntXent(all, temperature: temperature).item) * Double(all.shape[0])
                retrieved += Tensor.positivesRetrieved(all)
                anchors += all.shape[0]
            }
        }
        let missed = anchors - retrieved
        return Evaluation(loss: anchors == 0 ? 0 : lossSum / Double(anchors),
                          confusion: ConfusionMatrix(classes: 2, counts: [retrieved, missed, missed, retrieved]))
    }

    /// z of the rows' two views, [2n, d], the views of row i at 2i and 2i + 1; nil without rows. Both views go
    /// through the body in one pass (batch norm normalises over both).
    func embed(_ inputs: Tensor, rows: [Int], epoch: Int, views pair: (Int, Int)) -> Tensor? {
        guard !rows.isEmpty else { return nil }
        let n = rows.count
        let both = Tensor.concat([views(inputs, rows, epoch, pair.0), views(inputs, rows, epoch, pair.1)], axis: 0)
        // Dropout keys per view: row r's views are keyed as rows 2r + v.
        let keys = rows.map { 2 * $0 + pair.0 % 2 } + rows.map { 2 * $0 + pair.1 % 2 }
        let z = withRowKeys(seed: seed, epoch: epoch, rows: keys) { projection(model.features(both)) }
        return z.indexSelect(axis: 0, Indices((0..<(2 * n)).map { $0 % 2 * n + $0 / 2 }, shape: [2 * n]))
    }
}
