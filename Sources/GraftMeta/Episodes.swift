import GraftCore
import GraftData

/// Classes divided into meta-training, meta-validation and meta-test classes, no class in two parts: few-shot
/// learning is measured on classes never seen in meta-training. Each list is sorted ascending.
public struct ClassSplit: Equatable, Sendable {
    public let train: [Int]
    public let validation: [Int]
    public let test: [Int]

    /// Explicit class lists (the published splits of Omniglot or miniImageNet, say); a class in two lists, or twice
    /// in one, is an error.
    public init(train: [Int], validation: [Int], test: [Int]) {
        var seen: [Int: String] = [:]
        for (part, classes) in [("train", train), ("validation", validation), ("test", test)] {
            for c in classes {
                if let first = seen[c] { fatalError("ClassSplit: class \(c) is in both \(first) and \(part)") }
                seen[c] = part
            }
        }
        (self.train, self.validation, self.test) = (train.sorted(), validation.sorted(), test.sorted())
    }

    /// A seeded random split of `classes` (duplicates ignored): the classes are shuffled by a generator seeded with
    /// `seed`, the first round(n × validation) go to validation, the next round(n × test) to test, the rest to
    /// training, which must keep at least one class.
    public init(classes: [Int], validation: Double, test: Double, seed: UInt64) {
        require(validation.isFinite && test.isFinite && validation >= 0 && test >= 0 && validation + test < 1,
                "ClassSplit: fractions validation \(validation) and test \(test) must be ≥ 0 and sum to less than 1")
        let distinct = Array(Set(classes)).sorted()
        var rng = RandomGenerator(seed: seed)
        let shuffled = rng.choose(distinct.count, from: distinct)
        let n = Double(distinct.count)
        let nv = Int((n * validation).rounded()), nt = min(Int((n * test).rounded()), distinct.count - nv)
        require(distinct.count - nv - nt >= 1,
                "ClassSplit: \(distinct.count) classes leave none for training with fractions \(validation) and \(test)")
        self.init(train: Array(shuffled[(nv + nt)...]), validation: Array(shuffled[..<nv]), test: Array(shuffled[nv..<(nv + nt)]))
    }

    /// A seeded random split of the classes that occur in `labels`.
    public init(labels: [Int], validation: Double, test: Double, seed: UInt64) {
        self.init(classes: labels, validation: validation, test: test, seed: seed)
    }
}

/// One N-way K-shot episode drawn from labelled rows: which rows form the support and the query sets, and their
/// labels remapped to 0..<N.
public struct Episode: Equatable, Sendable {
    /// The original class of each new label: new label i is class `classes[i]`.
    public let classes: [Int]
    /// K rows per class, class after class (new label 0's rows first).
    public let supportRows: [Int]
    public let supportLabels: [Int]
    /// Q rows per class, class after class, none of them in the support set.
    public let queryRows: [Int]
    public let queryLabels: [Int]

    public var ways: Int { classes.count }

    /// The task whose inputs are these rows of `inputs` (rows along axis 0).
    public func task(inputs: Tensor) -> MetaTask {
        require(inputs.rank >= 1, "Episode: inputs must have rows along axis 0, got \(inputs.shape)")
        let rows = inputs.shape[0]
        for r in supportRows + queryRows where r >= rows {
            fatalError("Episode: row \(r) out of range for inputs \(inputs.shape)")
        }
        return withNoGrad {
            MetaTask(supportInputs: inputs.indexSelect(axis: 0, Indices(supportRows, shape: [supportRows.count])),
                     supportTargets: .classes(supportLabels),
                     queryInputs: inputs.indexSelect(axis: 0, Indices(queryRows, shape: [queryRows.count])),
                     queryTargets: .classes(queryLabels))
        }
    }

    /// The task whose inputs are these rows of `data`, each row's features shaped `sampleShape` (for images, say
    /// [channels, height, width]; the row's flat features by default). Only the episode's rows are copied.
    public func task(from data: LabelledData, sampleShape: [Int]? = nil) -> MetaTask {
        let shape = sampleShape ?? [data.featureCount]
        require(shape.product == data.featureCount,
                "Episode: sample shape \(shape) does not hold a row of \(data.featureCount) features")
        func rows(_ indices: [Int]) -> Tensor {
            let width = data.featureCount
            var values = [Float](repeating: 0, count: indices.count * width)
            for (i, r) in indices.enumerated() {
                require(r >= 0 && r < data.count, "Episode: row \(r) out of range for \(data.count) rows")
                values[(i * width)..<((i + 1) * width)] = data.features[(r * width)..<((r + 1) * width)]
            }
            return Tensor(values, shape: [indices.count] + shape)
        }
        return MetaTask(supportInputs: rows(supportRows), supportTargets: .classes(supportLabels),
                        queryInputs: rows(queryRows), queryTargets: .classes(queryLabels))
    }
}

/// Draws N-way K-shot episodes with Q queries per class from labelled rows, restricted to a set of classes (one part
/// of a `ClassSplit`).
///
/// Task `index` of meta-step `metaStep` is a function of (seed, metaStep, index) only: N classes are drawn without
/// replacement from the sampler's classes, then K + Q distinct rows from each chosen class, the first K for support
/// and the rest for query. Calling order, other calls, and the rank a task is drawn on make no difference, so ranks
/// can split a meta-batch by task index and a resumed run draws the same tasks.
public struct EpisodeSampler: Sendable {
    public let ways: Int
    public let shots: Int
    public let queries: Int
    public let seed: UInt64
    /// The classes episodes are drawn from, ascending.
    public let classes: [Int]
    /// The rows of each class in `classes`, ascending.
    private let rowsOfClass: [[Int]]

    /// Episodes over the rows whose label is in `classes` (every class in `labels` when nil). Every one of those
    /// classes must have at least `shots + queries` rows, and there must be at least `ways` of them.
    public init(labels: [Int], classes: [Int]? = nil, ways: Int, shots: Int, queries: Int, seed: UInt64) {
        require(ways >= 1 && shots >= 1 && queries >= 1,
                "EpisodeSampler: ways \(ways), shots \(shots) and queries \(queries) must be ≥ 1")
        var rowsByClass: [Int: [Int]] = [:]
        for (row, label) in labels.enumerated() { rowsByClass[label, default: []].append(row) }
        let chosen = Array(Set(classes ?? Array(rowsByClass.keys))).sorted()
        require(chosen.count == (classes?.count ?? chosen.count), "EpisodeSampler: a class is listed twice in \(classes ?? [])")
        require(chosen.count >= ways, "EpisodeSampler: \(chosen.count) classes cannot make \(ways)-way episodes")
        for c in chosen {
            let n = rowsByClass[c]?.count ?? 0
            require(n >= shots + queries,
                    "EpisodeSampler: class \(c) has \(n) rows, fewer than shots + queries = \(shots + queries)")
        }
        (self.ways, self.shots, self.queries, self.seed) = (ways, shots, queries, seed)
        self.classes = chosen
        rowsOfClass = chosen.map { rowsByClass[$0]! }
    }

    /// Task `index` of meta-step `metaStep`.
    public func task(metaStep: Int, index: Int) -> Episode {
        var rng = taskGenerator(seed: seed, metaStep: metaStep, index: index, op: "EpisodeSampler")
        let picked = rng.choose(ways, from: Array(classes.indices))
        var support: [Int] = [], supportLabels: [Int] = [], query: [Int] = [], queryLabels: [Int] = []
        for (label, k) in picked.enumerated() {
            let rows = rng.choose(shots + queries, from: rowsOfClass[k])
            support += rows[..<shots]
            query += rows[shots...]
            supportLabels += Array(repeating: label, count: shots)
            queryLabels += Array(repeating: label, count: queries)
        }
        return Episode(classes: picked.map { classes[$0] }, supportRows: support, supportLabels: supportLabels,
                       queryRows: query, queryLabels: queryLabels)
    }
}
