import Testing
@testable import GraftCore
@testable import GraftNN

/// conv → bn → relu → flatten → fc, with PyTorch-style names.
final class TinyNet: Module, UnaryLayer {
    let conv: Conv2d, bn: BatchNorm
    var fc: Linear

    init(classes: Int, using rng: inout RandomGenerator) {
        conv = Conv2d(1, 2, kernel: 3, padding: 1, using: &rng)
        bn = BatchNorm(2)
        fc = Linear(2 * 4 * 4, classes, using: &rng)
    }

    override var children: [(String, Module)] { [("conv", conv), ("bn", bn), ("fc", fc)] }

    override func replaceChild(named name: String, with module: Module) throws {
        guard name == "fc" else { return try super.replaceChild(named: name, with: module) }
        guard let head = module as? Linear else {
            throw ModuleError.wrongType(path: name, expected: "Linear", found: "\(type(of: module))")
        }
        fc = head
    }

    func callAsFunction(_ x: Tensor) -> Tensor { fc(bn(conv(x)).relu().flattened(from: 1)) }
}

@Suite struct ModuleTree {
    @Test func namesOrderAndCounts() {
        var rng = RandomGenerator(seed: 1)
        let net = TinyNet(classes: 3, using: &rng)
        #expect(net.namedParameters().map(\.0) == ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias"])
        #expect(net.namedBuffers().map(\.0) == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"])
        #expect(net.namedModules().map(\.0) == ["", "conv", "bn", "fc"])
        #expect(net.parameterCount() == 2 * 9 + 2 + 2 + 2 + 32 * 3 + 3)
        net.conv.weight.requiresGrad = false
        #expect(net.parameterCount(trainableOnly: true) == net.parameterCount() - 18)
        #expect(net.stateDict().count == 9)
    }

    @Test func trainEvalIsRecursive() {
        var rng = RandomGenerator(seed: 1)
        let net = TinyNet(classes: 3, using: &rng)
        net.eval()
        #expect(net.namedModules().allSatisfy { !$0.1.isTraining })
        net.train()
        #expect(net.bn.isTraining)
    }

    @Test func replacingAHead() throws {
        var rng = RandomGenerator(seed: 1)
        let net = TinyNet(classes: 10, using: &rng)
        try net.replaceModule(at: "fc", with: Linear(32, 4, using: &rng))
        #expect(net(Tensor.zeros([2, 1, 4, 4])).shape == [2, 4])
        #expect(throws: ModuleError.cannotReplace(path: "conv", owner: "TinyNet")) {
            try net.replaceModule(at: "conv", with: Linear(1, 1, using: &rng))
        }
        #expect(throws: ModuleError.noSuchModule(path: "head")) { try net.replaceModule(at: "head", with: Linear(1, 1, using: &rng)) }
        let seq = Sequential(Linear(4, 4, using: &rng), Layers.relu(), Linear(4, 2, using: &rng))
        try seq.replaceModule(at: "2", with: Linear(4, 7, using: &rng))
        #expect(seq(Tensor.zeros([1, 4])).shape == [1, 7])
        #expect(seq.namedParameters().map(\.0) == ["0.weight", "0.bias", "2.weight", "2.bias"])
    }

    @Test func strictAndLenientLoading() throws {
        var rng = RandomGenerator(seed: 1)
        let source = TinyNet(classes: 10, using: &rng), target = TinyNet(classes: 5, using: &rng)
        let state = Dictionary(uniqueKeysWithValues: source.stateDict().map { ($0.0, $0.1.copy()) })
        let before = target.conv.weight.scalars
        do {
            try target.load(state, strict: true, source: "source.safetensors")
            Issue.record("a strict load with mismatched shapes must fail")
        } catch let error as StateDictError {
            #expect(error.report.mismatched.map(\.key) == ["fc.weight", "fc.bias"])
            #expect(error.description.contains("source.safetensors"))
            #expect(error.description.contains("fc.weight is [5, 32] in the model, [10, 32] in the file"))
        }
        #expect(target.conv.weight.scalars == before, "a failed strict load changes nothing")
        var extra = state
        extra["aux.weight"] = Tensor.zeros([1])
        extra["bn.running_mean"] = nil
        let report = try target.load(extra, strict: false)
        #expect(report.unexpected == ["aux.weight"])
        #expect(report.missing == ["bn.running_mean"])
        #expect(target.conv.weight.scalars == source.conv.weight.scalars)
        #expect(target.fc.weight.shape == [5, 32])
    }

    @Test func batchNormLayerUsesModeAndCountsBatches() {
        let bn = BatchNorm(3)
        let x = Tensor((0..<24).map(Float.init), shape: [4, 3, 2, 1])
        _ = bn(x)
        #expect(bn.batchesTracked.item == 1)
        #expect(bn.runningMean.scalars != [0, 0, 0])
        bn.eval()
        let mean = bn.runningMean.scalars
        _ = bn(x)
        #expect(bn.runningMean.scalars == mean && bn.batchesTracked.item == 1)
    }

    @Test func initialisersFollowPyTorch() {
        var rng = RandomGenerator(seed: 3)
        let w = Init.torchDefaultWeight([64, 100], using: &rng)
        #expect(w.scalars.allSatisfy { abs($0) <= 0.1 })
        #expect(w.scalars.map(abs).max()! > 0.09)
        let k = Init.kaimingNormal([256, 128, 3, 3], mode: .fanOut, nonlinearity: .relu, using: &rng)
        let std = (k.scalars.map { $0 * $0 }.reduce(0, +) / Float(k.count)).squareRoot()
        #expect(abs(std - (2 / Float(256 * 9)).squareRoot()) < 0.002)
        let x = Init.xavierUniform([30, 20], using: &rng)
        #expect(x.scalars.allSatisfy { abs($0) <= (6 / Float(50)).squareRoot() })
    }
}
