import GraftCore

/// A seeded split of rows into training rows and one or more held-out parts (e.g. validation and test), stratified
/// by class so every part keeps the class balance of the whole.
///
/// For each class `c` in `0...labels.max()`, in order, the class's rows are shuffled with one generator seeded by
/// `seed` (shared by all classes, used class after class); the first `round(count × fractions[0])` shuffled rows go
/// to part 0, the next `round(count × fractions[1])` to part 1, and so on, and the rest to training. Rounding is to
/// nearest, halves away from zero; when the rounded counts of a small class add up to more than it has, the later
/// parts get what is left. Every returned list is sorted ascending. With one fraction this is the split
/// `LabelledData.stratifiedSplit(heldOut:seed:)` has always made.
///
/// Labels must be non-negative; each fraction must be ≥ 0 and their sum < 1, so training keeps rows.
public func stratifiedSplit(labels: [Int], heldOut fractions: [Double], seed: UInt64) -> (train: [Int], heldOut: [[Int]]) {
    require(fractions.allSatisfy { $0.isFinite && $0 >= 0 },
            "stratifiedSplit: held-out fractions must be finite and ≥ 0, got \(fractions)")
    require(fractions.reduce(0, +) < 1, "stratifiedSplit: held-out fractions must sum to less than 1, got \(fractions)")
    require(labels.allSatisfy { $0 >= 0 }, "stratifiedSplit: labels must be non-negative")

    // Each class's rows in ascending order, as filtering the labels class by class would give them.
    var rowsOfClass = [[Int]](repeating: [], count: (labels.max() ?? -1) + 1)
    for (row, label) in labels.enumerated() { rowsOfClass[label].append(row) }

    var rng = RandomGenerator(seed: seed)
    var train: [Int] = [], heldOut = [[Int]](repeating: [], count: fractions.count)
    for var rows in rowsOfClass {
        rows.shuffle(using: &rng)
        var start = 0
        for (part, fraction) in fractions.enumerated() {
            let take = min(Int((Double(rows.count) * fraction).rounded()), rows.count - start)
            heldOut[part] += rows[start..<start + take]
            start += take
        }
        train += rows[start...]
    }
    return (train.sorted(), heldOut.map { $0.sorted() })
}
