import Foundation
import Testing
@testable import GraftCore

/// One op's inputs, output and gradients as PyTorch computed them (Fixtures/make_core_fixtures.py).
struct TorchCase {
    let inputs: [Tensor]
    let output: Tensor
    let probe: Tensor
    let grads: [[Float]?]
    let raw: [String: Any]

    nonisolated(unsafe) static let all: [String: [String: Any]] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/core_ops.json")
        let json = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return json["cases"] as! [String: [String: Any]]
    }()

    init(_ name: String) {
        raw = TorchCase.all[name]!
        func tensor(_ any: Any) -> Tensor {
            let d = any as! [String: Any]
            return Tensor((d["values"] as! [Double]).map(Float.init), shape: d["shape"] as! [Int])
        }
        inputs = (raw["inputs"] as! [Any]).map(tensor)
        output = tensor(raw["output"]!)
        probe = Tensor((raw["probe"] as! [Double]).map(Float.init), shape: output.shape)
        grads = (raw["grads"] as! [Any]).map { ($0 as? [Double])?.map(Float.init) }
    }

    func floats(_ key: String) -> [Float] { (raw[key] as! [Double]).map(Float.init) }

    /// Runs `f` on fresh leaves and compares its output (rtol 1e-4) and input gradients (rtol 1e-3) with PyTorch's.
    func check(sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) -> Tensor) {
        let leaves = inputs.map { Tensor($0.scalars, shape: $0.shape, requiresGrad: true) }
        let y = f(leaves)
        #expect(y.shape == output.shape, sourceLocation: sourceLocation)
        expectClose(y.scalars, output.scalars, rtol: 1e-4, atol: 1e-5, sourceLocation: sourceLocation)
        let g = grad(of: (y * probe).sum(), wrt: leaves)
        for (k, expected) in grads.enumerated() {
            guard let expected else { continue }
            expectClose(g[k].scalars, expected, rtol: 1e-3, atol: 1e-5, sourceLocation: sourceLocation)
        }
    }
}

@Suite struct TorchParity {
    @Test func activationsAndSoftmax() {
        TorchCase("gelu").check { $0[0].gelu() }
        TorchCase("softmax").check { $0[0].softmax(axis: -1) }
        TorchCase("log_softmax").check { $0[0].logSoftmax(axis: 0) }
    }

    @Test func crossEntropyWithSmoothingAndIgnoredTarget() {
        let c = TorchCase("cross_entropy")
        let targets = c.raw["targets"] as! [Int], ignore = c.raw["ignore_index"] as! Int
        c.check { Tensor.crossEntropy($0[0], targets: targets, labelSmoothing: 0.1, ignoreIndex: ignore) }
    }

    @Test func normalisation() {
        TorchCase("layer_norm").check { Tensor.layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-12) }
        let c = TorchCase("batch_norm_train")
        let rm = Tensor(c.floats("running_mean"), shape: [4]), rv = Tensor(c.floats("running_var"), shape: [4])
        c.check {
            Tensor.batchNorm($0[0], weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: true,
                             momentum: 0.1, eps: 1e-3)
        }
        expectClose(rm.scalars, c.floats("running_mean_after"))
        expectClose(rv.scalars, c.floats("running_var_after"))
    }

    @Test func convolutionAndPooling() {
        TorchCase("conv2d_stride2_same").check {
            Tensor.conv2d($0[0], weight: $0[1], bias: $0[2], stride: (2, 2), padding: .same)
        }
        TorchCase("conv2d_dilated_groups").check {
            Tensor.conv2d($0[0], weight: $0[1], padding: .symmetric(2, 1), dilation: (2, 1), groups: 2)
        }
        TorchCase("conv2d_depthwise").check {
            Tensor.conv2d($0[0], weight: $0[1], bias: $0[2], stride: (2, 2), padding: .symmetric(2, 2), groups: 4)
        }
        TorchCase("max_pool2d").check { $0[0].maxPool2d(kernel: (3, 3), stride: (2, 2), padding: .symmetric(1, 1)) }
        TorchCase("avg_pool2d").check { $0[0].avgPool2d(kernel: (3, 3), stride: (2, 2), padding: .symmetric(1, 1)) }
        TorchCase("adaptive_avg_pool2d").check { $0[0].adaptiveAvgPool2d((4, 3)) }
    }
}
