import Foundation
import GraftCore

/// PyTorch `ReduceLROnPlateau`: multiply the rate by `factor` once the metric has not improved for more than
/// `patience` steps, then wait `cooldown` steps (bad steps not counted) before counting again; never below `minLR`.
///
/// Stateful, unlike the per-step schedules: call `step(metric:)` once per evaluation, and checkpoint `state`.
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
