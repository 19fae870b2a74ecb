import Foundation
import Testing
import GraftCore
@testable import GraftOptim

/// Parameter values after every step of torch.optim on a fixed gradient sequence (Fixtures/make_optimizer_fixtures.py).
private enum OptimizerFixture {
    nonisolated(unsafe) static let json: [String: Any] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/optimizer_steps.json")
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }()

    static func floats(_ any: Any?) -> [Float]? { (any as? [Double])?.map(Float.init) }

    static func pair(_ any: Any) -> (weight: [Float], bias: [Float]?) {
        let d = any as! [String: Any]
        return (floats(d["weight"])!, floats(d["bias"]))
    }

    static func testCase(_ name: String) -> [String: Any] {
        (json["cases"] as! [[String: Any]]).first { $0["name"] as! String == name }!
    }
}

/// Optimizers against torch.optim, per-group behaviour, validation and gradient clipping.
@Suite enum OptimizerTests {}

/// |a − b| ≤ atol + rtol·|b| for every element.
private func expectNear(_ a: [Float], _ b: [Float], rtol: Float = 1e-6, atol: Float = 1e-7, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count) elements", sourceLocation: sourceLocation)
    let worst = zip(a, b).enumerated().max { abs($0.1.0 - $0.1.1) < abs($1.1.0 - $1.1.1) }
    for (i, (x, y)) in zip(a, b).enumerated() where !(abs(x - y) <= atol + rtol * abs(y)) {
        Issue.record("\(what)[\(i)]: \(x) vs torch \(y) (worst index \(worst?.offset ?? -1))", sourceLocation: sourceLocation)
        return
    }
}

/// Two groups as the fixture's: `body` holds `weight` [3, 4], `head` holds `bias` [4].
private func fixtureGroups(_ options: GroupOptions, lrs: (Float, Float), wds: (Float, Float)) -> [ParameterGroup] {
    let initial = OptimizerFixture.pair(OptimizerFixture.json["initial"]!)
    let w = Tensor(initial.weight, shape: [3, 4]), b = Tensor(initial.bias!, shape: [4])
    var body = options, head = options
    (body.learningRate, body.weightDecay) = (lrs.0, wds.0)
    (head.learningRate, head.weightDecay) = (lrs.1, wds.1)
    return [ParameterGroup(name: "body", parameters: [("weight", w)], options: body),
            ParameterGroup(name: "head", parameters: [("bias", b)], options: head)]
}

extension OptimizerTests {
    @Suite struct TorchParity {
        /// Runs `make` on the fixture case's groups, feeding the fixture gradients, and compares every step.
        func check(_ name: String, atol: Float = 1e-7, sourceLocation: SourceLocation = #_sourceLocation,
                   configure: (inout GroupOptions, [String: Any]) -> Void = { _, _ in },
                   make: ([ParameterGroup]) throws -> any Optimizer) throws {
            let c = OptimizerFixture.testCase(name)
            let groupSpecs = c["groups"] as! [[String: Double]]
            var options = GroupOptions(learningRate: 0)
            configure(&options, c["options"] as! [String: Any])
            let groups = fixtureGroups(options, lrs: (Float(groupSpecs[0]["lr"]!), Float(groupSpecs[1]["lr"]!)),
                                       wds: (Float(groupSpecs[0]["weight_decay"]!), Float(groupSpecs[1]["weight_decay"]!)))
            let opt = try make(groups)
            let w = groups[0].parameters[0].1, b = groups[1].parameters[0].1
            let grads = (OptimizerFixture.json["grads"] as! [Any]).map(OptimizerFixture.pair)
            let after = (c["after"] as! [Any]).map(OptimizerFixture.pair)
            #expect(grads.count >= 20)
            for (s, (g, expected)) in zip(grads, after).enumerated() {
                w.grad = Tensor(g.weight, shape: [3, 4])
                b.grad = g.bias.map { Tensor($0, shape: [4]) }
                opt.step()
                expectNear(w.scalars, expected.weight, atol: atol, "\(name) step \(s + 1) weight", sourceLocation: sourceLocation)
                expectNear(b.scalars, expected.bias!, atol: atol, "\(name) step \(s + 1) bias", sourceLocation: sourceLocation)
            }
        }

        static func betas(_ o: inout GroupOptions, _ d: [String: Any]) {
            if let b = d["betas"] as? [Double] { o.betas = (Float(b[0]), Float(b[1])) }
        }

        @Test func sgdPlain() throws { try check("sgd_plain") { try SGD(groups: $0) } }

        @Test func sgdMomentumDampeningWeightDecay() throws {
            try check("sgd_momentum", configure: { o, _ in o.momentum = 0.9; o.dampening = 0.1 }) { try SGD(groups: $0) }
        }

        @Test func sgdNesterov() throws {
            try check("sgd_nesterov", configure: { o, _ in o.momentum = 0.8; o.nesterov = true }) { try SGD(groups: $0) }
        }

        @Test func adam() throws { try check("adam") { try Adam(groups: $0) } }

        @Test func adamWeightDecay() throws { try check("adam_wd") { try Adam(groups: $0) } }

        @Test func adamAMSGrad() throws {
            try check("adam_amsgrad", configure: Self.betas) { try Adam(groups: $0, amsgrad: true) }
        }

        @Test func adamW() throws { try check("adamw") { try AdamW(groups: $0) } }

        @Test func rmsprop() throws { try check("rmsprop", configure: { o, _ in o.alpha = 0.9 }) { try RMSprop(groups: $0) } }

        /// Centered RMSprop divides by √(E[g²] − E[g]²), which cancels; float32 rounding grows to ~2e-7 by step 23 here.
        /// A float64 run puts bias[3] at 0.00474577 after step 23: Graft has 0.00474586, torch float32 0.00474600.
        @Test func rmspropCenteredMomentum() throws {
            try check("rmsprop_centered_momentum", atol: 3e-7, configure: { o, _ in o.centered = true; o.momentum = 0.9; o.eps = 1e-6 }) {
                try RMSprop(groups: $0)
            }
        }
    }
}

/// A weight and a bias with constant gradients, each in its own group.
private func twoGroups(_ a: GroupOptions, _ b: GroupOptions, frozenB: Bool = false) -> [ParameterGroup] {
    let w = Tensor((0..<12).map { Float($0) * 0.1 - 0.5 }, shape: [3, 4])
    let bias = Tensor([0.3, -0.2, 0.1, 0.7], shape: [4])
    return [ParameterGroup(name: "body", parameters: [("body.weight", w)], options: a),
            ParameterGroup(name: "head", parameters: [("head.bias", bias)], options: b, frozen: frozenB)]
}

private func setGradients(_ groups: [ParameterGroup], step: Int) {
    for group in groups {
        for (_, p) in group.parameters {
            p.grad = Tensor((0..<p.count).map { sin(Float(step * 7 + $0)) }, shape: p.shape)
        }
    }
}

extension OptimizerTests {
    @Suite struct Groups {
        static var makers: [(String, ([ParameterGroup]) throws -> any Optimizer)] { [
            ("SGD", { try SGD(groups: $0) }), ("Adam", { try Adam(groups: $0) }),
            ("AdamW", { try AdamW(groups: $0) }), ("RMSprop", { try RMSprop(groups: $0) }),
        ] }

        @Test func frozenGroupIsBitIdenticalAndHasNoState() throws {
            for (kind, make) in Self.makers {
                var o = GroupOptions(learningRate: 0.1)
                o.momentum = kind == "SGD" || kind == "RMSprop" ? 0.5 : 0
                o.weightDecay = 0.01
                let groups = twoGroups(o, o, frozenB: true)
                let bias = groups[1].parameters[0].1
                let before = bias.scalars.map(\.bitPattern)
                let opt = try make(groups)
                for s in 0..<5 {
                    setGradients(groups, step: s)  // even a stray gradient on a frozen parameter must not move it
                    opt.step()
                }
                #expect(bias.scalars.map(\.bitPattern) == before, "\(kind)")
                let state = stateOf(opt)
                #expect(state["head.bias"] == nil, "\(kind) allocated state for a frozen parameter")
                #expect(state["body.weight"] != nil || kind == "SGD" && o.momentum == 0, "\(kind)")
            }
        }

        @Test func parameterWithoutGradientGetsNoState() throws {
            let groups = twoGroups(GroupOptions(learningRate: 0.1), GroupOptions(learningRate: 0.1))
            let opt = try Adam(groups: groups)
            groups[0].parameters[0].1.grad = Tensor([Float](repeating: 1, count: 12), shape: [3, 4])
            let before = groups[1].parameters[0].1.scalars
            opt.step()
            #expect(opt.state["head.bias"] == nil)
            #expect(opt.state["body.weight"]?["step"]?.item == 1)
            #expect(groups[1].parameters[0].1.scalars == before)
            #expect(opt.namedState().map(\.0) == ["body.weight.exp_avg", "body.weight.exp_avg_sq", "body.weight.step"])
        }

        @Test func zeroLearningRateDoesNotMove() throws {
            for (kind, make) in Self.makers {
                var zero = GroupOptions(learningRate: 0)
                zero.weightDecay = 0.1
                let groups = twoGroups(zero, GroupOptions(learningRate: 0.1))
                let w = groups[0].parameters[0].1, before = w.scalars
                let opt = try make(groups)
                for s in 0..<5 { setGradients(groups, step: s); opt.step() }
                #expect(w.scalars == before, "\(kind)")
                #expect(groups[1].parameters[0].1.scalars != twoGroups(zero, zero)[1].parameters[0].1.scalars, "\(kind)")
            }
        }

        @Test func doubleLearningRateMovesTwiceAsFar() throws {
            // Same starting values in both groups, so the displacements are directly comparable.
            let start: [Float] = [0.5, -0.25, 1, 0.125]
            let a = Tensor(start, shape: [4]), b = Tensor(start, shape: [4])
            let groups = [ParameterGroup(name: "slow", parameters: [("a", a)], options: GroupOptions(learningRate: 0.0625)),
                          ParameterGroup(name: "fast", parameters: [("b", b)], options: GroupOptions(learningRate: 0.125))]
            let opt = try SGD(groups: groups)
            let g: [Float] = [1, -2, 0.5, 4]
            a.grad = Tensor(g, shape: [4]); b.grad = Tensor(g, shape: [4])
            opt.step()
            for i in 0..<4 { #expect(b.scalars[i] - start[i] == 2 * (a.scalars[i] - start[i])) }
        }

        @Test func perGroupOptionsAreReadEveryStep() throws {
            let groups = twoGroups(GroupOptions(learningRate: 0.1), GroupOptions(learningRate: 0.1))
            let opt = try SGD(groups: groups)
            opt.groups[0].options.learningRate = 0
            opt.groups[1].frozen = true
            let before = groups.map { $0.parameters[0].1.scalars }
            setGradients(groups, step: 1)
            opt.step()
            #expect(groups.map { $0.parameters[0].1.scalars } == before)
            #expect(opt.stepCount == 1)
        }

        @Test func zeroGradientsDropsGradients() throws {
            let groups = twoGroups(GroupOptions(learningRate: 0.1), GroupOptions(learningRate: 0.1))
            let opt = try RMSprop(groups: groups)
            setGradients(groups, step: 0)
            opt.zeroGradients()
            #expect(groups.allSatisfy { $0.parameters.allSatisfy { $0.1.grad == nil } })
        }

        @Test func largeTensorsMatchSmallPath() throws {
            // Above the parallel grain the update runs in chunks; it must equal the same update run element by element.
            let n = 100_003
            let values = (0..<n).map { sin(Float($0)) }, grads = (0..<n).map { cos(Float($0) * 0.3) }
            var o = GroupOptions(learningRate: 0.01)
            o.weightDecay = 0.01
            let big = Tensor(values, shape: [n])
            let opt = try AdamW(groups: [ParameterGroup(name: "all", parameters: [("w", big)], options: o)])
            big.grad = Tensor(grads, shape: [n])
            opt.step(); opt.step()
            for i in [0, 1, 40_000, n - 1] {
                let small = Tensor([values[i]], shape: [1])
                let ref = try AdamW(groups: [ParameterGroup(name: "one", parameters: [("w", small)], options: o)])
                small.grad = Tensor([grads[i]], shape: [1])
                ref.step(); ref.step()
                #expect(small.item == big.scalars[i])
            }
        }
    }
}

private func stateOf(_ opt: any Optimizer) -> [String: [String: Tensor]] {
    switch opt {
    case let o as SGD: o.state
    case let o as Adam: o.state
    case let o as AdamW: o.state
    case let o as RMSprop: o.state
    default: [:]
    }
}

extension OptimizerTests {
    @Suite struct Validation {
        func error(_ make: () throws -> any Optimizer) -> OptimizerError? {
            do { _ = try make(); return nil } catch let e as OptimizerError { return e } catch { return nil }
        }

        func groups(_ edit: (inout GroupOptions) -> Void) -> [ParameterGroup] {
            var bad = GroupOptions(learningRate: 0.1)
            edit(&bad)
            return twoGroups(GroupOptions(learningRate: 0.1), bad)
        }

        @Test func invalidOptionsNameGroupAndValue() {
            let cases: [(String, String, () throws -> any Optimizer)] = [
                ("learning rate", "-0.1", { try SGD(groups: groups { $0.learningRate = -0.1 }) }),
                ("weight decay", "-0.5", { try Adam(groups: groups { $0.weightDecay = -0.5 }) }),
                ("momentum", "1.0", { try SGD(groups: groups { $0.momentum = 1 }) }),
                ("momentum", "-0.1", { try RMSprop(groups: groups { $0.momentum = -0.1 }) }),
                ("betas.0", "1.0", { try Adam(groups: groups { $0.betas = (1, 0.999) }) }),
                ("betas.1", "-0.5", { try AdamW(groups: groups { $0.betas = (0.9, -0.5) }) }),
                ("eps", "0.0", { try Adam(groups: groups { $0.eps = 0 }) }),
                ("eps", "-1e-08", { try RMSprop(groups: groups { $0.eps = -1e-8 }) }),
                ("nesterov", "momentum 0.0", { try SGD(groups: groups { $0.nesterov = true }) }),
                ("nesterov", "dampening 0.1", { try SGD(groups: groups { $0.nesterov = true; $0.momentum = 0.9; $0.dampening = 0.1 }) }),
            ]
            for (option, value, make) in cases {
                guard let e = error(make) else { Issue.record("no error for \(option) = \(value)"); continue }
                guard case let .invalidOption(group, o, _, _) = e else { Issue.record("\(e)"); continue }
                #expect(group == "head" && o == option, "\(e)")
                #expect(e.description.contains("'head'") && e.description.contains(value), "\(e.description)")
            }
            #expect(error { try SGD(groups: groups { $0.nesterov = true; $0.momentum = 0.9 }) } == nil)
        }

        @Test func parameterInTwoGroupsIsRejected() {
            let shared = Tensor([1, 2], shape: [2])
            let groups = [ParameterGroup(name: "a", parameters: [("x", shared)], options: GroupOptions(learningRate: 0.1)),
                          ParameterGroup(name: "b", parameters: [("y", shared)], options: GroupOptions(learningRate: 0.1))]
            let e = error { try Adam(groups: groups) }
            #expect(e == .duplicateParameter(name: "y", firstGroup: "a", secondGroup: "b"))
            #expect(e?.description == "parameter 'y' appears in parameter groups 'a' and 'b'")
            let sameName = [ParameterGroup(name: "a", parameters: [("x", shared)], options: GroupOptions(learningRate: 0.1)),
                            ParameterGroup(name: "b", parameters: [("x", Tensor([1], shape: [1]))],
                                           options: GroupOptions(learningRate: 0.1))]
            #expect(error { try SGD(groups: sameName) } == .duplicateParameter(name: "x", firstGroup: "a", secondGroup: "b"))
            #expect(error { try SGD(groups: []) } == .noGroups)
            #expect(error { try SGD(groups: [ParameterGroup(name: "e", parameters: [], options: GroupOptions(learningRate: 1))]) }
                    == .emptyGroup(group: "e"))
        }

        @Test func hyperParametersAsWritten() {
            #expect(decimalValue(0.999) == 0.999)
            #expect(decimalValue(0.9) == 0.9)
            #expect(decimalValue(1e-8) == 1e-8)
            #expect(decimalValue(3e-4) == 3e-4)
            #expect(decimalValue(250) == 250)
            #expect(decimalValue(Float(1) / 3) == 0.33333334)
        }
    }
}

extension OptimizerTests {
    @Suite struct Clipping {
        @Test func normClipsToMaxNormAndReturnsTotal() {
            // Gradients (3, 4) and (12): total 2-norm 13.
            let a = Tensor([0, 0], shape: [2]), b = Tensor([0], shape: [1]), none = Tensor([5], shape: [1])
            a.grad = Tensor([3, 4], shape: [2]); b.grad = Tensor([12], shape: [1])
            let total = clipGradientNorm([a, b, none], maxNorm: 6.5)
            #expect(total == 13)
            let scale: Float = 6.5 / (13 + 1e-6)
            #expect(a.grad!.scalars == [3 * scale, 4 * scale])
            #expect(b.grad!.scalars == [12 * scale])
            #expect(none.grad == nil)
        }

        @Test func normBelowMaxLeavesGradientsAlone() {
            let a = Tensor([0, 0], shape: [2])
            let g = Tensor([3, 4], shape: [2])
            a.grad = g
            #expect(clipGradientNorm([a], maxNorm: 10) == 5)
            #expect(a.grad === g)
        }

        @Test func otherNorms() {
            let a = Tensor([0, 0, 0], shape: [3])
            a.grad = Tensor([1, -3, 2], shape: [3])
            #expect(clipGradientNorm([a], maxNorm: 100, normType: .infinity) == 3)
            #expect(clipGradientNorm([a], maxNorm: 100, normType: 1) == 6)
            #expect(abs(clipGradientNorm([a], maxNorm: 100, normType: 3) - Float(pow(36.0, 1.0 / 3))) < 1e-6)
            clipGradientNorm([a], maxNorm: 1.5, normType: .infinity)
            let s: Float = 1.5 / (3 + 1e-6)
            #expect(a.grad!.scalars == [1 * s, -3 * s, 2 * s])
        }

        @Test func sharedGradientStorageIsNotClippedTwice() {
            let shared = Tensor([3, 4], shape: [2])
            let a = Tensor([0, 0], shape: [2]), b = Tensor([0, 0], shape: [2])
            a.grad = shared; b.grad = shared.detached()
            let total = clipGradientNorm([a, b], maxNorm: 1)
            #expect(abs(total - Float(50.0.squareRoot())) < 1e-5)
            let s = 1 / (total + 1e-6)
            #expect(shared.scalars == [3, 4])
            #expect(a.grad!.scalars == [3 * s, 4 * s] && b.grad!.scalars == [3 * s, 4 * s])
            clipGradientValue([a, b], limit: 0.5)
            #expect(shared.scalars == [3, 4])
        }

        @Test func valueClampsElementwise() {
            let shared = Tensor([-2, 0.25, 3, -0.5], shape: [4])
            let a = Tensor([0, 0, 0, 0], shape: [4])
            a.grad = shared
            clipGradientValue([a], limit: 0.5)
            #expect(a.grad!.scalars == [-0.5, 0.25, 0.5, -0.5])
            #expect(shared.scalars == [-2, 0.25, 3, -0.5])
        }
    }
}
