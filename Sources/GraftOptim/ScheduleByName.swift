/// Options given by name, as a recipe spells them (`step-size: 30`, `milestones: [10, 20]`), each read at most
/// once; `finish()` rejects any name nobody read, so a misspelt option is an error instead of being ignored.
public struct NamedOptions: Sendable {
    /// What the options configure, for messages ("schedule cosine").
    public let owner: String
    private var values: [(key: String, value: [String])]
    private var read: Set<String> = []

    /// `values`: each option's value, a list for list-valued options and one element otherwise.
    public init(_ owner: String, _ values: [(key: String, value: [String])]) {
        (self.owner, self.values) = (owner, values)
    }

    private mutating func raw(_ key: String) -> [String]? {
        read.insert(key)
        return values.first { $0.key == key }?.value
    }

    private mutating func single(_ key: String) throws -> String? {
        try raw(key).map { list in
            guard list.count == 1 else { throw ScheduleError(owner, key, list, "expects one value, not a list") }
            return list[0]
        }
    }

    public mutating func int(_ key: String) throws -> Int? {
        try single(key).map { s in
            guard let v = Int(s) else { throw ScheduleError(owner, key, s, "must be an integer") }
            return v
        }
    }

    public mutating func double(_ key: String) throws -> Double? {
        try single(key).map { s in
            guard let v = Double(s), v.isFinite else { throw ScheduleError(owner, key, s, "must be a finite number") }
            return v
        }
    }

    public mutating func bool(_ key: String) throws -> Bool? {
        try single(key).map { s in
            switch s.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: throw ScheduleError(owner, key, s, "must be true or false")
            }
        }
    }

    public mutating func string(_ key: String) throws -> String? { try single(key) }

    public mutating func ints(_ key: String) throws -> [Int]? {
        try raw(key).map { list in
            try list.map { s in
                guard let v = Int(s) else { throw ScheduleError(owner, key, list, "must be a list of integers") }
                return v
            }
        }
    }

    /// These options with one more, single-valued.
    public func adding(_ key: String, _ value: String) -> NamedOptions {
        NamedOptions(owner, values + [(key, [value])])
    }

    /// Throws for the first option that was given but never read, listing the ones that were.
    public func finish() throws {
        if let unknown = values.first(where: { !read.contains($0.key) }) {
            throw ScheduleError(owner, unknown.key, unknown.value.joined(separator: ", "),
                                "unknown option; known: \(read.sorted().joined(separator: ", "))")
        }
    }
}

/// What a named schedule turns into: a per-step closed form, or reduce-on-plateau, which reacts to each epoch's
/// metric and scales every group's rate by the same factor.
public enum ScheduleSetting {
    case perStep(any LearningRateSchedule)
    case plateau(ReduceOnPlateau)
}

/// The schedules by the names a recipe uses.
public enum ScheduleKind: String, CaseIterable, Sendable {
    case constant, step, multiStep = "multi-step", exponential, cosine, cosineRestarts = "cosine-restarts", cyclic
    case oneCycle = "one-cycle", linearWarmup = "linear-warmup", cosineWarmup = "cosine-warmup"
    case slantedTriangular = "slanted-triangular", plateau

    /// The kind named `name`; an unknown name is an error listing the known ones.
    public init(named name: String) throws {
        guard let kind = ScheduleKind(rawValue: name) else {
            throw ScheduleError("schedule", "name", name,
                                "unknown schedule; known: \(ScheduleKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = kind
    }

    /// The schedule with `options` (kebab-case names of the type's parameters). `totalSteps`, the optimizer steps
    /// of the whole run, is the default for `t-max` and `total-steps`. Every schedule but the warm-up ones and the
    /// plateau also takes `warmup-steps` (and `warmup-start-factor`) to put a linear warm-up in front.
    /// Throws for unknown options, missing required ones and invalid values, naming the option as the recipe spells
    /// it (`step-size`, not the parameter `stepSize`) and the schedule as `options.owner`.
    public func make(_ options: NamedOptions, totalSteps: Int) throws -> ScheduleSetting {
        do { return try build(options, totalSteps: totalSteps) } catch let error as ScheduleError
            where error.schedule != options.owner {
            // The types' own checks name their Swift parameters; NamedOptions' errors (owned by `owner`) already
            // carry the name the user wrote, which must stay as written even when it looks like camelCase.
            throw error.respelled(owner: options.owner)
        }
    }

    private func build(_ options: NamedOptions, totalSteps: Int) throws -> ScheduleSetting {
        var o = options
        let owner = options.owner
        func need<T>(_ value: T?, _ key: String) throws -> T {
            guard let value else { throw ScheduleError(owner, key, "nothing", "is required") }
            return value
        }
        let schedule: any LearningRateSchedule
        switch self {
        case .plateau:
            let plateau = try ReduceOnPlateau(
                learningRate: 1, mode: o.string("mode") ?? "min", factor: o.double("factor") ?? 0.1,
                patience: o.int("patience") ?? 10, threshold: o.double("threshold") ?? 1e-4,
                thresholdMode: o.string("threshold-mode") ?? "rel", cooldown: o.int("cooldown") ?? 0,
                minLR: o.double("min-factor") ?? 0)
            try o.finish()
            return .plateau(plateau)
        case .constant: schedule = ConstantSchedule()
        case .step: schedule = try StepDecay(stepSize: need(o.int("step-size"), "step-size"), gamma: o.double("gamma") ?? 0.1)
        case .multiStep:
            schedule = try MultiStepDecay(milestones: need(o.ints("milestones"), "milestones"), gamma: o.double("gamma") ?? 0.1)
        case .exponential: schedule = try ExponentialDecay(gamma: need(o.double("gamma"), "gamma"))
        case .cosine: schedule = try CosineAnnealing(tMax: o.int("t-max") ?? totalSteps, etaMin: o.double("eta-min") ?? 0)
        case .cosineRestarts:
            schedule = try CosineWarmRestarts(t0: need(o.int("t0"), "t0"), tMult: o.int("t-mult") ?? 1,
                                              etaMin: o.double("eta-min") ?? 0)
        case .cyclic:
            schedule = try CyclicSchedule(
                baseLR: need(o.double("base-lr"), "base-lr"), maxLR: need(o.double("max-lr"), "max-lr"),
                stepSizeUp: o.int("step-size-up") ?? 2000, stepSizeDown: o.int("step-size-down"),
                mode: o.string("mode") ?? "triangular", gamma: o.double("gamma") ?? 1,
                cycleMomentum: o.bool("cycle-momentum") ?? true, baseMomentum: o.double("base-momentum") ?? 0.8,
                maxMomentum: o.double("max-momentum") ?? 0.9)
        case .oneCycle:
            schedule = try OneCycle(
                maxLR: need(o.double("max-lr"), "max-lr"), totalSteps: o.int("total-steps") ?? totalSteps,
                pctStart: o.double("pct-start") ?? 0.3, anneal: o.string("anneal") ?? "cos",
                divFactor: o.double("div-factor") ?? 25, finalDivFactor: o.double("final-div-factor") ?? 1e4,
                threePhase: o.bool("three-phase") ?? false, cycleMomentum: o.bool("cycle-momentum") ?? true,
                baseMomentum: o.double("base-momentum") ?? 0.85, maxMomentum: o.double("max-momentum") ?? 0.95)
        case .linearWarmup:
            schedule = try LinearWarmupDecay(warmupSteps: need(o.int("warmup-steps"), "warmup-steps"),
                                             totalSteps: o.int("total-steps") ?? totalSteps)
        case .cosineWarmup:
            schedule = try CosineWarmup(warmupSteps: need(o.int("warmup-steps"), "warmup-steps"),
                                        totalSteps: o.int("total-steps") ?? totalSteps,
                                        numCycles: o.double("num-cycles") ?? 0.5)
        case .slantedTriangular:
            schedule = try SlantedTriangular(totalSteps: o.int("total-steps") ?? totalSteps,
                                             cutFrac: o.double("cut-frac") ?? 0.1, ratio: o.double("ratio") ?? 32)
        }
        var result = schedule
        if self != .linearWarmup && self != .cosineWarmup, let steps = try o.int("warmup-steps") {
            result = try Warmup(steps: steps, startFactor: o.double("warmup-start-factor") ?? 0, then: schedule)
        }
        try o.finish()
        return .perStep(result)
    }
}

extension ScheduleError {
    /// This error in a recipe's terms: `owner` names the schedule, and camelCase option names, in `option` and in
    /// `requirement` ("warm-up must not be longer than totalSteps = 30"), are spelt as in a recipe.
    func respelled(owner: String) -> ScheduleError {
        var text = "", word = ""
        func flush() {
            let camelCase = word.first?.isLowercase == true && word.contains(where: \.isUppercase)
            text += camelCase ? recipeSpelling(word, schedule: schedule) : word
            word = ""
        }
        for c in requirement {
            if c.isLetter || c.isNumber { word.append(c) } else { flush(); text.append(c) }
        }
        flush()
        return ScheduleError(owner, recipeSpelling(option, schedule: schedule), value, text)
    }
}

/// How a recipe spells a schedule type's parameter: kebab-case (`stepSize` → `step-size`, `maxLR` → `max-lr`), except
/// the warm-up put in front of a schedule, whose options carry a `warmup-` prefix, and the plateau's floor, which a
/// recipe gives as a factor of the base rate (`min-factor`), the plateau running as a multiplier starting at 1.
func recipeSpelling(_ parameter: String, schedule: String) -> String {
    switch (schedule, parameter) {
    case ("warmup", "steps"): return "warmup-steps"
    case ("warmup", "startFactor"): return "warmup-start-factor"
    case ("reduceOnPlateau", "minLR"): return "min-factor"
    default: break
    }
    var spelled = "", previous: Character?
    for c in parameter {
        if c.isUppercase, let p = previous, p.isLowercase || p.isNumber { spelled += "-" }
        spelled += c.lowercased()
        previous = c
    }
    return spelled
}
