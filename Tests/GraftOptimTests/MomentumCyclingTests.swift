import Foundation
import GraftCore
import Testing
@testable import GraftOptim

/// PyTorch's OneCycleLR and CyclicLR with their default momentum cycling (Fixtures/make_momentum_fixtures.py).
private struct MomentumFixtures: Decodable {
    struct Case: Decodable {
        let name, kind: String
        let options: [String: Option]
        let lrs, momentums: [Double]
        let params: [[Float]]
    }
    enum Option: Decodable {
        case number(Double), text(String), flag(Bool)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .flag(b) } else if let d = try? c.decode(Double.self) { self = .number(d) } else {
                self = .text(try c.decode(String.self))
            }
        }
        var number: Double { if case let .number(d) = self { d } else { .nan } }
    }
    let cases: [Case]
}

private let fixtures: MomentumFixtures = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/momentum_fixtures.json")
    return try! JSONDecoder().decode(MomentumFixtures.self, from: Data(contentsOf: url))
}()

private func schedule(_ c: MomentumFixtures.Case) throws -> any LearningRateSchedule {
    let o = c.options
    func n(_ key: String) -> Double? { o[key].map(\.number) }
    func text(_ key: String, _ fallback: String) -> String { if case let .text(s)? = o[key] { s } else { fallback } }
    let three: Bool = { if case let .flag(b)? = o["threePhase"] { b } else { false } }()
    if c.kind == "oneCycle" {
        return try OneCycle(maxLR: n("maxLR")!, totalSteps: Int(n("totalSteps")!), anneal: text("anneal", "cos"),
                            threePhase: three, baseMomentum: n("baseMomentum")!, maxMomentum: n("maxMomentum")!)
    }
    return try CyclicSchedule(baseLR: n("baseLR")!, maxLR: n("maxLR")!, stepSizeUp: Int(n("stepSizeUp")!),
                              stepSizeDown: n("stepSizeDown").map { Int($0) }, mode: text("mode", "triangular"),
                              gamma: n("gamma") ?? 1, baseMomentum: n("baseMomentum")!, maxMomentum: n("maxMomentum")!)
}

@Suite struct MomentumCyclingTests {
    @Test(arguments: fixtures.cases.map(\.name))
    func ratesAndMomentumMatchPyTorch(name: String) throws {
        let c = fixtures.cases.first { $0.name == name }!
        let s = try schedule(c)
        for t in c.lrs.indices {
            #expect(abs(Double(s.learningRate(base: 0, step: t)) - c.lrs[t]) <= 1e-6 * max(1, c.lrs[t]), "\(name) lr at \(t)")
            #expect(abs(Double(s.momentum(step: t)!) - c.momentums[t]) <= 1e-6, "\(name) momentum at \(t)")
        }
    }

    /// The quadratic of the fixture, stepped as the trainer steps: rate and momentum from the schedule before each
    /// step. The parameters follow PyTorch's, which they would not with the momentum held fixed.
    @Test(arguments: fixtures.cases.map(\.name))
    func optimizerFollowsPyTorchWithCycledMomentum(name: String) throws {
        let c = fixtures.cases.first { $0.name == name }!
        let s = try schedule(c)
        let p = Tensor([1.5, -2.0, 0.5], shape: [3], requiresGrad: true)
        let target: [Float] = [0.3, 0.1, -0.4], weights: [Float] = [1, 3, 0.5]
        var options = GroupOptions(learningRate: 0.05)
        options.momentum = 0.9
        let group = ParameterGroup(name: "p", parameters: [("p", p)], options: options)
        let sgd = name.contains("sgd")
        let optimizer: any Optimizer = sgd ? try SGD(groups: [group]) : try Adam(groups: [group])
        for t in c.params.indices {
            try optimizer.setLearningRate(s.learningRate(base: 0, step: t), group: 0)
            optimizer.groups[0].options.momentum = s.momentum(step: t)!
            optimizer.groups[0].options.betas.0 = s.momentum(step: t)!
            p.grad = Tensor((0..<3).map { 2 * weights[$0] * (p.scalars[$0] - target[$0]) }, shape: [3])
            optimizer.step()
            for (ours, torch) in zip(p.scalars, c.params[t]) {
                #expect(abs(ours - torch) <= 1e-5 * max(1, abs(torch)), "\(name) step \(t + 1): \(p.scalars) vs \(c.params[t])")
            }
        }
    }

    @Test func cyclingCanBeTurnedOff() throws {
        #expect(try OneCycle(maxLR: 0.1, totalSteps: 10, cycleMomentum: false).momentum(step: 3) == nil)
        #expect(try CyclicSchedule(baseLR: 0.01, maxLR: 0.1, stepSizeUp: 4, cycleMomentum: false).momentum(step: 3) == nil)
        #expect(try CosineAnnealing(tMax: 10).momentum(step: 3) == nil)
        let warm = try Warmup(steps: 4, then: OneCycle(maxLR: 0.1, totalSteps: 10))
        #expect(warm.momentum(step: 2) == 0.95 && warm.momentum(step: 4) == 0.95)
        #expect(throws: ScheduleError.self) { try OneCycle(maxLR: 0.1, totalSteps: 10, maxMomentum: 1.5) }
    }
}
