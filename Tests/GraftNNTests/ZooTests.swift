import Foundation
import GraftCore
import GraftIO
import GraftNN
import Testing

/// Model zoo: key names and parameter counts against the reference libraries, block parity against PyTorch
/// (values from Fixtures/make_conv_fixtures.py), head replacement, and small forwards.
struct ZooTests {
    // MARK: Structure against the reference state dicts

    @Test func resnet18MatchesTorchvisionKeysAndCount() throws {
        var rng = RandomGenerator(seed: 1)
        let model = ResNet(.resnet18, using: &rng)
        #expect(model.parameterCount() == 11_689_512)
        try expectSameState(model, as: "resnet18")
        let keys = Set(model.stateDict().map(\.0))
        #expect(keys.count == 122)
        for key in ["conv1.weight", "bn1.num_batches_tracked", "layer1.1.bn2.bias", "layer4.1.conv2.weight",
                    "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var", "fc.weight", "fc.bias"] {
            #expect(keys.contains(key), "missing \(key)")
        }
        #expect(!keys.contains("layer1.0.downsample.0.weight"))
    }

    @Test func resnet50MatchesTorchvisionKeysAndCount() throws {
        var rng = RandomGenerator(seed: 2)
        let model = ResNet(.resnet50, using: &rng)
        #expect(model.parameterCount() == 25_557_032)
        try expectSameState(model, as: "resnet50")
        #expect(model.layer2.children.count == 4)
        let keys = Set(model.stateDict().map(\.0))
        #expect(keys.contains("layer1.0.downsample.0.weight"), "layer1 widens 64 → 256, so its first block projects")
        #expect(keys.contains("layer3.5.conv3.weight"))
    }

    @Test func resnetStridesInTheBottleneck3x3() {
        var rng = RandomGenerator(seed: 3)
        let block = Bottleneck(64, 32, stride: 2, using: &rng)
        #expect(block.conv1.stride.0 == 1 && block.conv1.stride.1 == 1)
        #expect(block.conv2.stride.0 == 2 && block.conv2.stride.1 == 2)
        #expect(block.downsample?.layers.count == 2)
    }

    @Test func resnetInitialisesAsTorchvision() throws {
        var rng = RandomGenerator(seed: 13)
        let model = ResNet(.resnet18, widthMultiplier: 0.25, using: &rng)
        let block = try #require(model.layer4.layers[0] as? BasicBlock)
        let w = block.conv2.weight.scalars
        let std = (w.map { Double($0 * $0) }.reduce(0, +) / Double(w.count)).squareRoot()
        let expected = (2.0 / Double(128 * 9)).squareRoot()  // Kaiming normal, fan out = 128 × 3 × 3
        #expect(abs(std / expected - 1) < 0.05, "std \(std), expected \(expected)")
        #expect(block.bn2.weight?.scalars.allSatisfy { $0 == 1 } == true && block.bn2.bias?.scalars.allSatisfy { $0 == 0 } == true)
        let fc = try #require(model.fc as? Linear)
        #expect(fc.weight.scalars.allSatisfy { abs($0) <= 1 / Float(128).squareRoot() })
    }

    @Test func efficientNetLite0MatchesLukemelasKeysAndCount() throws {
        var rng = RandomGenerator(seed: 4)
        let model = EfficientNetLite(using: &rng)
        #expect(model.parameterCount() == lite0ParameterCount(EfficientNetLite.lite0))
        #expect(model.parameterCount() == 4_652_008)
        try expectSameState(model, as: "efficientnet_lite0")
        let keys = Set(model.stateDict().map(\.0))
        #expect(!keys.contains("_blocks.0._expand_conv.weight"), "block 0 has expand ratio 1")
        #expect(!keys.contains("_blocks.0._bn0.weight"))
        #expect(keys.contains("_blocks.1._expand_conv.weight"))
        #expect(keys.contains("_blocks.15._bn2.running_var"))
        #expect(!keys.contains("_blocks.16._bn2.running_var"))
        #expect(model.stateDict().first { $0.0 == "_blocks.3._depthwise_conv.weight" }?.1.shape == [144, 1, 5, 5])
    }

    @Test(.enabled(if: efficientNetFile != nil, "no converted EfficientNet-Lite0 under $GRAFT_ASSETS/efficientnet"))
    func efficientNetLite0LoadsTheConvertedCheckpoint() throws {
        let file = try SafeTensorsFile(path: try #require(efficientNetFile))
        var rng = RandomGenerator(seed: 5)
        let model = EfficientNetLite(using: &rng)
        let fileShapes = Dictionary(uniqueKeysWithValues: file.infos.map { ($0.name, $0.shape) })
        let modelShapes = Dictionary(uniqueKeysWithValues: model.stateDict().map { ($0.0, $0.1.shape) })
        let optional = { (key: String) in key.hasSuffix("num_batches_tracked") }
        #expect(Set(fileShapes.keys.filter { !optional($0) }) == Set(modelShapes.keys.filter { !optional($0) }))
        for (key, shape) in fileShapes where !optional(key) { #expect(modelShapes[key] == shape, "\(key)") }
        let buffers = Set(model.namedBuffers().map(\.0))
        let fileParameters = file.infos.filter { !buffers.contains($0.name) }.map(\.count).reduce(0, +)
        #expect(fileParameters == model.parameterCount())
        let report = try model.load(Dictionary(uniqueKeysWithValues: try file.tensors()), strict: false)
        #expect(report.unexpected.isEmpty && report.mismatched.isEmpty && report.missing.allSatisfy(optional))
        // The whole pretrained network against PyTorch; 72 px makes a stride-2 "SAME" conv pad asymmetrically.
        let reference = try JSONDecoder().decode(LogitsFixture.self, from: Data(contentsOf: fixtureURL("lite0_logits.json")))
        model.eval()
        let logits = model(syntheticImage(side: reference.side))
        #expect(relativeError(logits, reference.logits.tensor) <= 1e-4)
        #expect(topIndices(logits, 5) == topIndices(reference.logits.tensor, 5))
    }

    // MARK: Parity with PyTorch

    @Test(arguments: ["resnet_basic_block", "resnet_bottleneck", "mbconv_e6_k5_s2", "mbconv_e1_k3_s1"], ["eval", "train"])
    func blockMatchesPyTorch(fixture name: String, mode: String) throws {
        let fixture = try JSONDecoder().decode(BlockFixture.self, from: Data(contentsOf: fixtureURL("\(name).json")))
        let block = makeBlock(name, fixture.config)
        try block.load(fixture.weights.mapValues(\.tensor), strict: true, source: "\(name).json")
        block.train(mode == "train")
        let expected = try #require(fixture.cases[mode])
        let x = Tensor(fixture.input.data, shape: fixture.input.shape, requiresGrad: true)
        let y = block(x)
        #expect(y.shape == expected.output.shape)
        #expect(relativeError(y, expected.output.tensor) <= 1e-4, "\(name) \(mode): output")
        if mode == "eval" {
            // Without a graph, each convolution and its batch norm (and residual, activation) are one fused op.
            #expect(relativeError(withNoGrad { block(x) }, expected.output.tensor) <= 1e-4, "\(name): fused output")
        }
        let parameters = block.namedParameters()
        let grads = grad(of: (y * fixture.probe.tensor).sum(), wrt: [x] + parameters.map(\.1))
        #expect(relativeError(grads[0], expected.inputGrad.tensor) <= 1e-3, "\(name) \(mode): input gradient")
        #expect(Set(parameters.map(\.0)) == Set(expected.grads.keys))
        for ((key, _), g) in zip(parameters, grads.dropFirst()) {
            let reference = try #require(expected.grads[key])
            #expect(relativeError(g, reference.tensor) <= 1e-3, "\(name) \(mode): gradient of \(key)")
        }
        for (key, buffer) in block.namedBuffers() {
            let reference = try #require(expected.buffersAfter[key])
            #expect(relativeError(buffer, reference.tensor) <= 1e-4, "\(name) \(mode): \(key) after the forward")
        }
    }

    // MARK: Options, heads, blocks

    @Test func smallImageStemKeepsResolution() {
        var rng = RandomGenerator(seed: 6)
        let model = ResNet(.resnet18, classes: 10, widthMultiplier: 0.25, smallImageStem: true, using: &rng)
        #expect(model.conv1.weight.shape == [16, 3, 3, 3])
        #expect(model.conv1.stride.0 == 1 && model.conv1.stride.1 == 1)
        #expect(!model.children.map(\.0).contains("maxpool"))
        model.eval()
        let x = Tensor.randomNormal([2, 3, 32, 32], using: &rng)
        let stem = model.bn1(model.conv1(x))
        #expect(stem.shape == [2, 16, 32, 32])
        #expect(model.layer4(model.layer3(model.layer2(model.layer1(stem)))).shape == [2, 128, 4, 4])
        #expect(model.features(x).shape == [2, 128])
        let logits = model(x)
        #expect(logits.shape == [2, 10])
        #expect(logits.scalars.allSatisfy { $0.isFinite })
    }

    @Test func widthMultiplierScalesStages() {
        var rng = RandomGenerator(seed: 7)
        let model = ResNet(.resnet50, classes: 5, inputChannels: 1, widthMultiplier: 0.25, using: &rng)
        #expect(model.conv1.weight.shape == [16, 1, 7, 7])
        #expect(model.layer3.children.count == 6)
        #expect(model.featureCount == 512)
        #expect((model.fc as? Linear)?.weight.shape == [5, 512])
    }

    @Test func replaceHeadInstallsAFreshLinear() throws {
        var rng = RandomGenerator(seed: 8)
        let models: [(any BlockClassifier, String)] = [
            (ResNet(.resnet18, widthMultiplier: 0.25, using: &rng), "fc"),
            (EfficientNetLite(using: &rng), "_fc"),
            (SmallCNN(using: &rng), "fc"),
            (MLP(sizes: [20, 16, 8, 4], using: &rng), "layers.4"),
        ]
        for (model, path) in models {
            let old = try #require(try model.module(at: path) as? Linear)
            model.replaceHead(classes: old.outFeatures, using: &rng)
            let same = try #require(try model.module(at: path) as? Linear)
            #expect(same !== old && same.weight.shape == old.weight.shape)
            #expect(same.weight.scalars != old.weight.scalars, "\(path): the new head must be freshly initialised")
            model.replaceHead(classes: 3, using: &rng)
            let head = try #require(try model.module(at: path) as? Linear)
            #expect(head.weight.shape == [3, model.featureCount] && head.bias?.shape == [3])
            #expect(model.stateDict().first { $0.0 == "\(path).weight" }?.1 === head.weight)
            #expect(model.blocks.last?.1 === head, "the head is the last block")
        }
    }

    @Test func onlyTheHeadCanBeReplacedAndOnlyByAFittingLayer() throws {
        var rng = RandomGenerator(seed: 9)
        let model = ResNet(.resnet18, widthMultiplier: 0.25, using: &rng)
        let head = Sequential(Dropout(0.5), Linear(128, 7, using: &rng))
        try model.replaceModule(at: "fc", with: head)
        #expect(model.fc === head)
        #expect(throws: ModuleError.self) { try model.replaceModule(at: "fc", with: Linear(100, 7, using: &rng)) }
        #expect(throws: ModuleError.self) { try model.replaceModule(at: "fc", with: Embedding(4, 4, using: &rng)) }
        #expect(throws: ModuleError.cannotReplace(path: "layer1", owner: "ResNet")) {
            try model.replaceModule(at: "layer1", with: Sequential())
        }
        let lite = EfficientNetLite(using: &rng)
        #expect(throws: ModuleError.self) { try lite.replaceModule(at: "_fc", with: Linear(320, 7, using: &rng)) }
        try lite.replaceModule(at: "_fc", with: Linear(1280, 7, using: &rng))
        #expect((lite.fc as? Linear)?.outFeatures == 7)
    }

    @Test func blocksCoverEveryParameterOnceInDepthOrder() {
        var rng = RandomGenerator(seed: 10)
        let models: [(any BlockClassifier, [String])] = [
            (ResNet(.resnet18, widthMultiplier: 0.25, using: &rng), ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]),
            (EfficientNetLite(using: &rng), ["stem"] + (1...7).map { "stage\($0)" } + ["top", "_fc"]),
            (SmallCNN(using: &rng), ["stage1", "stage2", "fc"]),
            (MLP(sizes: [8, 6, 4], using: &rng), ["layers.0", "layers.2"]),
        ]
        for (model, labels) in models {
            #expect(model.blocks.map(\.0) == labels)
            let fromBlocks = model.blocks.flatMap { $0.1.namedParameters().map { ObjectIdentifier($0.1) } }
            let all = model.namedParameters().map { ObjectIdentifier($0.1) }
            #expect(fromBlocks == all, "blocks must list each parameter once, from input to head")
        }
    }

    @Test func efficientNetStagesFollowTheTable() {
        var rng = RandomGenerator(seed: 11)
        let model = EfficientNetLite(using: &rng)
        #expect(model.mbconvBlocks.layers.count == 16)
        #expect(model.blocks[6].1.children.map(\.0) == ["11", "12", "13", "14"])
        let blocks = model.mbconvBlocks.layers.compactMap { $0 as? MBConvBlock }
        #expect(blocks.map(\.hasSkip) == [false, false, true, false, true, false, true, true, false, true, true,
                                          false, true, true, true, false])
        #expect(blocks[3].depthwiseConv.padding == .same && blocks[3].depthwiseConv.stride.0 == 2)
    }

    @Test func tinyEvalForwards() {
        var rng = RandomGenerator(seed: 12)
        let lite = EfficientNetLite(classes: 10, using: &rng)
        lite.eval()
        let x = Tensor.randomNormal([1, 3, 32, 32], using: &rng)
        let logits = lite(x)
        #expect(logits.shape == [1, 10] && logits.scalars.allSatisfy { $0.isFinite })
        #expect(lite.features(x).shape == [1, 1280])
        let cnn = SmallCNN(using: &rng)
        cnn.eval()
        #expect(cnn(Tensor.randomNormal([2, 1, 28, 28], using: &rng)).shape == [2, 10])
        #expect(cnn.featureCount == 64 * 7 * 7)
        #expect(cnn.stateDict().map(\.0).prefix(2) == ["conv1.weight", "bn1.weight"])
        let mlp = MLP(sizes: [12, 8, 3], using: &rng)
        #expect(mlp.stateDict().map(\.0) == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"])
        let h = Tensor.randomNormal([5, 12], using: &rng)
        #expect(mlp.features(h).shape == [5, 8] && mlp(h).shape == [5, 3])
    }
}

// MARK: Helpers

/// A tensor as the fixture script writes it: shape and row-major values.
private struct FixtureTensor: Decodable {
    let shape: [Int]
    let data: [Float]
    var tensor: Tensor { Tensor(data, shape: shape) }
}

private struct BlockFixture: Decodable {
    struct Case: Decodable {
        let output: FixtureTensor
        let inputGrad: FixtureTensor
        let grads: [String: FixtureTensor]
        let buffersAfter: [String: FixtureTensor]
        enum CodingKeys: String, CodingKey {
            case output, grads, inputGrad = "input_grad", buffersAfter = "buffers_after"
        }
    }

    let config: [String: Int]
    let weights: [String: FixtureTensor]
    let input: FixtureTensor
    let probe: FixtureTensor
    let cases: [String: Case]
}

private struct LogitsFixture: Decodable {
    let side: Int
    let logits: FixtureTensor
}

/// The script's `synthetic_image`: x[c, i, j] = sin(0.3 i (c + 1)) cos(0.2 j) + 0.1 c, as [1, 3, side, side].
private func syntheticImage(side: Int) -> Tensor {
    var values: [Float] = []
    for c in 0..<3 {
        for i in 0..<side {
            for j in 0..<side { values.append(Float(sin(0.3 * Double(i * (c + 1))) * cos(0.2 * Double(j)) + 0.1 * Double(c))) }
        }
    }
    return Tensor(values, shape: [1, 3, side, side])
}

private func topIndices(_ logits: Tensor, _ k: Int) -> [Int] {
    Array(logits.scalars.enumerated().sorted { $0.element > $1.element }.prefix(k).map(\.offset))
}

/// A state-dict entry of the reference, written by the script as [name, shape].
private struct KeyShape: Decodable, Equatable {
    let name: String
    let shape: [Int]

    init(name: String, shape: [Int]) { (self.name, self.shape) = (name, shape) }

    init(from decoder: Decoder) throws {
        var c = try decoder.unkeyedContainer()
        name = try c.decode(String.self)
        shape = try c.decode([Int].self)
    }
}

private struct ModelReference: Decodable {
    let keys: [KeyShape]
    let parameters: Int
}

private func fixtureURL(_ file: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(file)")
}

/// The model's state-dict keys, in order, with shapes, and its parameter count equal the reference model's.
private func expectSameState(_ model: Module, as name: String) throws {
    let all = try JSONDecoder().decode([String: ModelReference].self, from: Data(contentsOf: fixtureURL("zoo_reference.json")))
    let reference = try #require(all[name])
    let own = model.stateDict().map { KeyShape(name: $0.0, shape: $0.1.shape) }
    #expect(own.count == reference.keys.count)
    for (mine, theirs) in zip(own, reference.keys) where mine != theirs {
        Issue.record("\(name): \(mine.name) \(mine.shape) where the reference has \(theirs.name) \(theirs.shape)")
        break
    }
    #expect(model.parameterCount() == reference.parameters)
}

private func makeBlock(_ name: String, _ c: [String: Int]) -> any UnaryLayer {
    var rng = RandomGenerator(seed: 0)
    switch name {
    case "resnet_basic_block": return BasicBlock(c["in"]!, c["planes"]!, stride: c["stride"]!, using: &rng)
    case "resnet_bottleneck": return Bottleneck(c["in"]!, c["planes"]!, stride: c["stride"]!, using: &rng)
    default:
        return MBConvBlock(c["in"]!, c["out"]!, kernel: c["kernel"]!, stride: c["stride"]!, expand: c["expand"]!,
                           using: &rng)
    }
}

/// ‖a − b‖ / ‖b‖ over all elements, in double precision.
private func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
    guard a.shape == b.shape else { return .infinity }
    var diff = 0.0, norm = 0.0
    for (x, y) in zip(a.scalars, b.scalars) {
        diff += Double(x - y) * Double(x - y)
        norm += Double(y) * Double(y)
    }
    return Float((diff / Swift.max(norm, 1e-30)).squareRoot())
}

/// EfficientNet-Lite's parameter count worked out from the block table, independently of the module code.
private func lite0ParameterCount(_ stages: [EfficientNetLite.Stage], head: Int = 1280, classes: Int = 1000) -> Int {
    let stem = stages[0].inChannels
    var total = 3 * stem * 9 + 2 * stem
    for stage in stages {
        for r in 0..<stage.repeats {
            let input = r == 0 ? stage.inChannels : stage.outChannels, hidden = input * stage.expand
            if stage.expand != 1 { total += input * hidden + 2 * hidden }
            total += hidden * stage.kernel * stage.kernel + 2 * hidden + hidden * stage.outChannels + 2 * stage.outChannels
        }
    }
    return total + stages[stages.count - 1].outChannels * head + 2 * head + head * classes + classes
}

/// The converted EfficientNet-Lite0 checkpoint under $GRAFT_ASSETS (or the repository's .cache/assets), if present.
private let efficientNetFile: String? = {
    let root = ProcessInfo.processInfo.environment["GRAFT_ASSETS"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".cache/assets").path
    let path = "\(root)/efficientnet/efficientnet-lite0.safetensors"
    return FileManager.default.fileExists(atPath: path) ? path : nil
}()
