import Testing
import GraftCore
@testable import GraftTrain

@Suite struct Metrics {
    // scikit-learn on y_true = [0,0,1,1,2,2,2], y_pred = [0,1,1,1,2,0,1]:
    // precision [0.5, 0.5, 1.0], recall [0.5, 1.0, 1/3], f1 [0.5, 2/3, 0.5], macro f1 = 0.5556, accuracy 4/7.
    @Test func confusionMatrixScores() {
        var m = ConfusionMatrix(classes: 3)
        m.add(predicted: [0, 1, 1, 1, 2, 0, 1], targets: [0, 0, 1, 1, 2, 2, 2])
        #expect(m[2, 1] == 1 && m[0, 0] == 1 && m.total == 7)
        #expect(abs(m.accuracy - 4.0 / 7) < 1e-12)
        #expect([0, 1, 2].map(m.precision) == [0.5, 0.5, 1.0])
        #expect(abs(m.recall(2) - 1.0 / 3) < 1e-12 && m.recall(1) == 1)
        #expect(abs(m.f1(1) - 2.0 / 3) < 1e-12 && abs(m.f1(2) - 0.5) < 1e-12)
        #expect(abs(m.macroF1 - (0.5 + 2.0 / 3 + 0.5) / 3) < 1e-12)
        var other = ConfusionMatrix(classes: 3)
        other.add(predicted: [2], targets: [2])
        #expect((m + other).total == 8 && (m + other)[2, 2] == 2)
    }

    @Test func emptyClassesScoreZero() {
        var m = ConfusionMatrix(classes: 3)
        m.add(predicted: [0, 0], targets: [0, 1])
        #expect(m.precision(2) == 0 && m.recall(2) == 0 && m.f1(2) == 0)
    }

    @Test func logitsAndTopK() {
        let logits = Tensor([0.1, 0.7, 0.2, 0.9, 0.05, 0.05, 0.3, 0.3, 0.4], shape: [3, 3])
        var m = ConfusionMatrix(classes: 3)
        m.add(logits: logits, targets: [1, 2, 0])
        #expect(m[1, 1] == 1 && m[2, 0] == 1 && m[0, 2] == 1)
        #expect(topKCorrect(logits, targets: [1, 2, 0], k: 1) == 1)
        #expect(topKCorrect(logits, targets: [1, 2, 0], k: 2) == 2)  // row 1: 0.05 vs 0.05, index 1 wins the tie
        #expect(topKCorrect(logits, targets: [1, 2, 0], k: 3) == 3)
    }
}
