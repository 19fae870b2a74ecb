import Testing
import GraftCore
import GraftNN
@testable import GraftOptim

@Suite struct Grouping {
    func model() -> SmallCNN {
        var rng = RandomGenerator(seed: 1)
        return SmallCNN(using: &rng)
    }

    @Test func patternsAndRestCoverEveryParameterOnce() throws {
        let m = model()
        let groups = try makeGroups(m, specs: [GroupSpec("head", .glob("fc.*"), learningRateMultiplier: 10),
                                               GroupSpec("norms", .regex("bn[0-9]\\.(weight|bias)")),
                                               GroupSpec("body", .rest)],
                                    base: GroupOptions(learningRate: 0.01))
        #expect(groups.map(\.name) == ["head", "norms", "body"])
        #expect(groups[0].parameters.map(\.0) == ["fc.weight", "fc.bias"])
        #expect(abs(groups[0].options.learningRate - 0.1) < 1e-7)
        #expect(groups[1].parameters.map(\.0) == ["bn1.weight", "bn1.bias", "bn2.weight", "bn2.bias"])
        #expect(groups.flatMap { $0.parameters.map(\.0) }.sorted() == m.namedParameters().map(\.0).sorted())
    }

    @Test func misuseIsAnErrorNamingThePattern() {
        let m = model(), base = GroupOptions(learningRate: 0.01)
        #expect(throws: GroupingError.matchesNothing(group: "head", selector: "glob 'classifier.*'")) {
            try makeGroups(m, specs: [GroupSpec("head", .glob("classifier.*")), GroupSpec("rest", .rest)], base: base)
        }
        #expect(throws: GroupingError.overlap(parameter: "fc.weight", groups: ["a", "b"])) {
            try makeGroups(m, specs: [GroupSpec("a", .glob("fc.*")), GroupSpec("b", .glob("*weight"))], base: base)
        }
        #expect(throws: GroupingError.self) { try makeGroups(m, specs: [GroupSpec("a", .glob("fc.*"))], base: base) }
        #expect(throws: GroupingError.negativeLearningRate(group: "a", value: -0.01)) {
            try makeGroups(m, specs: [GroupSpec("a", .rest, learningRateMultiplier: -1)], base: base)
        }
        #expect(throws: GroupingError.badPattern(group: "a", pattern: "^(?:fc[)$")) {
            try makeGroups(m, specs: [GroupSpec("a", .regex("fc["))], base: base)
        }
    }

    @Test func depthSelectorsFollowTheBlocks() throws {
        var rng = RandomGenerator(seed: 2)
        let resnet = ResNet(.resnet18, classes: 5, widthMultiplier: 0.25, smallImageStem: true, using: &rng)
        let groups = try makeGroups(resnet, blocks: resnet.blocks,
                                    specs: [GroupSpec("top", .topBlocks(2)), GroupSpec("body", .rest, frozen: true)],
                                    base: GroupOptions(learningRate: 0.1))
        #expect(groups[0].parameters.allSatisfy { $0.0.hasPrefix("layer4.") || $0.0.hasPrefix("fc.") })
        #expect(groups[0].parameters.contains { $0.0 == "layer4.1.conv2.weight" })
        #expect(groups[1].parameters.allSatisfy { !$0.1.requiresGrad } && groups[0].parameters.allSatisfy { $0.1.requiresGrad })
        let fraction = try makeGroups(resnet, blocks: resnet.blocks,
                                      specs: [GroupSpec("top", .topFraction(0.3)), GroupSpec("body", .rest)],
                                      base: GroupOptions(learningRate: 0.1))
        #expect(fraction[0].parameters.map(\.0) == groups[0].parameters.map(\.0), "30 % of 6 blocks rounds up to 2")
        #expect(throws: GroupingError.self) {
            try makeGroups(resnet, blocks: resnet.blocks, specs: [GroupSpec("x", .topBlocks(9))], base: GroupOptions(learningRate: 0.1))
        }
    }

    @Test func noDecayForBiasesAndNorms() {
        var base = GroupOptions(learningRate: 0.01)
        base.weightDecay = 0.05
        let groups = decayAndNoDecayGroups(model(), base: base)
        #expect(groups.map(\.name) == ["decay", "no_decay"])
        #expect(groups[0].parameters.map(\.0) == ["conv1.weight", "conv2.weight", "fc.weight"])
        #expect(groups[1].options.weightDecay == 0 && groups[0].options.weightDecay == 0.05)
    }

    @Test func discriminativeRates() throws {
        let decay = DiscriminativeRates.layerDecay(top: 1e-3, factor: 1 / 2.6, blocks: 3)
        #expect(abs(decay[2] - 1e-3) < 1e-12 && abs(decay[1] - 1e-3 / 2.6) < 1e-9 && abs(decay[0] - 1e-3 / 6.76) < 1e-9)
        let spread = DiscriminativeRates.spread(1e-5, 1e-3, blocks: 3)
        #expect(abs(spread[0] - 1e-5) < 1e-12 && abs(spread[1] - 1e-4) < 1e-9 && abs(spread[2] - 1e-3) < 1e-9)
        let m = model()
        let groups = try DiscriminativeRates.groups(m, blocks: m.blocks, rates: spread, base: GroupOptions(learningRate: 1))
        #expect(groups.map(\.name) == m.blocks.map(\.0))
        #expect(groups.map(\.options.learningRate) == spread)
        #expect(groups[2].parameters.map(\.0) == ["fc.weight", "fc.bias"])
    }
}

@Suite struct Freezing {
    @Test func frozenParametersGetNoGradientAndBatchNormStatsStayFixed() throws {
        var rng = RandomGenerator(seed: 3)
        let m = SmallCNN(using: &rng)
        let changed = try m.setFrozen(true, matching: "conv1.*")
        try m.setFrozen(true, matching: "bn1.*")
        #expect(changed == ["conv1.weight"])
        m.train()
        m.fixFrozenBatchNorm()
        #expect(!m.bn1.isTraining && m.bn2.isTraining)
        let before = m.bn1.runningMean.scalars
        let x = Tensor.randomNormal([4, 1, 28, 28], using: &rng)
        Tensor.crossEntropy(m(x), targets: [0, 1, 2, 3]).backward()
        #expect(m.conv1.weight.grad == nil && m.bn1.weight?.grad == nil)
        #expect(m.conv2.weight.grad != nil)
        #expect(m.bn1.runningMean.scalars == before)
        #expect(throws: GroupingError.self) { try m.setFrozen(true, matching: "decoder.*") }
        try m.setFrozen(false, matching: "conv1.*")
        #expect(m.conv1.weight.requiresGrad)
    }
}

@Suite struct OptimizerByName {
    @Test func knownNamesAndAClearErrorForOthers() throws {
        var rng = RandomGenerator(seed: 1)
        let m = SmallCNN(using: &rng)
        let groups = [ParameterGroup(name: "all", parameters: m.namedParameters(), options: GroupOptions(learningRate: 0.1))]
        #expect(try OptimizerKind(named: "AdamW").make(groups) is AdamW)
        #expect(try OptimizerKind(named: "sgd").make(groups) is SGD)
        #expect(throws: OptimizerError.unknownOptimizer("adamx")) { try OptimizerKind(named: "adamx") }
        #expect(OptimizerError.unknownOptimizer("adamx").description == "unknown optimizer 'adamx' (known: sgd, adam, adamw, rmsprop)")
    }
}
