import Foundation
import GraftCore

/// A learning-rate schedule as a value: the rate after `step` scheduler steps, given the group's base rate.
///
/// `step` counts scheduler steps taken so far, from 0, like PyTorch's `last_epoch` after each `scheduler.step()`:
/// step 0 is the rate the optimizer uses before the first `scheduler.step()`. Schedules are closed forms (no state),
/// so one value serves every parameter group (discriminative rates pass their own `base`) and resuming from a
/// checkpoint only needs the step count. Arithmetic is done in `Double` (as PyTorch does in Python floats).
///
/// Cyclic, one-cycle and plateau schedules carry their own absolute rates, as their PyTorch classes do; they
/// ignore `base` (see each type).
public protocol LearningRateSchedule: Sendable {
    func learningRate(base: Float, step: Int) -> Float
}

/// An invalid schedule option, naming the option and the value given.
public struct ScheduleError: Error, CustomStringConvertible, Equatable {
    public var schedule: String
    public var option: String
    public var value: String
    public var requirement: String

    public init(_ schedule: String, _ option: String, _ value: Any, _ requirement: String) {
        self.schedule = schedule
        self.option = option
        self.value = "\(value)"
        self.requirement = requirement
    }

    /// The option and value are cut to `excerptLimit` characters: from a recipe, either may be the user's text.
    public var description: String {
        "\(schedule): invalid option \(excerpt(option)) = \(excerpt(value)) (\(requirement))"
    }
}

/// Throws unless `ok`; NaN fails every check written as `!(x > 0)` style conditions by the callers.
@inline(__always)
func require(_ ok: Bool, _ schedule: String, _ option: String, _ value: Any, _ requirement: String) throws {
    if !ok { throw ScheduleError(schedule, option, value, requirement) }
}

// MARK: - Decays (torch.optim.lr_scheduler)

/// The base rate at every step.
public struct ConstantSchedule: LearningRateSchedule {
    public init() {}
    public func learningRate(base: Float, step: Int) -> Float { base }
}

/// `base · gamma^⌊step / stepSize⌋` (PyTorch `StepLR`).
public struct StepDecay: LearningRateSchedule {
    public let stepSize: Int
    public let gamma: Double

    public init(stepSize: Int, gamma: Double = 0.1) throws {
        try require(stepSize > 0, "step", "stepSize", stepSize, "must be > 0")
        try require(gamma > 0, "step", "gamma", gamma, "must be > 0")
        self.stepSize = stepSize
        self.gamma = gamma
    }

    public func learningRate(base: Float, step: Int) -> Float {
        Float(Double(base) * pow(gamma, Double(max(step, 0) / stepSize)))
    }
}

/// `base · gamma^(milestones ≤ step)` (PyTorch `MultiStepLR`). Milestones may come in any order; a milestone listed
/// twice decays twice, as PyTorch's `Counter` of milestones does.
public struct MultiStepDecay: LearningRateSchedule {
    public let milestones: [Int]
    public let gamma: Double

    public init(milestones: [Int], gamma: Double = 0.1) throws {
        for m in milestones { try require(m >= 0, "multiStep", "milestones", milestones, "must be ≥ 0") }
        try require(gamma > 0, "multiStep", "gamma", gamma, "must be > 0")
        self.milestones = milestones.sorted()
        self.gamma = gamma
    }

    public func learningRate(base: Float, step: Int) -> Float {
        let passed = milestones.prefix { $0 <= step }.count
        return Float(Double(base) * pow(gamma, Double(passed)))
    }
}

/// `base · gamma^step` (PyTorch `ExponentialLR`).
public struct ExponentialDecay: LearningRateSchedule {
    public let gamma: Double

    public init(gamma: Double) throws {
        try require(gamma > 0, "exponential", "gamma", gamma, "must be > 0")
        self.gamma = gamma
    }

    public func learningRate(base: Float, step: Int) -> Float {
        Float(Double(base) * pow(gamma, Double(max(step, 0))))
    }
}

/// PyTorch `CosineAnnealingLR`, closed form: `etaMin + (base − etaMin)(1 + cos(π·step/tMax))/2`.
/// Like PyTorch it does not stop at `tMax`: the cosine keeps going and the rate climbs back towards `base`.
public struct CosineAnnealing: LearningRateSchedule {
    public let tMax: Int
    public let etaMin: Double

    public init(tMax: Int, etaMin: Double = 0) throws {
        try require(tMax > 0, "cosineAnnealing", "tMax", tMax, "must be > 0")
        try require(etaMin >= 0, "cosineAnnealing", "etaMin", etaMin, "must be ≥ 0")
        self.tMax = tMax
        self.etaMin = etaMin
    }

    public func learningRate(base: Float, step: Int) -> Float {
        Float(cosineBetween(etaMin, Double(base), Double(step) / Double(tMax)))
    }
}

/// `low + (high − low)(1 + cos(π·fraction))/2`: `high` at fraction 0, `low` at fraction 1.
@inline(__always)
func cosineBetween(_ low: Double, _ high: Double, _ fraction: Double) -> Double {
    low + (high - low) * (1 + cos(Double.pi * fraction)) / 2
}

/// SGDR (PyTorch `CosineAnnealingWarmRestarts`): cosine from `base` to `etaMin` over `t0` steps, then restart at
/// `base`; each period is `tMult` times the previous one.
public struct CosineWarmRestarts: LearningRateSchedule {
    public let t0: Int
    public let tMult: Int
    public let etaMin: Double

    public init(t0: Int, tMult: Int = 1, etaMin: Double = 0) throws {
        try require(t0 > 0, "cosineWarmRestarts", "t0", t0, "must be > 0")
        try require(tMult >= 1, "cosineWarmRestarts", "tMult", tMult, "must be an integer ≥ 1")
        try require(etaMin >= 0, "cosineWarmRestarts", "etaMin", etaMin, "must be ≥ 0")
        self.t0 = t0
        self.tMult = tMult
        self.etaMin = etaMin
    }

    /// Position inside the current period and that period's length, in exact integer arithmetic (PyTorch's
    /// step-by-step bookkeeping; its `log`-based form for explicit epochs can misplace a restart by rounding).
    public func position(step: Int) -> (tCur: Int, period: Int) {
        var tCur = max(step, 0), period = t0
        if tMult == 1 { return (tCur % t0, t0) }
        while tCur >= period {
            tCur -= period
            period *= tMult
        }
        return (tCur, period)
    }

    public func learningRate(base: Float, step: Int) -> Float {
        let (tCur, period) = position(step: step)
        return Float(cosineBetween(etaMin, Double(base), Double(tCur) / Double(period)))
    }
}

// MARK: - Hugging Face warm-up schedules

/// HF `get_linear_schedule_with_warmup`: 0 → `base` linearly over `warmupSteps`, then linearly down to 0 at
/// `totalSteps`, and 0 after.
public struct LinearWarmupDecay: LearningRateSchedule {
    public let warmupSteps: Int
    public let totalSteps: Int

    public init(warmupSteps: Int, totalSteps: Int) throws {
        try require(totalSteps > 0, "linearWarmupDecay", "totalSteps", totalSteps, "must be > 0")
        try require(warmupSteps >= 0, "linearWarmupDecay", "warmupSteps", warmupSteps, "must be ≥ 0")
        try require(warmupSteps <= totalSteps, "linearWarmupDecay", "warmupSteps", warmupSteps,
                    "warm-up must not be longer than totalSteps = \(totalSteps)")
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    public func learningRate(base: Float, step: Int) -> Float {
        let factor: Double
        if step < warmupSteps {
            factor = Double(step) / Double(max(1, warmupSteps))
        } else {
            factor = max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        }
        return Float(Double(base) * factor)
    }
}

/// HF `get_cosine_schedule_with_warmup`: 0 → `base` linearly over `warmupSteps`, then
/// `max(0, (1 + cos(2π·numCycles·progress))/2)`; `numCycles` 0.5 is a single half-cosine down to 0 at `totalSteps`.
public struct CosineWarmup: LearningRateSchedule {
    public let warmupSteps: Int
    public let totalSteps: Int
    public let numCycles: Double

    public init(warmupSteps: Int, totalSteps: Int, numCycles: Double = 0.5) throws {
        try require(totalSteps > 0, "cosineWarmup", "totalSteps", totalSteps, "must be > 0")
        try require(warmupSteps >= 0, "cosineWarmup", "warmupSteps", warmupSteps, "must be ≥ 0")
        try require(warmupSteps <= totalSteps, "cosineWarmup", "warmupSteps", warmupSteps,
                    "warm-up must not be longer than totalSteps = \(totalSteps)")
        try require(numCycles > 0, "cosineWarmup", "numCycles", numCycles, "must be > 0")
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.numCycles = numCycles
    }

    public func learningRate(base: Float, step: Int) -> Float {
        if step < warmupSteps { return Float(Double(base) * Double(step) / Double(max(1, warmupSteps))) }
        let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
        return Float(Double(base) * max(0, 0.5 * (1 + cos(Double.pi * numCycles * 2 * progress))))
    }
}

// MARK: - Composition

/// Linear warm-up from `startFactor · base` to `base` over `steps`, then `then`.
///
/// Choice: after the warm-up the wrapped schedule starts from its own step 0 (it sees `step − steps`), so a
/// cosine over `tMax` steps still anneals over `tMax` steps and starts at `base`. This equals PyTorch's
/// `SequentialLR([LinearLR(start_factor, total_iters: steps), then], milestones: [steps])`.
/// `startFactor` may be 0 (HF style); PyTorch's `LinearLR` needs it > 0 only because it is computed by ratios.
public struct Warmup: LearningRateSchedule {
    public let steps: Int
    public let startFactor: Double
    public let schedule: any LearningRateSchedule

    public init(steps: Int, startFactor: Double = 0, then schedule: any LearningRateSchedule) throws {
        try require(steps >= 0, "warmup", "steps", steps, "must be ≥ 0")
        try require(startFactor >= 0 && startFactor <= 1, "warmup", "startFactor", startFactor,
                    "must be in [0, 1]")
        self.steps = steps
        self.startFactor = startFactor
        self.schedule = schedule
    }

    public func learningRate(base: Float, step: Int) -> Float {
        if step >= steps { return schedule.learningRate(base: base, step: step - steps) }
        let factor = startFactor + (1 - startFactor) * Double(max(step, 0)) / Double(steps)
        return Float(Double(base) * factor)
    }
}

// MARK: - Factories: `let s: some LearningRateSchedule = try .cosineAnnealing(tMax: 100)`

extension LearningRateSchedule where Self == ConstantSchedule {
    public static var constant: ConstantSchedule { ConstantSchedule() }
}

extension LearningRateSchedule where Self == StepDecay {
    public static func step(size: Int, gamma: Double = 0.1) throws -> StepDecay {
        try StepDecay(stepSize: size, gamma: gamma)
    }
}

extension LearningRateSchedule where Self == MultiStepDecay {
    public static func multiStep(milestones: [Int], gamma: Double = 0.1) throws -> MultiStepDecay {
        try MultiStepDecay(milestones: milestones, gamma: gamma)
    }
}

extension LearningRateSchedule where Self == ExponentialDecay {
    public static func exponential(gamma: Double) throws -> ExponentialDecay { try ExponentialDecay(gamma: gamma) }
}

extension LearningRateSchedule where Self == CosineAnnealing {
    public static func cosineAnnealing(tMax: Int, etaMin: Double = 0) throws -> CosineAnnealing {
        try CosineAnnealing(tMax: tMax, etaMin: etaMin)
    }
}

extension LearningRateSchedule where Self == CosineWarmRestarts {
    public static func cosineWarmRestarts(t0: Int, tMult: Int = 1, etaMin: Double = 0) throws -> CosineWarmRestarts {
        try CosineWarmRestarts(t0: t0, tMult: tMult, etaMin: etaMin)
    }
}

extension LearningRateSchedule where Self == LinearWarmupDecay {
    public static func linearWarmupDecay(warmupSteps: Int, totalSteps: Int) throws -> LinearWarmupDecay {
        try LinearWarmupDecay(warmupSteps: warmupSteps, totalSteps: totalSteps)
    }
}

extension LearningRateSchedule where Self == CosineWarmup {
    public static func cosineWarmup(warmupSteps: Int, totalSteps: Int, numCycles: Double = 0.5) throws
        -> CosineWarmup
    {
        try CosineWarmup(warmupSteps: warmupSteps, totalSteps: totalSteps, numCycles: numCycles)
    }
}

extension LearningRateSchedule {
    /// This schedule behind a linear warm-up (see `Warmup`).
    public func withWarmup(steps: Int, startFactor: Double = 0) throws -> Warmup {
        try Warmup(steps: steps, startFactor: startFactor, then: self)
    }
}

// MARK: - Reduce on plateau (stateful)

/// PyTorch `ReduceLROnPlateau`: multiply the rate by `factor` once the metric has not improved for more than
/// `patience` steps, then wait `cooldown` steps (bad steps not counted) before counting again; never below `minLR`.
///
/// Stateful, unlike the schedules above: call `step(metric:)` once per evaluation, and checkpoint `state`.
/// "Improved" means below `best · (1 − threshold)` (mode min, threshold mode rel), above `best · (1 + threshold)`
/// (max, rel), or `best ∓ threshold` (abs). As in PyTorch, a reduction smaller than 1e-8 is skipped.
public final class ReduceOnPlateau {
    public enum Mode: String, Sendable { case min, max }
    public enum ThresholdMode: String, Sendable { case rel, abs }

    public let mode: Mode
    public let factor: Double
    public let patience: Int
    public let threshold: Double
    public let thresholdMode: ThresholdMode
    public let cooldown: Int
    public let minLR: Double
    public let eps: Double = 1e-8

    /// The current rate, in Double as PyTorch keeps it.
    public private(set) var rate: Double
    public private(set) var best: Double
    public private(set) var badSteps = 0
    public private(set) var cooldownLeft = 0
    public private(set) var steps = 0

    public var learningRate: Float { Float(rate) }

    public init(learningRate: Float, mode: Mode = .min, factor: Double = 0.1, patience: Int = 10,
                threshold: Double = 1e-4, thresholdMode: ThresholdMode = .rel, cooldown: Int = 0,
                minLR: Double = 0) throws {
        let name = "reduceOnPlateau"
        try require(learningRate >= 0, name, "learningRate", learningRate, "must be ≥ 0")
        try require(factor >= 0 && factor < 1, name, "factor", factor, "must be in [0, 1)")
        try require(patience >= 0, name, "patience", patience, "must be ≥ 0")
        try require(threshold >= 0, name, "threshold", threshold, "must be ≥ 0")
        try require(cooldown >= 0, name, "cooldown", cooldown, "must be ≥ 0")
        try require(minLR >= 0, name, "minLR", minLR, "must be ≥ 0")
        self.rate = Double(learningRate)
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.thresholdMode = thresholdMode
        self.cooldown = cooldown
        self.minLR = minLR
        self.best = mode == .min ? .infinity : -.infinity
    }

    /// Same, with modes by name as a recipe spells them ("min"/"max", "rel"/"abs").
    public convenience init(learningRate: Float, mode: String, factor: Double = 0.1, patience: Int = 10,
                            threshold: Double = 1e-4, thresholdMode: String = "rel", cooldown: Int = 0,
                            minLR: Double = 0) throws {
        guard let m = Mode(rawValue: mode) else {
            throw ScheduleError("reduceOnPlateau", "mode", mode, "must be min or max")
        }
        guard let t = ThresholdMode(rawValue: thresholdMode) else {
            throw ScheduleError("reduceOnPlateau", "thresholdMode", thresholdMode, "must be rel or abs")
        }
        try self.init(learningRate: learningRate, mode: m, factor: factor, patience: patience, threshold: threshold,
                      thresholdMode: t, cooldown: cooldown, minLR: minLR)
    }

    func isBetter(_ a: Double) -> Bool {
        switch (mode, thresholdMode) {
        case (.min, .rel): a < best * (1 - threshold)
        case (.min, .abs): a < best - threshold
        case (.max, .rel): a > best * (1 + threshold)
        case (.max, .abs): a > best + threshold
        }
    }

    /// Record one metric value and return the rate to use from now on.
    @discardableResult
    public func step(metric: Float) -> Float {
        let current = Double(metric)
        steps += 1
        if isBetter(current) {
            best = current
            badSteps = 0
        } else {
            badSteps += 1
        }
        if cooldownLeft > 0 {
            cooldownLeft -= 1
            badSteps = 0  // bad steps during cooldown are ignored
        }
        if badSteps > patience {
            let reduced = Swift.max(rate * factor, minLR)
            if rate - reduced > eps { rate = reduced }
            cooldownLeft = cooldown
            badSteps = 0
        }
        return Float(rate)
    }
}

extension ReduceOnPlateau {
    /// Everything `step(metric:)` changes, for a checkpoint.
    public struct State: Codable, Equatable, Sendable {
        public var rate: Double
        /// ±infinity until the first metric arrives.
        public var best: Double
        public var badSteps: Int
        public var cooldownLeft: Int
        public var steps: Int

        public init(rate: Double, best: Double, badSteps: Int, cooldownLeft: Int, steps: Int) {
            (self.rate, self.best, self.badSteps, self.cooldownLeft, self.steps) =
                (rate, best, badSteps, cooldownLeft, steps)
        }

        private enum CodingKeys: String, CodingKey { case rate, best, badSteps, cooldownLeft, steps }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            rate = try c.decodeExtendedDouble(forKey: .rate)
            best = try c.decodeExtendedDouble(forKey: .best)
            badSteps = try c.decode(Int.self, forKey: .badSteps)
            cooldownLeft = try c.decode(Int.self, forKey: .cooldownLeft)
            steps = try c.decode(Int.self, forKey: .steps)
            for (key, ok) in [(CodingKeys.rate, rate >= 0), (.badSteps, badSteps >= 0),
                              (.cooldownLeft, cooldownLeft >= 0), (.steps, steps >= 0)] where !ok {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "must be ≥ 0")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeExtendedDouble(rate, forKey: .rate)
            try c.encodeExtendedDouble(best, forKey: .best)
            try c.encode(badSteps, forKey: .badSteps)
            try c.encode(cooldownLeft, forKey: .cooldownLeft)
            try c.encode(steps, forKey: .steps)
        }
    }

    /// The current state; setting it resumes from a saved one.
    public var state: State {
        get { State(rate: rate, best: best, badSteps: badSteps, cooldownLeft: cooldownLeft, steps: steps) }
        set {
            (rate, best, badSteps, cooldownLeft, steps) =
                (newValue.rate, newValue.best, newValue.badSteps, newValue.cooldownLeft, newValue.steps)
        }
    }
}

/// JSON has no infinity, and a plateau's `best` starts at ±∞: non-finite values are written as the strings
/// "inf", "-inf" and "nan", finite ones as plain numbers.
extension KeyedEncodingContainer {
    fileprivate mutating func encodeExtendedDouble(_ x: Double, forKey key: Key) throws {
        if x.isFinite { return try encode(x, forKey: key) }
        try encode(x.isNaN ? "nan" : x > 0 ? "inf" : "-inf", forKey: key)
    }
}

extension KeyedDecodingContainer {
    fileprivate func decodeExtendedDouble(forKey key: Key) throws -> Double {
        if let x = try? decode(Double.self, forKey: key) { return x }
        switch try decode(String.self, forKey: key) {
        case "inf": return .infinity
        case "-inf": return -.infinity
        case "nan": return .nan
        case let text:
            throw DecodingError.dataCorruptedError(forKey: key, in: self,
                                                   debugDescription: "'\(text)' is neither a number nor inf, -inf, nan")
        }
    }
}
