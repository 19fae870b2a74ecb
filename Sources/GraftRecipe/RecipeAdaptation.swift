import GraftTrain

/// Domain adaptation: the recipe's `data` is the labelled source domain, `target` the domain to do well on, whose
/// labels are used only for the target-trained baseline and the final report.
public struct AdaptationSpec {
    public enum Method: String, CaseIterable, Sendable {
        case sourceOnly = "source-only", targetOnly = "target-only", dann, mmd, coral, pseudoLabel = "pseudo-label"
    }
    /// Which epoch's weights are reported: the best on the source validation rows, or the last.
    public enum Selection: String, CaseIterable, Sendable { case sourceValidation = "source-validation", lastEpoch = "last-epoch" }

    public var method: Method
    public var target: Recipe.DataSpec
    public var selection: Selection
    /// Labelled target rows per class that join the source's training rows (semi-supervised adaptation).
    public var labelledPerClass = 0
    /// The objective for the training methods (nil for the two baselines).
    public var weight: Float = 1
    public var schedule: DomainAdaptation.WeightSchedule = .fixed
    public var targetBatchSize: Int?
    public var domainHidden: [Int] = [100]
    public var objective: DomainAdaptation.Method?

    init(_ f: inout Fields, source: Recipe.DataSpec) throws {
        guard let name = try f.choice("method", Method.allCases.map(\.rawValue)) else {
            throw f.error("method", "is required (\(Method.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        method = Method(rawValue: name)!
        var t = try f.section("target")
        guard f.has("target") else { throw f.error("target", "is required: the target domain's data, as under data:") }
        target = try Recipe.DataSpec(&t)
        try t.finish()
        if source.trainPipeline.isRandom || target.trainPipeline.isRandom {
            throw f.error("method", "random train transforms (data.transforms.train) are not supported with adaptation yet")
        }
        selection = Selection(rawValue: try f.choice("select", Selection.allCases.map(\.rawValue),
                                                     default: Selection.sourceValidation.rawValue)!)!
        if selection == .sourceValidation && source.validation == 0 && method != .targetOnly {
            throw f.error("select", "source-validation needs data.validation > 0 (or select: last-epoch)")
        }
        if method != .targetOnly { labelledPerClass = try f.int("labelled-per-class", min: 0) ?? 0 }
        guard [.sourceOnly, .targetOnly].contains(method) == false else { return }
        weight = Float(try f.double("weight") ?? 1)
        if !(weight >= 0) { throw f.error("weight", "must be ≥ 0, got \(weight)") }
        schedule = DomainAdaptation.WeightSchedule(rawValue: try f.choice(
            "schedule", DomainAdaptation.WeightSchedule.allCases.map(\.rawValue), default: method == .dann ? "dann" : "fixed")!)!
        targetBatchSize = try f.int("target-batch-size", min: 2)
        switch method {
        case .dann:
            domainHidden = try f.ints("domain-hidden") ?? [100]
            if domainHidden.contains(where: { $0 <= 0 }) { throw f.error("domain-hidden", "widths must be positive") }
            objective = .dann
        case .mmd:
            let multipliers = try f.doubles("kernel-multipliers") ?? [0.25, 0.5, 1, 2, 4]
            if multipliers.isEmpty || multipliers.contains(where: { $0 <= 0 }) {
                throw f.error("kernel-multipliers", "must be positive numbers")
            }
            let bandwidth = try f.double("bandwidth")
            if let bandwidth, !(bandwidth > 0) { throw f.error("bandwidth", "must be > 0, got \(bandwidth)") }
            objective = .mmd(multipliers: multipliers.map(Float.init), bandwidth: bandwidth.map(Float.init))
        case .coral:
            objective = .coral
        case .pseudoLabel:
            let threshold = try f.fraction("threshold") ?? 0.9
            objective = .pseudoLabel(threshold: Float(threshold), warmupEpochs: try f.int("warmup-epochs", min: 0) ?? 1)
        case .sourceOnly, .targetOnly:
            break
        }
    }
}
