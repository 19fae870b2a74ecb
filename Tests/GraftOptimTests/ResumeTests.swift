import Foundation
import Testing
import GraftCore
import GraftNN
@testable import GraftOptim

/// Saving and restoring optimizer and plateau state: a resumed run continues bit-identically.
@Suite enum ResumeTests {}

/// A small MLP (dotted parameter names, `layers.0.weight` …) with its body and head in separate groups.
private struct Run {
    let model: MLP
    let optimizer: any Optimizer

    init(_ make: ([ParameterGroup]) throws -> any Optimizer, options: GroupOptions) throws {
        var rng = RandomGenerator(seed: 3)
        model = MLP(sizes: [4, 8, 3], using: &rng)
        let named = model.namedParameters()
        var head = options
        head.learningRate *= 2
        optimizer = try make([ParameterGroup(name: "body", parameters: Array(named.prefix(2)), options: options),
                              ParameterGroup(name: "head", parameters: Array(named.suffix(2)), options: head)])
    }

    /// One step of cross-entropy on a fixed batch that changes with `step`.
    func step(_ step: Int) {
        let x = Tensor((0..<24).map { sin(Float($0 * 3 + step)) }, shape: [6, 4])
        optimizer.zeroGradients()
        Tensor.crossEntropy(model(x), targets: (0..<6).map { ($0 + step) % 3 }).backward()
        optimizer.step()
    }

    var weightBits: [[UInt32]] { model.namedParameters().map { $0.1.scalars.map(\.bitPattern) } }

    func copyWeights(from other: Run) {
        for ((_, to), (_, from)) in zip(model.namedParameters(), other.model.namedParameters()) {
            to.pointer.update(from: from.pointer, count: from.count)
        }
    }
}

extension ResumeTests {
    @Suite struct OptimizerState {
        static var cases: [(String, ([ParameterGroup]) throws -> any Optimizer, GroupOptions)] {
            var sgd = GroupOptions(learningRate: 0.1)
            (sgd.momentum, sgd.dampening, sgd.weightDecay) = (0.9, 0.1, 0.01)
            var adam = GroupOptions(learningRate: 0.01)
            adam.weightDecay = 0.01
            var rms = GroupOptions(learningRate: 0.01)
            (rms.centered, rms.momentum, rms.alpha, rms.weightDecay) = (true, 0.5, 0.9, 0.01)
            return [("SGD momentum", { try SGD(groups: $0) }, sgd), ("Adam", { try Adam(groups: $0) }, adam),
                    ("AdamW", { try AdamW(groups: $0) }, adam), ("AdamW AMSGrad", { try AdamW(groups: $0, amsgrad: true) }, adam),
                    ("RMSprop centered momentum", { try RMSprop(groups: $0) }, rms)]
        }

        @Test func resumedRunIsBitIdentical() throws {
            for (kind, make, options) in Self.cases {
                let uninterrupted = try Run(make, options: options)
                for s in 0..<5 { uninterrupted.step(s) }
                let saved = uninterrupted.optimizer.namedState()
                #expect(!saved.isEmpty, "\(kind)")

                let resumed = try Run(make, options: options)
                resumed.copyWeights(from: uninterrupted)
                try resumed.optimizer.loadState(saved)
                // Both continue; `saved` still holds the first run's live tensors, so a load that kept them instead
                // of copying would see every update twice.
                for s in 5..<10 {
                    uninterrupted.step(s)
                    resumed.step(s)
                }
                #expect(resumed.weightBits == uninterrupted.weightBits, "\(kind)")
                let a = uninterrupted.optimizer.namedState(), b = resumed.optimizer.namedState()
                #expect(a.map(\.0) == b.map(\.0), "\(kind)")
                #expect(a.map { $0.1.scalars.map(\.bitPattern) } == b.map { $0.1.scalars.map(\.bitPattern) }, "\(kind)")
            }
        }

        @Test func loadingNothingClearsTheState() throws {
            let run = try Run({ try Adam(groups: $0) }, options: GroupOptions(learningRate: 0.01))
            run.step(0)
            try run.optimizer.loadState([])
            #expect(run.optimizer.namedState().isEmpty)
        }

        func error(_ optimizer: any Optimizer, _ state: [(String, Tensor)]) -> OptimizerStateError? {
            do { try optimizer.loadState(state); return nil } catch let e as OptimizerStateError { return e } catch {
                return nil
            }
        }

        @Test func badNamesAndShapesAreErrorsNamingTheTensor() throws {
            let run = try Run({ try Adam(groups: $0) }, options: GroupOptions(learningRate: 0.01))
            let adam = run.optimizer, w = Tensor.zeros([8, 4]), step = Tensor(scalar: 3)
            let known = ["exp_avg", "exp_avg_sq", "step"], p = "layers.0.weight"
            let cases: [([(String, Tensor)], OptimizerStateError)] = [
                ([("layers.1.weight.exp_avg", w)],
                 .unknownParameter(tensor: "layers.1.weight.exp_avg", parameter: "layers.1.weight")),
                ([("\(p).momentum_buffer", w)],
                 .unknownSlot(tensor: "\(p).momentum_buffer", slot: "momentum_buffer", known: known)),
                ([("\(p).max_exp_avg_sq", w)], .unknownSlot(tensor: "\(p).max_exp_avg_sq", slot: "max_exp_avg_sq", known: known)),
                ([("\(p).exp_avg", Tensor.zeros([4, 8]))], .shapeMismatch(tensor: "\(p).exp_avg", expected: [8, 4], found: [4, 8])),
                ([("\(p).step", Tensor.zeros([1]))], .shapeMismatch(tensor: "\(p).step", expected: [], found: [1])),
                ([("\(p).step", Tensor(scalar: -1))], .invalidStep(tensor: "\(p).step", value: -1)),
                ([("\(p).step", Tensor(scalar: 1.5))], .invalidStep(tensor: "\(p).step", value: 1.5)),
                ([("exp_avg", w)], .malformedName("exp_avg")),
                ([(".exp_avg", w)], .malformedName(".exp_avg")),
                ([("layers.0.weight.step", step), ("layers.0.weight.step", step)], .duplicate("layers.0.weight.step")),
            ]
            for (state, expected) in cases {
                #expect(error(adam, state) == expected)
                let text = expected.description
                #expect(text.contains("'\(state.last!.0)'") && !text.contains("\n"), "\(text)")
            }
            #expect(error(adam, [("layers.0.weight.step", Tensor(scalar: .nan))]) != nil)
            #expect(try error(SGD(groups: adam.groups), [("layers.0.weight.step", step)])
                    == .unknownSlot(tensor: "layers.0.weight.step", slot: "step", known: ["momentum_buffer"]))
            #expect(try error(AdamW(groups: adam.groups, amsgrad: true), [("layers.0.weight.max_exp_avg_sq", w)]) == nil)
            #expect(OptimizerStateError.shapeMismatch(tensor: "a.b", expected: [2], found: [3]).description
                    == "optimizer state 'a.b' has shape [3], expected [2]")
        }

        @Test func failedLoadLeavesTheStateAlone() throws {
            let run = try Run({ try RMSprop(groups: $0) }, options: GroupOptions(learningRate: 0.01))
            run.step(0)
            let before = run.optimizer.namedState().map { ($0.0, $0.1.scalars) }
            // The first entry is valid and would replace a slot; the second fails.
            let bad = [("layers.0.weight.square_avg", Tensor.ones([8, 4])), ("layers.0.bias.square_avg", Tensor.ones([4]))]
            #expect(error(run.optimizer, bad) == .shapeMismatch(tensor: "layers.0.bias.square_avg", expected: [8], found: [4]))
            let after = run.optimizer.namedState().map { ($0.0, $0.1.scalars) }
            #expect(after.map(\.0) == before.map(\.0) && after.map(\.1) == before.map(\.1))
        }
    }
}

extension ResumeTests {
    @Suite struct LearningRate {
        func groups() -> [ParameterGroup] {
            [ParameterGroup(name: "body", parameters: [("w", Tensor([1, 2], shape: [2]))], options: GroupOptions(learningRate: 0.1)),
             ParameterGroup(name: "head", parameters: [("b", Tensor([3], shape: [1]))], options: GroupOptions(learningRate: 0.1))]
        }

        @Test func setsOneGroupsRateAndTheStepUsesIt() throws {
            let opt = try SGD(groups: groups())
            try opt.setLearningRate(0.5, group: 1)
            #expect(opt.groups.map(\.options.learningRate) == [0.1, 0.5])
            try opt.setLearningRate(0, group: 0)
            let w = opt.groups[0].parameters[0].1, b = opt.groups[1].parameters[0].1
            w.grad = Tensor([1, 1], shape: [2])
            b.grad = Tensor([1], shape: [1])
            opt.step()
            #expect(w.scalars == [1, 2] && b.scalars == [2.5])
        }

        @Test func badRateOrGroupThrowsAndChangesNothing() throws {
            let opt = try SGD(groups: groups())
            for rate in [-0.1, .nan, .infinity] as [Float] {
                #expect(throws: OptimizerError.invalidOption(group: "head", option: "learning rate", value: "\(rate)",
                                                             requirement: "must be finite and ≥ 0")) {
                    try opt.setLearningRate(rate, group: 1)
                }
            }
            #expect(throws: OptimizerError.noSuchGroup(index: 2, count: 2)) { try opt.setLearningRate(0.1, group: 2) }
            #expect(throws: OptimizerError.noSuchGroup(index: -1, count: 2)) { try opt.setLearningRate(0.1, group: -1) }
            #expect(opt.groups.map(\.options.learningRate) == [0.1, 0.1])
            #expect(OptimizerError.noSuchGroup(index: 2, count: 2).description == "no parameter group 2 (the optimizer has 2)")
        }
    }
}

extension ResumeTests {
    @Suite struct PlateauState {
        func plateau(_ mode: ReduceOnPlateau.Mode = .min) throws -> ReduceOnPlateau {
            try ReduceOnPlateau(learningRate: 0.1, mode: mode, factor: 0.5, patience: 1, cooldown: 1, minLR: 0.01)
        }

        func roundTrip(_ state: ReduceOnPlateau.State) throws -> ReduceOnPlateau.State {
            try JSONDecoder().decode(ReduceOnPlateau.State.self, from: JSONEncoder().encode(state))
        }

        @Test func restoredPlateauContinuesWithTheSameRates() throws {
            let metrics: [Float] = [1, 0.9, 0.95, 0.97, 0.96, 0.99, 0.8, 0.85, 0.86, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96]
            let original = try plateau()
            for m in metrics.prefix(8) { original.step(metric: m) }
            #expect(original.rate == Double(Float(0.1)) / 2 && original.badSteps == 1 && original.steps == 8)
            let restored = try plateau()
            restored.state = try roundTrip(original.state)
            #expect(restored.state == original.state)
            for m in metrics.dropFirst(8) {
                #expect(restored.step(metric: m) == original.step(metric: m))
                #expect(restored.state == original.state)
            }
            #expect(original.rate == 0.01, "the sequence should reach the floor")
        }

        @Test func infiniteBestSurvivesJSON() throws {
            for mode in [ReduceOnPlateau.Mode.min, .max] {
                let fresh = try plateau(mode).state
                #expect(fresh.best == (mode == .min ? .infinity : -.infinity))
                #expect(try roundTrip(fresh) == fresh)
                let json = try String(decoding: JSONEncoder().encode(fresh), as: UTF8.self)
                #expect(json.contains(mode == .min ? "\"inf\"" : "\"-inf\""), "\(json)")
            }
            let nan = ReduceOnPlateau.State(rate: 0.1, best: .nan, badSteps: 0, cooldownLeft: 0, steps: 0)
            #expect(try roundTrip(nan).best.isNaN)
            let finite = ReduceOnPlateau.State(rate: 0.025, best: 0.3, badSteps: 1, cooldownLeft: 2, steps: 9)
            #expect(try roundTrip(finite) == finite)
        }

        @Test func corruptStateIsADecodingError() {
            for json in [#"{"rate": 0.1, "best": "infinity", "badSteps": 0, "cooldownLeft": 0, "steps": 0}"#,
                         #"{"rate": 0.1, "best": 1, "badSteps": -1, "cooldownLeft": 0, "steps": 0}"#,
                         #"{"rate": -0.1, "best": 1, "badSteps": 0, "cooldownLeft": 0, "steps": 0}"#,
                         #"{"rate": 0.1, "best": 1, "badSteps": 0, "cooldownLeft": 0}"#] {
                #expect(throws: DecodingError.self, "\(json)") {
                    try JSONDecoder().decode(ReduceOnPlateau.State.self, from: Data(json.utf8))
                }
            }
        }
    }
}
