import GraftCore

/// A multilayer perceptron with ReLU between layers, initialised as `torch.nn.Linear` is by default
/// (weights and biases uniform in ±1/√fan_in).
struct MLP {
    var layers: [(weight: Tensor, bias: Tensor)]

    init(sizes: [Int], using rng: inout RandomGenerator) {
        layers = zip(sizes, sizes.dropFirst()).map { fanIn, fanOut in
            let bound = 1 / Float(fanIn).squareRoot()
            return (Tensor.randomUniform([fanOut, fanIn], low: -bound, high: bound, using: &rng, requiresGrad: true),
                    Tensor.randomUniform([fanOut], low: -bound, high: bound, using: &rng, requiresGrad: true))
        }
    }

    var parameters: [Tensor] { layers.flatMap { [$0.weight, $0.bias] } }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for (i, layer) in layers.enumerated() {
            h = Tensor.linear(h, weight: layer.weight, bias: layer.bias)
            if i < layers.count - 1 { h = h.relu() }
        }
        return h
    }
}

/// Plain SGD with optional momentum, updating parameters in place (PyTorch's update rule).
struct SGD {
    let learningRate: Float
    let momentum: Float
    private var velocity: [Storage?]

    init(parameterCount: Int, learningRate: Float, momentum: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        velocity = Array(repeating: nil, count: parameterCount)
    }

    mutating func step(_ parameters: [Tensor]) {
        for (k, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let w = p.pointer, d = g.pointer, n = p.count, lr = learningRate
            if momentum == 0 {
                parallelChunks(n, grain: 1 << 16) { r in for i in r { w[i] -= lr * d[i] } }
                continue
            }
            if velocity[k] == nil {
                let v = Storage(count: n)
                v.pointer.update(from: d, count: n)
                velocity[k] = v
            } else {
                let v = velocity[k]!.pointer, mu = momentum
                parallelChunks(n, grain: 1 << 16) { r in for i in r { v[i] = mu * v[i] + d[i] } }
            }
            let v = velocity[k]!.pointer
            parallelChunks(n, grain: 1 << 16) { r in for i in r { w[i] -= lr * v[i] } }
        }
    }
}
