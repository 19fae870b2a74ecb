import Testing
@testable import GraftCore

@Suite struct ArithmeticGradients {
    @Test(arguments: [([3, 4], [3, 4]), ([2, 3, 4], [4]), ([2, 1, 4], [3, 1]), ([5], [])])
    func binaryOps(shapes: ([Int], [Int])) {
        let a = sample(shapes.0, seed: 1), b = sample(shapes.1, seed: 2, low: 0.5, high: 2)
        checkGradients([a, b]) { $0[0] + $0[1] }
        checkGradients([a, b]) { $0[0] - $0[1] }
        checkGradients([a, b]) { $0[0] * $0[1] }
        checkGradients([a, b]) { $0[0] / $0[1] }
        checkGradients([a, b]) { Tensor.maximum($0[0], $0[1]) }
    }

    @Test func secondOrderElementwise() {
        let a = sample([2, 3], seed: 3), b = sample([3], seed: 4, low: 0.5, high: 2)
        checkSecondOrder([a, b]) { ($0[0] * $0[1] * $0[0]) / $0[1].exp() }
    }
}
