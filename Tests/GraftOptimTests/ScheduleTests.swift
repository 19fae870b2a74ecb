import Foundation
import Testing
@testable import GraftOptim

/// Learning rates recorded from PyTorch / Hugging Face by Fixtures/make_schedule_fixtures.py.
private struct Fixture: Decodable {
    struct Case: Decodable {
        var name: String
        var kind: String
        var base: Float
        var options: [String: Option]
        var metrics: [Double]?
        var lrs: [Double]
    }

    enum Option: Decodable {
        case number(Double), text(String), list([Int]), flag(Bool)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .flag(b) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else if let s = try? c.decode(String.self) { self = .text(s) }
            else { self = .list(try c.decode([Int].self)) }
        }
    }

    var cases: [Case]

    static let shared: Fixture = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/schedule_fixtures.json")
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()
}

extension Fixture.Case {
    func d(_ key: String) -> Double {
        guard case .number(let v)? = options[key] else { fatalError("\(name): no number \(key)") }
        return v
    }
    func i(_ key: String) -> Int { Int(d(key)) }
    func s(_ key: String) -> String {
        guard case .text(let v)? = options[key] else { fatalError("\(name): no string \(key)") }
        return v
    }
    func flag(_ key: String) -> Bool {
        guard case .flag(let v)? = options[key] else { fatalError("\(name): no flag \(key)") }
        return v
    }
    func ints(_ key: String) -> [Int] {
        guard case .list(let v)? = options[key] else { fatalError("\(name): no list \(key)") }
        return v
    }

    func schedule() throws -> any LearningRateSchedule {
        switch kind {
        case "step": return try StepDecay(stepSize: i("stepSize"), gamma: d("gamma"))
        case "multiStep": return try MultiStepDecay(milestones: ints("milestones"), gamma: d("gamma"))
        case "exponential": return try ExponentialDecay(gamma: d("gamma"))
        case "cosineAnnealing": return try CosineAnnealing(tMax: i("tMax"), etaMin: d("etaMin"))
        case "cosineWarmRestarts": return try CosineWarmRestarts(t0: i("t0"), tMult: i("tMult"), etaMin: d("etaMin"))
        case "cyclic":
            return try CyclicSchedule(baseLR: d("baseLR"), maxLR: d("maxLR"), stepSizeUp: i("stepSizeUp"),
                                      stepSizeDown: options["stepSizeDown"] == nil ? nil : i("stepSizeDown"),
                                      mode: s("mode"), gamma: d("gamma"))
        case "oneCycle":
            return try OneCycle(maxLR: d("maxLR"), totalSteps: i("totalSteps"), pctStart: d("pctStart"),
                                anneal: s("anneal"), divFactor: d("divFactor"), finalDivFactor: d("finalDivFactor"),
                                threePhase: flag("threePhase"))
        case "linearWarmupDecay": return try LinearWarmupDecay(warmupSteps: i("warmupSteps"), totalSteps: i("totalSteps"))
        case "cosineWarmup":
            return try CosineWarmup(warmupSteps: i("warmupSteps"), totalSteps: i("totalSteps"), numCycles: d("numCycles"))
        case "warmupCosineAnnealing":
            return try Warmup(steps: i("steps"), startFactor: d("startFactor"),
                              then: CosineAnnealing(tMax: i("tMax"), etaMin: d("etaMin")))
        case "warmupExponential":
            return try ExponentialDecay(gamma: d("gamma")).withWarmup(steps: i("steps"), startFactor: d("startFactor"))
        default: fatalError("unknown fixture kind \(kind)")
        }
    }
}

/// 1e-6 relative; exact zeros (HF warm-ups start at 0) are compared with a 1e-12 absolute floor.
private func close(_ got: Float, _ want: Double) -> Bool {
    abs(Double(got) - want) <= 1e-6 * abs(want) + 1e-12
}

@Suite struct ScheduleTests {
    static let scheduleCases = Fixture.shared.cases.filter { $0.kind != "plateau" }.map(\.name)
    static let plateauCases = Fixture.shared.cases.filter { $0.kind == "plateau" }.map(\.name)

    @Test func fixtureCoversEverySchedule() {
        let kinds = Set(Fixture.shared.cases.map(\.kind))
        #expect(kinds == ["step", "multiStep", "exponential", "cosineAnnealing", "cosineWarmRestarts", "cyclic",
                          "oneCycle", "linearWarmupDecay", "cosineWarmup", "warmupCosineAnnealing",
                          "warmupExponential", "plateau"])
        for c in Fixture.shared.cases { #expect(c.lrs.count >= 30, "\(c.name)") }
    }

    @Test(arguments: scheduleCases)
    func matchesPyTorch(_ name: String) throws {
        let c = Fixture.shared.cases.first { $0.name == name }!
        let schedule = try c.schedule()
        for (step, want) in c.lrs.enumerated() {
            let got = schedule.learningRate(base: c.base, step: step)
            #expect(close(got, want), "\(name) step \(step): \(got) vs PyTorch \(want)")
        }
    }

    @Test(arguments: plateauCases)
    func plateauMatchesPyTorch(_ name: String) throws {
        let c = Fixture.shared.cases.first { $0.name == name }!
        let plateau = try ReduceOnPlateau(
            learningRate: c.base, mode: c.s("mode"), factor: c.d("factor"), patience: c.i("patience"),
            threshold: c.d("threshold"), thresholdMode: c.s("thresholdMode"), cooldown: c.i("cooldown"),
            minLR: c.d("minLR"))
        for (k, (metric, want)) in zip(c.metrics!, c.lrs).enumerated() {
            let got = plateau.step(metric: Float(metric))
            #expect(close(got, want), "\(name) step \(k + 1) (metric \(metric)): \(got) vs PyTorch \(want)")
        }
        #expect(plateau.rate < Double(c.base), "\(name): the fixture should reduce at least once")
    }

    // MARK: ULMFiT slanted triangular: no PyTorch class; the paper's formula by hand.

    @Test func slantedTriangularByHand() throws {
        // T = 100, cut_frac = 0.1, ratio = 32, η_max = 0.01: cut = 10, decay length cut·(1/0.1 − 1) = 90.
        let s = try SlantedTriangular(totalSteps: 100, cutFrac: 0.1, ratio: 32)
        let lr: (Int) -> Float = { s.learningRate(base: 0.01, step: $0) }
        #expect(s.cut == 10)
        #expect(close(lr(0), 0.01 / 32))                          // p = 0
        #expect(close(lr(5), 0.01 * (1 + 0.5 * 31) / 32))         // p = 5/10 → 0.00515625
        #expect(close(lr(10), 0.01))                              // p = 1: the peak
        #expect(close(lr(55), 0.01 * (1 + 0.5 * 31) / 32))        // p = 1 − 45/90 = 0.5
        #expect(close(lr(82), 0.01 * (1 + 0.2 * 31) / 32))        // p = 1 − 72/90 = 0.2 → 0.00225
        #expect(close(lr(100), 0.01 / 32))                        // p = 0 at T
        #expect(close(lr(150), 0.01 / 32))                        // held after T
        #expect(close(lr(82), 0.00225))
    }

    @Test func slantedTriangularShape() throws {
        for (total, cutFrac, ratio) in [(100, 0.1, 32.0), (1000, 0.2, 10.0), (37, 0.3, 32.0)] {
            let s = try SlantedTriangular(totalSteps: total, cutFrac: cutFrac, ratio: ratio)
            let rates = (0...total).map { s.learningRate(base: 0.02, step: $0) }
            let peak = rates.indices.max { rates[$0] < rates[$1] }!
            #expect(peak == s.cut)
            #expect(close(rates[peak], 0.02))
            #expect(close(rates[0], 0.02 / ratio))
            #expect(rates.min()! >= Float(0.02 / ratio) * (1 - 1e-6))
            for t in 0..<s.cut { #expect(rates[t] < rates[t + 1]) }
            for t in s.cut..<total { #expect(rates[t] > rates[t + 1]) }
            if Double(total) * cutFrac == Double(s.cut) { #expect(close(rates[total], 0.02 / ratio)) }
            // The climb is `1/cutFrac − 1` times steeper than the decay ("slanted").
            let up = rates[1] - rates[0], down = rates[s.cut] - rates[s.cut + 1]
            #expect(abs(Double(up / down) - (1 / cutFrac - 1)) < 1e-3 * (1 / cutFrac))
        }
    }

    // MARK: Composition and small properties

    @Test func warmupHandsOverToTheWrappedScheduleAtItsStepZero() throws {
        let inner = try CosineAnnealing(tMax: 10)
        let s = try Warmup(steps: 4, startFactor: 0.25, then: inner)
        #expect(s.learningRate(base: 1, step: 0) == 0.25)
        #expect(s.learningRate(base: 1, step: 2) == 0.625)
        for t in 0...12 { #expect(s.learningRate(base: 1, step: 4 + t) == inner.learningRate(base: 1, step: t)) }
        let hf = try Warmup(steps: 5, then: ConstantSchedule())
        #expect(hf.learningRate(base: 0.1, step: 0) == 0)
        #expect(hf.learningRate(base: 0.1, step: 9) == 0.1)
    }

    @Test func factoriesAndDiscriminativeBases() throws {
        let s: any LearningRateSchedule = try .cosineWarmup(warmupSteps: 10, totalSteps: 100)
        #expect(s.learningRate(base: 1e-3, step: 10) == 1e-3)
        #expect(s.learningRate(base: 2e-5, step: 100) == 0)
        let exp: any LearningRateSchedule = try .exponential(gamma: 0.5)
        #expect(exp.learningRate(base: 0.4, step: 2) == 0.1)
        #expect(ConstantSchedule().learningRate(base: 0.3, step: 1000) == 0.3)
        let restarts = try CosineWarmRestarts(t0: 2, tMult: 3)
        #expect(restarts.position(step: 2) == (0, 6))
        #expect(restarts.position(step: 8) == (0, 18))
        #expect(restarts.position(step: 7) == (5, 6))
        // Past totalSteps OneCycle holds its last value instead of raising as PyTorch does.
        let one = try OneCycle(maxLR: 0.1, totalSteps: 20)
        #expect(one.learningRate(base: 0, step: 25) == one.learningRate(base: 0, step: 20))
    }

    @Test func invalidOptionsNameTheOptionAndValue() {
        func message(_ body: () throws -> Any) -> String {
            do { _ = try body(); return "no error" } catch { return "\(error)" }
        }
        let cases: [(String, () throws -> Any)] = [
            ("gamma = 0.0", { try StepDecay(stepSize: 3, gamma: 0) }),
            ("stepSize = 0", { try StepDecay(stepSize: 0) }),
            ("gamma = -0.5", { try ExponentialDecay(gamma: -0.5) }),
            ("milestones = [3, -1]", { try MultiStepDecay(milestones: [3, -1]) }),
            ("tMax = 0", { try CosineAnnealing(tMax: 0) }),
            ("etaMin = -0.1", { try CosineAnnealing(tMax: 5, etaMin: -0.1) }),
            ("t0 = -2", { try CosineWarmRestarts(t0: -2) }),
            ("tMult = 0", { try CosineWarmRestarts(t0: 2, tMult: 0) }),
            ("maxLR = -1.0", { try CyclicSchedule(baseLR: 0.1, maxLR: -1) }),
            ("mode = sawtooth", { try CyclicSchedule(baseLR: 0.1, maxLR: 1, mode: "sawtooth") }),
            ("pctStart = 1.0", { try OneCycle(maxLR: 0.1, totalSteps: 10, pctStart: 1) }),
            ("pctStart = 0.0", { try OneCycle(maxLR: 0.1, totalSteps: 10, pctStart: 0) }),
            ("pctStart = 0.05", { try OneCycle(maxLR: 0.1, totalSteps: 10, pctStart: 0.05) }),
            ("pctStart = 0.6", { try OneCycle(maxLR: 0.1, totalSteps: 10, pctStart: 0.6, threePhase: true) }),
            ("anneal = cosine", { try OneCycle(maxLR: 0.1, totalSteps: 10, anneal: "cosine") }),
            ("warmupSteps = 11", { try LinearWarmupDecay(warmupSteps: 11, totalSteps: 10) }),
            ("warmupSteps = 20", { try CosineWarmup(warmupSteps: 20, totalSteps: 10) }),
            ("cutFrac = 1.5", { try SlantedTriangular(totalSteps: 10, cutFrac: 1.5) }),
            ("ratio = 0.5", { try SlantedTriangular(totalSteps: 10, ratio: 0.5) }),
            ("startFactor = 2.0", { try Warmup(steps: 3, startFactor: 2, then: ConstantSchedule()) }),
            ("factor = 1.0", { try ReduceOnPlateau(learningRate: 0.1, factor: 1) }),
            ("mode = best", { try ReduceOnPlateau(learningRate: 0.1, mode: "best") }),
            ("minLR = -0.001", { try ReduceOnPlateau(learningRate: 0.1, minLR: -1e-3) }),
            ("gamma = nan", { try ExponentialDecay(gamma: .nan) }),
        ]
        for (expected, body) in cases {
            let text = message(body)
            #expect(text.contains("invalid option \(expected)"), "got: \(text)")
        }
    }
}
