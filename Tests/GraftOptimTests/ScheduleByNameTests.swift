import Testing
@testable import GraftOptim

private func options(_ owner: String, _ pairs: [(String, [String])]) -> NamedOptions {
    NamedOptions(owner, pairs.map { (key: $0.0, value: $0.1) })
}

private func rates(_ s: any LearningRateSchedule, steps: Int = 30) -> [Float] {
    (0..<steps).map { s.learningRate(base: 0.1, step: $0) }
}

private func perStep(_ name: String, _ pairs: [(String, [String])], total: Int = 30) throws -> any LearningRateSchedule {
    guard case let .perStep(s) = try ScheduleKind(named: name).make(options("schedule \(name)", pairs), totalSteps: total)
    else { throw ScheduleError(name, "kind", name, "expected a per-step schedule") }
    return s
}

@Suite struct ScheduleByNameTests {
    @Test func everyNameBuildsTheScheduleItsTypeGives() throws {
        let cases: [(String, [(String, [String])], any LearningRateSchedule)] = [
            ("constant", [], ConstantSchedule()),
            ("step", [("step-size", ["7"]), ("gamma", ["0.5"])], try StepDecay(stepSize: 7, gamma: 0.5)),
            ("multi-step", [("milestones", ["3", "9"])], try MultiStepDecay(milestones: [3, 9])),
            ("exponential", [("gamma", ["0.9"])], try ExponentialDecay(gamma: 0.9)),
            ("cosine", [("eta-min", ["0.001"])], try CosineAnnealing(tMax: 30, etaMin: 0.001)),
            ("cosine-restarts", [("t0", ["5"]), ("t-mult", ["2"])], try CosineWarmRestarts(t0: 5, tMult: 2)),
            ("cyclic", [("base-lr", ["0.01"]), ("max-lr", ["0.1"]), ("step-size-up", ["4"]), ("mode", ["triangular2"])],
             try CyclicSchedule(baseLR: 0.01, maxLR: 0.1, stepSizeUp: 4, mode: .triangular2)),
            ("one-cycle", [("max-lr", ["0.1"]), ("three-phase", ["true"])], try OneCycle(maxLR: 0.1, totalSteps: 30, threePhase: true)),
            ("linear-warmup", [("warmup-steps", ["5"])], try LinearWarmupDecay(warmupSteps: 5, totalSteps: 30)),
            ("cosine-warmup", [("warmup-steps", ["5"]), ("num-cycles", ["1"])], try CosineWarmup(warmupSteps: 5, totalSteps: 30, numCycles: 1)),
            ("slanted-triangular", [("ratio", ["16"])], try SlantedTriangular(totalSteps: 30, ratio: 16)),
            ("cosine", [("warmup-steps", ["4"])], try Warmup(steps: 4, then: CosineAnnealing(tMax: 30))),
        ]
        for (name, pairs, expected) in cases {
            #expect(rates(try perStep(name, pairs)) == rates(expected), "\(name) \(pairs)")
        }
    }

    @Test func plateauIsAMultiplierStartingAtOne() throws {
        guard case let .plateau(p) = try ScheduleKind(named: "plateau")
            .make(options("schedule plateau", [("patience", ["0"]), ("factor", ["0.5"]), ("mode", ["max"])]), totalSteps: 10)
        else { Issue.record("plateau did not give a plateau setting"); return }
        #expect(p.learningRate == 1 && p.mode == .max)
        p.step(metric: 0.5)
        p.step(metric: 0.4)
        #expect(p.learningRate == 0.5)
    }

    @Test func misuseIsAnErrorNamingTheOption() throws {
        func message(_ name: String, _ pairs: [(String, [String])]) -> String {
            do { _ = try ScheduleKind(named: name).make(options("schedule \(name)", pairs), totalSteps: 10); return "" } catch {
                return "\(error)"
            }
        }
        let unknownName = message("cosinus", [])
        #expect(unknownName.contains("cosinus") && unknownName.contains("slanted-triangular"))
        let misspelt = message("cosine", [("eta_min", ["0.1"])])
        #expect(misspelt.contains("eta_min") && misspelt.contains("unknown option") && misspelt.contains("eta-min"))
        #expect(message("step", []).contains("step-size") && message("step", []).contains("required"))
        #expect(message("step", [("step-size", ["ten"])]).contains("integer"))
        #expect(message("step", [("step-size", ["1", "2"])]).contains("one value"))
        #expect(message("step", [("step-size", ["0"])]) == "schedule step: invalid option step-size = 0 (must be > 0)")
        #expect(message("multi-step", [("milestones", ["3", "x"])]).contains("list of integers"))
        #expect(message("one-cycle", [("max-lr", ["0.1"]), ("three-phase", ["maybe"])]).contains("true or false"))
        #expect(message("exponential", [("gamma", ["nan"])]).contains("finite"))
        #expect(message("plateau", [("mode", ["up"])]).contains("min or max"))
    }

    /// The types' checks name their Swift parameters (`stepSize`); reached by name, as from a recipe, the message
    /// uses the names the user wrote (`step-size`), in the option and in the requirement alike.
    @Test func messagesUseTheRecipesNames() throws {
        func message(_ name: String, _ pairs: [(String, [String])], total: Int = 10) -> String {
            do { _ = try ScheduleKind(named: name).make(options("schedule \(name)", pairs), totalSteps: total); return "" } catch {
                return "\(error)"
            }
        }
        #expect(message("cosine", [("t-max", ["0"])]) == "schedule cosine: invalid option t-max = 0 (must be > 0)")
        #expect(message("cosine", [("eta-min", ["-1"])]) == "schedule cosine: invalid option eta-min = -1.0 (must be ≥ 0)")
        #expect(message("cosine-restarts", [("t0", ["2"]), ("t-mult", ["0"])])
                == "schedule cosine-restarts: invalid option t-mult = 0 (must be an integer ≥ 1)")
        #expect(message("cyclic", [("base-lr", ["0.1"]), ("max-lr", ["0.2"]), ("step-size-up", ["0"])])
                == "schedule cyclic: invalid option step-size-up = 0 (must be > 0)")
        #expect(message("one-cycle", [("max-lr", ["0.1"]), ("pct-start", ["0.01"]), ("three-phase", ["true"])])
                == "schedule one-cycle: invalid option pct-start = 0.01 (leaves an empty phase with total-steps = 10, three-phase)")
        #expect(message("linear-warmup", [("warmup-steps", ["20"])])
                == "schedule linear-warmup: invalid option warmup-steps = 20 (warm-up must not be longer than total-steps = 10)")
        #expect(message("slanted-triangular", [("cut-frac", ["0.05"])])
                == "schedule slanted-triangular: invalid option cut-frac = 0.05 (cut = ⌊total-steps · cut-frac⌋ must be ≥ 1 with total-steps = 10)")
        #expect(message("cosine", [("warmup-steps", ["-1"])]) == "schedule cosine: invalid option warmup-steps = -1 (must be ≥ 0)")
        #expect(message("cosine", [("warmup-steps", ["2"]), ("warmup-start-factor", ["2"])])
                == "schedule cosine: invalid option warmup-start-factor = 2.0 (must be in [0, 1])")
        #expect(message("plateau", [("min-factor", ["-1"])]) == "schedule plateau: invalid option min-factor = -1.0 (must be ≥ 0)")
        #expect(message("plateau", [("threshold-mode", ["up"])])
                == "schedule plateau: invalid option threshold-mode = up (must be rel or abs)")
        #expect(message("one-cycle", [("max-lr", ["0.1"]), ("anneal", ["cubic"])])
                == "schedule one-cycle: invalid option anneal = cubic (must be cos or linear)")
        // What the user wrote stays as written, even when it looks like a parameter.
        #expect(message("step", [("step-size", ["3"]), ("stepSize", ["3"])]).hasPrefix("schedule step: invalid option stepSize = 3 (unknown option"))
        // Outside recipes the types keep their Swift names.
        #expect(throws: ScheduleError("step", "stepSize", 0, "must be > 0")) { try StepDecay(stepSize: 0) }
    }

    @Test func aHugeValueIsQuotedInPart() throws {
        let huge = String(repeating: "9", count: 1_000_000)
        let text: String
        do { _ = try ScheduleKind(named: "step").make(options("schedule step", [("step-size", [huge])]), totalSteps: 10); text = "" } catch {
            text = "\(error)"
        }
        #expect(text == "schedule step: invalid option step-size = \(String(repeating: "9", count: 80))… (1000000 characters) (must be an integer)")
    }
}
