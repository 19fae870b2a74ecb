import GraftCore

/// Prototypical networks (Snell, Swersky and Zemel, 2017): each class's prototype is the mean embedding of its
/// support rows, a query's logits are minus its squared Euclidean distances to the prototypes, and the loss is
/// their cross-entropy. There is no inner loop; the meta-gradient is ordinary backpropagation through the embedding.
///
/// The support and query rows are embedded as one batch (support first), so with a batch-statistics model such as
/// `Conv4` both share one set of normalisation statistics, as in the reference implementation.
public struct PrototypicalNetworks: MetaLearner {
    public init() {}

    /// The mean of the rows of `embeddings` [rows, D] with each label in 0..<ways: [ways, D]. Every class must have a
    /// row. Differentiable: it is a product with the constant averaging matrix.
    public static func prototypes(_ embeddings: Tensor, labels: [Int], ways: Int) -> Tensor {
        require(embeddings.rank == 2 && embeddings.shape[0] == labels.count,
                "prototypes: embeddings \(embeddings.shape) do not have one row per label (\(labels.count) labels)")
        var counts = [Int](repeating: 0, count: ways)
        for l in labels {
            require(l >= 0 && l < ways, "prototypes: label \(l) outside 0..<\(ways)")
            counts[l] += 1
        }
        require(!counts.contains(0), "prototypes: class \(counts.firstIndex(of: 0) ?? -1) has no support row")
        var average = [Float](repeating: 0, count: ways * labels.count)
        for (row, l) in labels.enumerated() { average[l * labels.count + row] = 1 / Float(counts[l]) }
        return Tensor(average, shape: [ways, labels.count]).matmul(embeddings)
    }

    /// −‖q − p‖² for every query row q of `queries` [Q, D] and prototype p of `prototypes` [N, D]: [Q, N].
    /// Expanded as 2 q·p − ‖q‖² − ‖p‖², so no [Q, N, D] difference tensor is formed.
    public static func logits(_ queries: Tensor, prototypes: Tensor) -> Tensor {
        require(queries.rank == 2 && prototypes.rank == 2 && queries.shape[1] == prototypes.shape[1],
                "prototype logits: queries \(queries.shape) and prototypes \(prototypes.shape) must be [Q, D] and [N, D]")
        let cross = Tensor.gemm(queries, prototypes, transB: true)
        let qq = (queries * queries).sum(axes: [1], keepDims: true), pp = (prototypes * prototypes).sum(axes: [1]).unsqueezed(0)
        return cross * 2 - qq - pp
    }

    /// The query logits [Q, ways] of a task under the model's parameters `parameters` (θ by default).
    public func queryLogits(_ model: any MetaModel, task: MetaTask, parameters: [Tensor]? = nil) -> Tensor {
        guard case let .classes(labels) = task.supportTargets else {
            fatalError("PrototypicalNetworks: tasks must have class targets")
        }
        let ways = (labels.max() ?? -1) + 1
        let s = task.supportInputs.shape[0], q = task.queryInputs.shape[0]
        let embeddings = model(task.allInputs, parameters: parameters ?? model.parameterTensors).flattened(from: 1)
        let parts = embeddings.split([s, q], axis: 0)
        return Self.logits(parts[1], prototypes: Self.prototypes(parts[0], labels: labels, ways: ways))
    }

    /// The query cross-entropy and its gradient with respect to θ.
    public func contribution(_ model: any MetaModel, task: MetaTask) -> TaskResult {
        withGrad {
            let theta = trainableParameters(model, op: "PrototypicalNetworks")
            let logits = queryLogits(model, task: task, parameters: theta)
            let loss = task.queryTargets.loss(logits)
            return TaskResult(loss: loss.item, accuracy: task.queryTargets.accuracy(logits), kind: .gradient,
                              contribution: grad(of: loss, wrt: theta))
        }
    }

    /// The query cross-entropy and accuracy with prototypes from the support set.
    public func evaluate(_ model: any MetaModel, task: MetaTask) -> TaskEvaluation {
        withNoGrad {
            let logits = queryLogits(model, task: task)
            return TaskEvaluation(loss: task.queryTargets.loss(logits).item, accuracy: task.queryTargets.accuracy(logits))
        }
    }
}
