import CBLAS
import GraftCore
import GraftNN
import GraftOptim

/// One workload of `graft bench compare`: built once, then called repeatedly (a training step or a forward pass).
/// launch/bench_compare_torch.py builds the same workload under the same key: same shapes, batch, optimizer
/// (plain SGD), train or eval mode and frozen parts. Weights are random on both sides: speed does not depend on them.
struct BenchWorkload: Sendable {
    let key: String
    let label: String
    /// Whether the call is a training step (the 1.2× target applies to those).
    let training: Bool
    /// Builds the model and inputs and returns one call.
    let make: @Sendable () throws -> () -> Void
    /// Floating-point operations of the call's matrix products, for workloads that are nearly all GEMM: their
    /// GF/s is set against sgemm's in the same run.
    var gemmFlops: Double? = nil

    init(key: String, label: String, training: Bool, gemmFlops: Double? = nil,
         make: @escaping @Sendable () throws -> () -> Void) {
        (self.key, self.label, self.training, self.gemmFlops, self.make) = (key, label, training, gemmFlops, make)
    }

    /// MLP 784-512-512-10 at batch 128: forward, weight gradients, and input gradients of all but the first layer.
    static let mlpFlops: Double = {
        let layers = [(784, 512), (512, 512), (512, 10)].map { Double($0.0 * $0.1) }
        return 2 * 128 * (2 * layers.reduce(0, +) + layers.dropFirst().reduce(0, +))
    }()

    /// MiniLM-L6 over `batch` × `length` tokens: the six layers' projections and feed-forward products plus
    /// attention's two batched products, ×3 for a full training step (forward, input and weight gradients).
    static func miniLMFlops(batch: Int, length: Int, training: Bool) -> Double {
        let (hidden, intermediate, layers) = (384.0, 1536.0, 6.0)
        let tokens = Double(batch * length)
        let linear = 2 * tokens * layers * (4 * hidden * hidden + 2 * hidden * intermediate)
        let attention = 2 * 2 * Double(batch) * Double(length * length) * hidden * layers
        return (linear + attention) * (training ? 3 : 1)
    }

    /// Every workload, in table order.
    static let all: [BenchWorkload] = [
        BenchWorkload(key: "sgemm", label: "sgemm 1024² (\(GEMMLibrary.current.description); torch.mm)", training: false) {
            sgemm(GEMMLibrary.current)
        },
        BenchWorkload(key: "sgemm_openblas", label: "sgemm 1024² (OpenBLAS; torch.mm)", training: false) {
            sgemm(.openBLAS)
        },
        BenchWorkload(key: "mlp", label: "MLP 784-512-512-10 b128 SGD step", training: true, gemmFlops: mlpFlops,
                      make: mlp),
        BenchWorkload(key: "minilm_fwd", label: "MiniLM-L6 forward 16×128", training: false,
                      gemmFlops: miniLMFlops(batch: 16, length: 128, training: false), make: miniLMForward),
        BenchWorkload(key: "minilm_full", label: "MiniLM-L6 full fine-tuning step 16×64", training: true,
                      gemmFlops: miniLMFlops(batch: 16, length: 64, training: true)) {
            try miniLMStep(trainable: ["*"])
        },
        BenchWorkload(key: "minilm_full_bf16", label: "MiniLM-L6 full step 16×64, bf16 products", training: true,
                      gemmFlops: miniLMFlops(batch: 16, length: 64, training: true)) {
            let step = try miniLMStep(trainable: ["*"])
            return { withMatmulPrecision(.bfloat16, step) }
        },
        BenchWorkload(key: "minilm_top2", label: "MiniLM-L6 top-2 + head step 16×64", training: true) {
            try miniLMStep(trainable: ["bert.encoder.layer.4.*", "bert.encoder.layer.5.*", "bert.pooler.*", "classifier.*"])
        },
        BenchWorkload(key: "minilm_lora", label: "MiniLM-L6 LoRA (r 8; query, value) + head step 16×64", training: true,
                      make: miniLMLoRAStep),
        BenchWorkload(key: "minilm_head", label: "MiniLM-L6 head-only step 16×64", training: true) {
            try miniLMStep(trainable: ["classifier.*"])
        },
        BenchWorkload(key: "resnet_full", label: "ResNet-18 32px b64 full step", training: true) {
            try resNetStep(trainable: ["*"])
        },
        BenchWorkload(key: "resnet_head", label: "ResNet-18 32px b64 head-only step", training: true) {
            try resNetStep(trainable: ["fc.*"])
        },
        BenchWorkload(key: "resnet_in_head", label: "ResNet-18 ImageNet stem 32px b64 head-only step", training: true) {
            try resNetStep(trainable: ["fc.*"], smallImageStem: false)
        },
        BenchWorkload(key: "effnet_fwd", label: "EfficientNet-Lite0 224px b16 forward", training: false,
                      make: efficientNetForward),
        BenchWorkload(key: "effnet_full", label: "EfficientNet-Lite0 224px b16 full step", training: true,
                      make: efficientNetStep),
    ]

    /// One plain SGD step (no momentum) over the model's trainable parameters.
    private static func sgdStep(_ model: Module, learningRate: Float, loss: @escaping () -> Tensor) throws -> () -> Void {
        let trainable = model.namedParameters().filter { $0.1.requiresGrad }
        let sgd = try SGD(groups: [ParameterGroup(name: "trainable", parameters: trainable,
                                                  options: GroupOptions(learningRate: learningRate))])
        return {
            sgd.zeroGradients()
            loss().backward()
            sgd.step()
        }
    }

    /// Training mode with only the parameters matching `trainable` unfrozen; frozen batch norm in inference mode.
    private static func freeze(_ model: Module, trainable: [String]) throws {
        model.train()
        try model.setFrozen(true, matching: "*")
        for pattern in trainable { try model.setFrozen(false, matching: pattern) }
        model.fixFrozenBatchNorm()
    }

    /// sgemm 1024² through `library`: the best of these rates is what GEMM-bound workloads are set against.
    static func sgemm(_ library: GEMMLibrary) -> () -> Void {
        var rng = RandomGenerator(seed: 1)
        let n = 1024
        let a = Tensor.randomNormal([n, n], using: &rng), b = Tensor.randomNormal([n, n], using: &rng)
        let c = Storage(count: n * n)
        return {
            library.sgemm(transA: false, transB: false, m: n, n: n, k: n, a.pointer, lda: n, b.pointer, ldb: n, beta: 0,
                          c.pointer, ldc: n)
        }
    }

    private static func mlp() throws -> () -> Void {
        var rng = RandomGenerator(seed: 1)
        let model = MLP(sizes: [784, 512, 512, 10], using: &rng)
        let x = Tensor.randomUniform([128, 784], using: &rng)
        let labels = (0..<128).map { _ in Int(rng.next() % 10) }
        return try sgdStep(model, learningRate: 0.01) { Tensor.crossEntropy(model(x), targets: labels) }
    }

    /// MiniLM-L6's shape (hidden 384, 6 layers, 12 heads, intermediate 1536) with random weights.
    private static func miniLM(using rng: inout RandomGenerator) -> BertClassifier {
        var config = BertConfig()
        (config.hidden, config.layers, config.heads, config.intermediate) = (384, 6, 12, 1536)
        return BertClassifier(BertModel(config, using: &rng), classes: 5, using: &rng)
    }

    private static func tokens(batch: Int, length: Int, using rng: inout RandomGenerator) -> (Indices, Tensor) {
        (Indices((0..<batch * length).map { _ in 1000 + Int(rng.next() % 20000) }, shape: [batch, length]),
         Tensor.ones([batch, length]))
    }

    private static func miniLMForward() -> () -> Void {
        var rng = RandomGenerator(seed: 0)
        let bert = miniLM(using: &rng).bert
        bert.eval()
        let (ids, mask) = tokens(batch: 16, length: 128, using: &rng)
        return { _ = withNoGrad { bert(ids, mask: mask) } }
    }

    private static func miniLMStep(trainable: [String]) throws -> () -> Void {
        var rng = RandomGenerator(seed: 0)
        let model = miniLM(using: &rng)
        let (ids, mask) = tokens(batch: 16, length: 64, using: &rng)
        let labels = (0..<16).map { _ in Int(rng.next() % 5) }
        try freeze(model, trainable: trainable)
        return try sgdStep(model, learningRate: 1e-4) { Tensor.crossEntropy(model(ids, mask: mask), targets: labels) }
    }

    /// PEFT's default adapters (r 8, α 8) on every layer's query and value; the adapters and the head train.
    private static func miniLMLoRAStep() throws -> () -> Void {
        var rng = RandomGenerator(seed: 0)
        let model = miniLM(using: &rng)
        try model.injectLoRA(targets: ["query", "value"], excluding: ["classifier"], LoRAConfiguration(), using: &rng)
        let (ids, mask) = tokens(batch: 16, length: 64, using: &rng)
        let labels = (0..<16).map { _ in Int(rng.next() % 5) }
        try freeze(model, trainable: ["*.lora_?.*", "classifier.*"])
        return try sgdStep(model, learningRate: 1e-4) { Tensor.crossEntropy(model(ids, mask: mask), targets: labels) }
    }

    /// ResNet-18 on 32 px images, with the small-image stem (maps 32 to 4) or ImageNet's 7×7 stride-2 stem and
    /// max-pool, as a pretrained model is fine-tuned on small images (maps 8 to 1).
    private static func resNetStep(trainable: [String], smallImageStem: Bool = true) throws -> () -> Void {
        var rng = RandomGenerator(seed: 0)
        let model = ResNet(.resnet18, classes: 10, smallImageStem: smallImageStem, using: &rng)
        let images = Tensor.randomNormal([64, 3, 32, 32], using: &rng)
        let labels = (0..<64).map { _ in Int(rng.next() % 10) }
        try freeze(model, trainable: trainable)
        return try sgdStep(model, learningRate: 1e-4) { Tensor.crossEntropy(model(images), targets: labels) }
    }

    private static func efficientNetForward() -> () -> Void {
        var rng = RandomGenerator(seed: 0)
        let model = EfficientNetLite(using: &rng)
        model.eval()
        let images = Tensor.randomNormal([16, 3, 224, 224], using: &rng)
        return { _ = withNoGrad { model(images) } }
    }

    private static func efficientNetStep() throws -> () -> Void {
        var rng = RandomGenerator(seed: 0)
        let model = EfficientNetLite(classes: 10, using: &rng)
        let images = Tensor.randomNormal([16, 3, 224, 224], using: &rng)
        let labels = (0..<16).map { _ in Int(rng.next() % 10) }
        try freeze(model, trainable: ["*"])
        return try sgdStep(model, learningRate: 1e-4) { Tensor.crossEntropy(model(images), targets: labels) }
    }
}
