import Foundation

// Schedules that go up and then down: cyclical rates, one-cycle, and ULMFiT's slanted triangular rates.

/// PyTorch `CyclicLR` (Smith 2017): the rate runs `baseLR → maxLR` over `stepSizeUp` steps and back over
/// `stepSizeDown` (default: `stepSizeUp`), forever.
/// - `triangular`: every cycle has the full amplitude.
/// - `triangular2`: the amplitude halves every cycle.
/// - `expRange`: the amplitude is scaled by `gamma^step` (per step, not per cycle).
///
/// Like the PyTorch class, it sets absolute rates: the group's `base` is ignored (step 0 is `baseLR`). Use one
/// schedule per group for discriminative rates. As PyTorch does by default, the momentum (β₁ for Adam) cycles the
/// other way, `maxMomentum → baseMomentum` as the rate rises, with the same amplitude scaling; `cycleMomentum:
/// false` leaves it alone.
public struct CyclicSchedule: LearningRateSchedule {
    public enum Mode: String, Sendable { case triangular, triangular2, expRange = "exp_range" }

    public let baseLR: Double
    public let maxLR: Double
    public let stepSizeUp: Int
    public let stepSizeDown: Int
    public let mode: Mode
    public let gamma: Double
    /// The momentum range, nil without momentum cycling.
    public let momentumRange: (base: Double, max: Double)?

    public init(baseLR: Double, maxLR: Double, stepSizeUp: Int = 2000, stepSizeDown: Int? = nil,
                mode: Mode = .triangular, gamma: Double = 1, cycleMomentum: Bool = true, baseMomentum: Double = 0.8,
                maxMomentum: Double = 0.9) throws {
        try require(baseMomentum >= 0 && baseMomentum < 1, "cyclic", "baseMomentum", baseMomentum, "must be in [0, 1)")
        try require(maxMomentum >= 0 && maxMomentum < 1, "cyclic", "maxMomentum", maxMomentum, "must be in [0, 1)")
        momentumRange = cycleMomentum ? (baseMomentum, maxMomentum) : nil
        try require(baseLR >= 0, "cyclic", "baseLR", baseLR, "must be ≥ 0")
        try require(maxLR >= 0, "cyclic", "maxLR", maxLR, "must be ≥ 0")
        try require(stepSizeUp > 0, "cyclic", "stepSizeUp", stepSizeUp, "must be > 0")
        let down = stepSizeDown ?? stepSizeUp
        try require(down > 0, "cyclic", "stepSizeDown", down, "must be > 0")
        try require(gamma > 0, "cyclic", "gamma", gamma, "must be > 0")
        self.baseLR = baseLR
        self.maxLR = maxLR
        self.stepSizeUp = stepSizeUp
        self.stepSizeDown = down
        self.mode = mode
        self.gamma = gamma
    }

    /// Same, with the mode by name: "triangular", "triangular2" or "exp_range" (PyTorch's spelling; "expRange" too).
    public init(baseLR: Double, maxLR: Double, stepSizeUp: Int = 2000, stepSizeDown: Int? = nil, mode: String,
                gamma: Double = 1, cycleMomentum: Bool = true, baseMomentum: Double = 0.8, maxMomentum: Double = 0.9) throws {
        guard let m = Mode(rawValue: mode == "expRange" ? "exp_range" : mode) else {
            throw ScheduleError("cyclic", "mode", mode, "must be triangular, triangular2 or exp_range")
        }
        try self.init(baseLR: baseLR, maxLR: maxLR, stepSizeUp: stepSizeUp, stepSizeDown: stepSizeDown, mode: m,
                      gamma: gamma, cycleMomentum: cycleMomentum, baseMomentum: baseMomentum, maxMomentum: maxMomentum)
    }

    public func learningRate(base: Float, step: Int) -> Float {
        let (scale, amplitude) = position(step)
        return Float(baseLR + (maxLR - baseLR) * scale * amplitude)
    }

    public func momentum(step: Int) -> Float? {
        guard let (low, high) = momentumRange else { return nil }
        let (scale, amplitude) = position(step)
        return Float(high - (high - low) * scale * amplitude)
    }

    /// Where `step` is in its cycle (0 at the bottom, 1 at the top) and the cycle's amplitude, in PyTorch's
    /// expression order, so the float rounding matches too.
    private func position(_ step: Int) -> (scale: Double, amplitude: Double) {
        let t = Double(max(step, 0))
        let totalSize = Double(stepSizeUp + stepSizeDown)
        let stepRatio = Double(stepSizeUp) / totalSize
        let cycle = (1 + t / totalSize).rounded(.down)
        let x = 1 + t / totalSize - cycle
        let scale = x <= stepRatio ? x / stepRatio : (x - 1) / (stepRatio - 1)
        switch mode {
        case .triangular: return (scale, 1)
        case .triangular2: return (scale, 1 / pow(2, cycle - 1))
        case .expRange: return (scale, pow(gamma, t))
        }
    }
}

/// PyTorch `OneCycleLR` (Smith & Topin 2018): warm up from `maxLR / divFactor` to `maxLR` over the first
/// `pctStart` of `totalSteps`, then anneal to `maxLR / divFactor / finalDivFactor` at step `totalSteps − 1`.
/// With `threePhase`, the second phase returns to the initial rate symmetrically and a third one anneals to the
/// minimum.
///
/// As PyTorch does by default, the momentum (β₁ for Adam) moves against the rate over the same phases, from
/// `maxMomentum` to `baseMomentum` while the rate warms up and back while it anneals (`cycleMomentum: false` leaves
/// it alone).
///
/// Like the PyTorch class, it sets absolute rates: the group's `base` is ignored. PyTorch raises when stepped past
/// `totalSteps`; this schedule evaluates its formula up to step `totalSteps` (as PyTorch does) and holds that
/// value afterwards.
public struct OneCycle: LearningRateSchedule {
    public enum Anneal: String, Sendable { case cos, linear }

    public let maxLR: Double
    public let totalSteps: Int
    public let pctStart: Double
    public let anneal: Anneal
    public let divFactor: Double
    public let finalDivFactor: Double
    public let threePhase: Bool
    /// The momentum range, nil without momentum cycling.
    public let momentumRange: (base: Double, max: Double)?

    public var initialLR: Double { maxLR / divFactor }
    public var minLR: Double { initialLR / finalDivFactor }

    public init(maxLR: Double, totalSteps: Int, pctStart: Double = 0.3, anneal: Anneal = .cos,
                divFactor: Double = 25, finalDivFactor: Double = 1e4, threePhase: Bool = false,
                cycleMomentum: Bool = true, baseMomentum: Double = 0.85, maxMomentum: Double = 0.95) throws {
        let name = "oneCycle"
        try require(baseMomentum >= 0 && baseMomentum < 1, name, "baseMomentum", baseMomentum, "must be in [0, 1)")
        try require(maxMomentum >= 0 && maxMomentum < 1, name, "maxMomentum", maxMomentum, "must be in [0, 1)")
        momentumRange = cycleMomentum ? (baseMomentum, maxMomentum) : nil
        try require(maxLR >= 0, name, "maxLR", maxLR, "must be ≥ 0")
        try require(totalSteps > 0, name, "totalSteps", totalSteps, "must be > 0")
        try require(pctStart > 0 && pctStart < 1, name, "pctStart", pctStart, "must be in (0, 1)")
        try require(divFactor > 0, name, "divFactor", divFactor, "must be > 0")
        try require(finalDivFactor > 0, name, "finalDivFactor", finalDivFactor, "must be > 0")
        self.maxLR = maxLR
        self.totalSteps = totalSteps
        self.pctStart = pctStart
        self.anneal = anneal
        self.divFactor = divFactor
        self.finalDivFactor = finalDivFactor
        self.threePhase = threePhase
        // PyTorch divides by each phase's length; reject the options that make one empty (it would return NaN/inf).
        let ends = phases.map(\.end)
        for (start, end) in zip([0] + ends, ends) where !(end > start) {
            throw ScheduleError(name, "pctStart", pctStart,
                                "leaves an empty phase with totalSteps = \(totalSteps)\(threePhase ? ", threePhase" : "")")
        }
    }

    /// Same, with the annealing strategy by name ("cos" or "linear").
    public init(maxLR: Double, totalSteps: Int, pctStart: Double = 0.3, anneal: String, divFactor: Double = 25,
                finalDivFactor: Double = 1e4, threePhase: Bool = false, cycleMomentum: Bool = true,
                baseMomentum: Double = 0.85, maxMomentum: Double = 0.95) throws {
        guard let a = Anneal(rawValue: anneal) else {
            throw ScheduleError("oneCycle", "anneal", anneal, "must be cos or linear")
        }
        try self.init(maxLR: maxLR, totalSteps: totalSteps, pctStart: pctStart, anneal: a, divFactor: divFactor,
                      finalDivFactor: finalDivFactor, threePhase: threePhase, cycleMomentum: cycleMomentum,
                      baseMomentum: baseMomentum, maxMomentum: maxMomentum)
    }

    /// (last step of the phase, rate at its start, rate at its end), as PyTorch's `_schedule_phases`.
    var phases: [(end: Double, from: Double, to: Double)] {
        let t = Double(totalSteps)
        if threePhase {
            return [(pctStart * t - 1, initialLR, maxLR), (2 * pctStart * t - 2, maxLR, initialLR),
                    (t - 1, initialLR, minLR)]
        }
        return [(pctStart * t - 1, initialLR, maxLR), (t - 1, maxLR, minLR)]
    }

    public func learningRate(base: Float, step: Int) -> Float {
        let (phase, pct) = position(step)
        let p = phases[phase]
        return Float(annealed(p.from, p.to, pct))
    }

    public func momentum(step: Int) -> Float? {
        guard let (low, high) = momentumRange else { return nil }
        // Against the rate: high → low while it rises, back while it falls (three phases: then held at high).
        let ends = threePhase ? [(high, low), (low, high), (high, high)] : [(high, low), (low, high)]
        let (phase, pct) = position(step)
        return Float(annealed(ends[phase].0, ends[phase].1, pct))
    }

    /// The phase `step` falls in and how far through it, as PyTorch's `get_lr`.
    private func position(_ step: Int) -> (phase: Int, pct: Double) {
        let s = Double(min(max(step, 0), totalSteps))
        let phases = phases
        var start = 0.0
        for (i, phase) in phases.enumerated() {
            if s <= phase.end || i == phases.count - 1 { return (i, (s - start) / (phase.end - start)) }
            start = phase.end
        }
        return (phases.count - 1, 1)  // not reached: the last phase always matches
    }

    private func annealed(_ from: Double, _ to: Double, _ pct: Double) -> Double {
        switch anneal {
        case .cos: to + (from - to) / 2 * (cos(Double.pi * pct) + 1)
        case .linear: (to - from) * pct + from
        }
    }
}

/// ULMFiT's slanted triangular rates (Howard & Ruder 2018, eq. 3), with `base` as η_max:
///
///     cut = ⌊T · cutFrac⌋
///     p   = t / cut                                   if t < cut
///           1 − (t − cut) / (cut · (1/cutFrac − 1))   otherwise
///     η_t = η_max · (1 + p · (ratio − 1)) / ratio
///
/// A short linear climb from η_max/ratio to η_max at step `cut`, then a long linear decay back to η_max/ratio at
/// step T. After T the rate stays at η_max/ratio (p is clamped at 0; the paper stops at T).
public struct SlantedTriangular: LearningRateSchedule {
    public let totalSteps: Int
    public let cutFrac: Double
    public let ratio: Double

    public var cut: Int { Int((Double(totalSteps) * cutFrac).rounded(.down)) }

    public init(totalSteps: Int, cutFrac: Double = 0.1, ratio: Double = 32) throws {
        let name = "slantedTriangular"
        try require(totalSteps > 0, name, "totalSteps", totalSteps, "must be > 0")
        try require(cutFrac > 0 && cutFrac < 1, name, "cutFrac", cutFrac, "must be in (0, 1)")
        try require(ratio >= 1, name, "ratio", ratio, "must be ≥ 1")
        try require(Double(totalSteps) * cutFrac >= 1, name, "cutFrac", cutFrac,
                    "cut = ⌊totalSteps · cutFrac⌋ must be ≥ 1 with totalSteps = \(totalSteps)")
        self.totalSteps = totalSteps
        self.cutFrac = cutFrac
        self.ratio = ratio
    }

    public func learningRate(base: Float, step: Int) -> Float {
        let t = Double(max(step, 0)), cut = Double(self.cut)
        let p = t < cut ? t / cut : max(0, 1 - (t - cut) / (cut * (1 / cutFrac - 1)))
        return Float(Double(base) * (1 + p * (ratio - 1)) / ratio)
    }
}

extension LearningRateSchedule where Self == CyclicSchedule {
    public static func cyclic(baseLR: Double, maxLR: Double, stepSizeUp: Int = 2000, stepSizeDown: Int? = nil,
                              mode: CyclicSchedule.Mode = .triangular, gamma: Double = 1) throws -> CyclicSchedule {
        try CyclicSchedule(baseLR: baseLR, maxLR: maxLR, stepSizeUp: stepSizeUp, stepSizeDown: stepSizeDown,
                           mode: mode, gamma: gamma)
    }
}

extension LearningRateSchedule where Self == OneCycle {
    public static func oneCycle(maxLR: Double, totalSteps: Int, pctStart: Double = 0.3,
                                anneal: OneCycle.Anneal = .cos, divFactor: Double = 25, finalDivFactor: Double = 1e4,
                                threePhase: Bool = false) throws -> OneCycle {
        try OneCycle(maxLR: maxLR, totalSteps: totalSteps, pctStart: pctStart, anneal: anneal, divFactor: divFactor,
                     finalDivFactor: finalDivFactor, threePhase: threePhase)
    }
}

extension LearningRateSchedule where Self == SlantedTriangular {
    public static func slantedTriangular(totalSteps: Int, cutFrac: Double = 0.1, ratio: Double = 32) throws
        -> SlantedTriangular
    {
        try SlantedTriangular(totalSteps: totalSteps, cutFrac: cutFrac, ratio: ratio)
    }
}
