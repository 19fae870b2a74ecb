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
    /// The momentum (SGD, RMSprop) or β₁ (Adam) a schedule that cycles it sets at `step`; nil leaves the optimizer's.
    func momentum(step: Int) -> Float?
}

extension LearningRateSchedule {
    public func momentum(step: Int) -> Float? { nil }
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

    /// The wrapped schedule's momentum, held at its first value during the warm-up.
    public func momentum(step: Int) -> Float? { schedule.momentum(step: max(step - steps, 0)) }

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
