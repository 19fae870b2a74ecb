import Testing
@testable import GraftCore
@testable import GraftNN

@Suite struct Losses {
    @Test func matchPyTorch() throws {
        let f = try loadFixture("losses.json")
        let values = (f["logits"] as! [Double]).map(Float.init)
        let targets = f["targets"] as! [Int], weights = (f["weights"] as! [Double]).map(Float.init)
        func tensor(_ key: String) -> Tensor { Tensor((f[key] as! [Double]).map(Float.init), shape: [6, 4]) }
        func check(_ key: String, _ loss: (Tensor) -> Tensor) {
            let x = Tensor(values, shape: [6, 4], requiresGrad: true)
            let expected = f[key] as! [String: Any]
            let value = loss(x)
            expectClose([value.item], [Float(expected["value"] as! Double)], rtol: 1e-5)
            expectClose(grad(of: value, wrt: [x])[0].scalars, (expected["grad"] as! [Double]).map(Float.init), rtol: 1e-4, atol: 1e-6)
        }
        check("ce_weighted") { Loss.crossEntropy($0, targets: targets, weights: weights) }
        check("ce_weighted_smooth") { Loss.crossEntropy($0, targets: targets, weights: weights, labelSmoothing: 0.2) }
        check("ce_weighted_ignore") { Loss.crossEntropy($0, targets: targets, weights: weights, ignoreIndex: 3) }
        check("bce") { Loss.binaryCrossEntropyWithLogits($0, targets: tensor("binary")) }
        check("bce_pos") { Loss.binaryCrossEntropyWithLogits($0, targets: tensor("binary"), positiveWeight: 3) }
        check("mse") { Loss.meanSquaredError($0, tensor("regress")) }
        check("kd") { Loss.distillation(student: $0, teacher: tensor("teacher"), temperature: 4) }
    }

    @Test func unitWeightsEqualTheFusedKernel() {
        var rng = RandomGenerator(seed: 1)
        let x = Tensor.randomNormal([5, 3], using: &rng)
        let fused = Tensor.crossEntropy(x, targets: [0, 2, 1, 1, 0], labelSmoothing: 0.1).item
        let weighted = Loss.crossEntropy(x, targets: [0, 2, 1, 1, 0], weights: [1, 1, 1], labelSmoothing: 0.1).item
        #expect(abs(fused - weighted) < 1e-6)
    }
}
