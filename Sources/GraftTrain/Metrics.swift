import GraftCore

/// Counts of (true class, predicted class) pairs, from which accuracy, precision, recall and F1 follow.
/// Counts add, so ranks can sum their matrices into the exact global one.
public struct ConfusionMatrix: Sendable, Equatable {
    public let classes: Int
    /// Row-major [true class, predicted class].
    public private(set) var counts: [Int]

    public init(classes: Int) {
        require(classes > 0, "ConfusionMatrix: needs at least one class, got \(classes)")
        self.classes = classes
        counts = [Int](repeating: 0, count: classes * classes)
    }

    /// A matrix from its row-major counts (e.g. summed over ranks).
    public init(classes: Int, counts: [Int]) {
        require(counts.count == classes * classes && counts.allSatisfy { $0 >= 0 },
                "ConfusionMatrix: \(counts.count) counts for \(classes) classes")
        self.init(classes: classes)
        self.counts = counts
    }

    public subscript(actual: Int, predicted: Int) -> Int { counts[actual * classes + predicted] }

    /// Adds one prediction per target.
    public mutating func add(predicted: [Int], targets: [Int]) {
        require(predicted.count == targets.count, "ConfusionMatrix: \(predicted.count) predictions for \(targets.count) targets")
        for (p, t) in zip(predicted, targets) {
            require(p >= 0 && p < classes && t >= 0 && t < classes,
                    "ConfusionMatrix: class \(max(p, t)) out of range for \(classes) classes")
            counts[t * classes + p] += 1
        }
    }

    /// Adds the argmax of each row of `logits` [N, classes].
    public mutating func add(logits: Tensor, targets: [Int]) {
        require(logits.rank == 2 && logits.shape[1] == classes, "ConfusionMatrix: logits \(logits.shape) for \(classes) classes")
        add(predicted: logits.argmax(axis: 1).values, targets: targets)
    }

    public static func + (a: ConfusionMatrix, b: ConfusionMatrix) -> ConfusionMatrix {
        require(a.classes == b.classes, "ConfusionMatrix: cannot add \(a.classes) and \(b.classes) classes")
        var sum = a
        for i in sum.counts.indices { sum.counts[i] += b.counts[i] }
        return sum
    }

    public var total: Int { counts.reduce(0, +) }
    public var accuracy: Double { total == 0 ? 0 : Double((0..<classes).map { self[$0, $0] }.reduce(0, +)) / Double(total) }

    /// Of the rows predicted `c`, the fraction that are `c` (0 when nothing was predicted `c`, as scikit-learn).
    public func precision(_ c: Int) -> Double {
        let predicted = (0..<classes).map { self[$0, c] }.reduce(0, +)
        return predicted == 0 ? 0 : Double(self[c, c]) / Double(predicted)
    }

    /// Of the rows that are `c`, the fraction predicted `c` (0 for a class with no rows).
    public func recall(_ c: Int) -> Double {
        let actual = (0..<classes).map { self[c, $0] }.reduce(0, +)
        return actual == 0 ? 0 : Double(self[c, c]) / Double(actual)
    }

    public func f1(_ c: Int) -> Double {
        let p = precision(c), r = recall(c)
        return p + r == 0 ? 0 : 2 * p * r / (p + r)
    }

    /// Unweighted means over classes (scikit-learn's `average="macro"`).
    public var macroPrecision: Double { (0..<classes).map(precision).reduce(0, +) / Double(classes) }
    public var macroRecall: Double { (0..<classes).map(recall).reduce(0, +) / Double(classes) }
    public var macroF1: Double { (0..<classes).map(f1).reduce(0, +) / Double(classes) }
}

/// How many rows of `logits` [N, C] have their target among the `k` largest scores (ties broken by index).
public func topKCorrect(_ logits: Tensor, targets: [Int], k: Int) -> Int {
    require(logits.rank == 2 && logits.shape[0] == targets.count, "topKCorrect: logits \(logits.shape) for \(targets.count) targets")
    require(k > 0 && k <= logits.shape[1], "topKCorrect: k = \(k) for \(logits.shape[1]) classes")
    let c = logits.shape[1], values = logits.scalars
    return targets.enumerated().filter { r, t in
        let row = values[r * c..<(r + 1) * c], score = row[r * c + t]
        // The target is in the top k when fewer than k classes beat it (earlier indices win ties).
        let better = row.indices.filter { row[$0] > score || (row[$0] == score && $0 - r * c < t) }.count
        return better < k
    }.count
}
