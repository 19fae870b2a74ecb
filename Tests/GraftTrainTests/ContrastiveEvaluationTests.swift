import Testing
import GraftCore
import GraftData
import GraftDistributed
import GraftNN
@testable import GraftTrain

@Suite struct ContrastiveEvaluationTests {
    /// Evaluation marks each batch before it runs, as the trainer's watchdog and progress line need, and scores every
    /// row's two fixed views.
    @Test func marksEveryBatch() throws {
        var rng = RandomGenerator(seed: 1)
        let model = MLP(sizes: [4, 8, 3], using: &rng)
        let objective = ContrastivePretraining(model: model, projection: [4], temperature: 0.5,
                                               views: { inputs, _, _, view in inputs + Float(view) * 0.01 }, seed: 1,
                                               communicator: LocalCommunicator(), using: &rng)
        let data = Batches(inputs: Tensor.randomNormal([10, 4], using: &rng), labels: [Int](repeating: 0, count: 10),
                           batchSize: 4, seed: 2)
        var marked: [Int] = []
        let evaluation = try objective.evaluate(data) { marked.append($0) }
        #expect(marked == [0, 1, 2])
        // 10 rows give 20 anchors, each counted twice in the mirrored matrix.
        #expect(evaluation.confusion.total == 40)
    }
}
