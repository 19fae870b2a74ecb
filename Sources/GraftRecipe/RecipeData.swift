import Foundation
import GraftCore
import GraftData
import GraftTrain

/// Rows ready for training: inputs [N, …] (token ids as floats for text) and labels.
public struct LabelledRows {
    public let inputs: Tensor
    public let labels: [Int]
    public var count: Int { labels.count }

    func subset(_ rows: [Int]) -> LabelledRows {
        LabelledRows(inputs: inputs.indexSelect(axis: 0, Indices(rows, shape: [rows.count])), labels: rows.map { labels[$0] })
    }
}

/// A recipe's data, split by class into training, validation and test rows.
public struct RecipeData {
    public let train: LabelledRows
    public let validation: LabelledRows?
    public let test: LabelledRows?
    public let classNames: [String]
    /// Rows per input, [features] or [C, H, W] or [tokens]: what the model is built for.
    public let inputShape: [Int]
    /// What loading found worth telling (duplicates removed, files decoded as Windows-1252).
    public let notes: [String]
    /// A random train pipeline, which `train`'s stored images go through at batch time, keyed on (seed, epoch,
    /// training row); nil when the training rows are model inputs already.
    public var trainAugmentation: ImagePipeline?
    /// Whether the augmented rows are then flattened (for an MLP).
    var flattenAugmented = false

    /// The same rows with each input flattened to one vector (image rows for an MLP); augmented training rows are
    /// flattened after their transforms.
    func flattened() -> RecipeData {
        let width = inputShape.reduce(1, *)
        func flat(_ rows: LabelledRows?) -> LabelledRows? {
            rows.map { LabelledRows(inputs: $0.inputs.reshaped([$0.count, width]), labels: $0.labels) }
        }
        return RecipeData(train: trainAugmentation == nil ? flat(train)! : train, validation: flat(validation), test: flat(test),
                          classNames: classNames, inputShape: [width], notes: notes, trainAugmentation: trainAugmentation,
                          flattenAugmented: trainAugmentation != nil)
    }

    /// The same data with other training inputs (a frozen body's features), one per training row.
    func replacingTrainingInputs(_ inputs: Tensor) -> RecipeData {
        RecipeData(train: LabelledRows(inputs: inputs, labels: train.labels), validation: validation, test: test,
                   classNames: classNames, inputShape: Array(inputs.shape.dropFirst()), notes: notes)
    }

    /// The same data with `rows` added to the training rows.
    func addingTrainingRows(_ rows: LabelledRows) -> RecipeData {
        RecipeData(train: LabelledRows(inputs: Tensor.concat([train.inputs, rows.inputs], axis: 0), labels: train.labels + rows.labels),
                   validation: validation, test: test, classNames: classNames, inputShape: inputShape, notes: notes,
                   trainAugmentation: trainAugmentation, flattenAugmented: flattenAugmented)
    }

    /// What training batches apply to their rows: the augmentation for `seed`, flattened if need be; nil without one.
    func trainTransform(seed: UInt64) -> Batches.RowTransform? {
        guard let pipeline = trainAugmentation else { return nil }
        let flat = flattenAugmented
        return { inputs, rows, epoch in
            let out = pipeline.apply(inputs, rows: rows, seed: seed, epoch: epoch)
            return flat ? out.reshaped([rows.count, out.count / max(rows.count, 1)]) : out
        }
    }

    /// Reads and splits `spec`; text is tokenised with `tokenizer`. `seed` is the run's: it splits the rows unless
    /// `spec.splitSeed` is given, and chooses the training rows `train-per-class` keeps.
    static func load(_ spec: Recipe.DataSpec, seed: UInt64, tokenizer: WordPieceTokenizer?) throws -> RecipeData {
        let splitSeed = spec.splitSeed ?? seed
        switch spec.format {
        case .imageFolder, .idx:
            return try loadImages(spec, seed: seed)
        case .textFolder:
            guard let tokenizer else { preconditionFailure("text data needs a tokenizer") }
            let (all, report) = try TextDataset.folder(spec.path)
            var notes = [report.summary]
            if !report.nonUTF8Files.isEmpty { notes.append("decoded as Windows-1252: \(report.nonUTF8Files.joined(separator: ", "))") }
            let data = spec.limitPerClass.map { all.subset(limited(all.labels, $0, seed: splitSeed)) } ?? all
            let describe = { (c: Int) in "class \(quotedExcerpt(data.classNames[c]))" }
            try checkClasses(data.labels, classCount: data.classNames.count, spec: spec, describe: describe)
            let (split, parts) = data.stratifiedSplit(heldOut: [spec.test, spec.validation], seed: splitSeed)
            try checkTrainingRows(split.labels, all: data.labels, classCount: data.classNames.count, spec: spec,
                                  describe: describe)
            let (kept, note) = spec.trainingRowsKept(split.labels, seed: seed)
            let train = split.subset(kept)
            if let note { notes.append(note) }
            func rows(_ d: TextDataset) -> LabelledRows? {
                guard d.count > 0 else { return nil }
                let batch = tokenizer.encodeBatch(d.texts, maxLength: spec.maxTokens, padding: .longest)
                return LabelledRows(inputs: Tensor(batch.ids.map(Float.init), shape: batch.shape), labels: d.labels)
            }
            guard let trainRows = rows(train) else { throw DataError(file: spec.path, line: nil, problem: "no rows left to train on") }
            return RecipeData(train: trainRows, validation: rows(parts[1]), test: rows(parts[0]), classNames: data.classNames,
                              inputShape: [spec.maxTokens], notes: notes)
        case .csv:
            let all = try LabelledData.csv(spec.path, scale: spec.scale)
            let shape = spec.image ?? [all.featureCount]
            guard shape.reduce(1, *) == all.featureCount else {
                throw DataError(file: spec.path, line: nil,
                                problem: "rows have \(all.featureCount) features, which is not an image of \(shape)")
            }
            let data = spec.limitPerClass.map { all.subset(limited(all.labels, $0, seed: splitSeed)) } ?? all
            let describe = { (c: Int) in "class \(c)" }
            try checkClasses(data.labels, classCount: data.classCount, spec: spec, describe: describe)
            let (split, parts) = data.stratifiedSplit(heldOut: [spec.test, spec.validation], seed: splitSeed)
            try checkTrainingRows(split.labels, all: data.labels, classCount: data.classCount, spec: spec,
                                  describe: describe)
            let (kept, note) = spec.trainingRowsKept(split.labels, seed: seed)
            let train = split.subset(kept)
            // Images go through the pipelines as image files do: held-out rows the eval one, training rows the
            // train one now when it is deterministic, else at batch time.
            let augmentation = spec.image != nil && spec.trainPipeline.isRandom ? spec.trainPipeline : nil
            func rows(_ d: LabelledData, _ pipeline: ImagePipeline?) -> LabelledRows? {
                guard d.count > 0 else { return nil }
                let inputs = spec.inputs(d.features, rows: d.count)
                // Rows augmented at batch time are stored as the pipeline takes them, on 0–255.
                guard let pipeline else { return LabelledRows(inputs: inputs * 255, labels: d.labels) }
                return LabelledRows(inputs: spec.csvImages(inputs, through: pipeline, rows: Array(0..<d.count), seed: seed),
                                    labels: d.labels)
            }
            guard let trainRows = rows(train, augmentation == nil ? spec.trainPipeline : nil) else {
                throw DataError(file: spec.path, line: nil, problem: "no rows left to train on")
            }
            return RecipeData(train: trainRows, validation: rows(parts[1], spec.evalPipeline), test: rows(parts[0], spec.evalPipeline),
                              classNames: (0..<data.classCount).map(String.init), inputShape: spec.rowShape(stored: shape),
                              notes: note.map { [$0] } ?? [], trainAugmentation: augmentation)
        }
    }
}

extension Recipe.DataSpec {
    /// The training rows `train-per-class` keeps, as positions in `labels` (the split's training rows), in order,
    /// with a line saying so; every position and no line without it. Chosen by `seed`, the run's, on a stream of
    /// its own: another seed keeps other rows, the split stays.
    func trainingRowsKept(_ labels: [Int], seed: UInt64) -> (rows: [Int], note: String?) {
        guard let limit = trainPerClass else { return (Array(labels.indices), nil) }
        let kept = limited(labels, limit, seed: seed, stream: 0x747063)
        return (kept, "data.train-per-class \(limit): \(kept.count) of \(labels.count) training rows kept (validation and "
                    + "test rows unchanged)")
    }

    /// CSV images (cut, resampled, and scaled to [0, 1] by `scale`) through `pipeline`, which works on 0–255 values as
    /// decoded images have them; rows that are not images, or a pipeline that does nothing, are left as they are.
    func csvImages(_ inputs: Tensor, through pipeline: ImagePipeline, rows: [Int], seed: UInt64) -> Tensor {
        guard image != nil, pipeline != ImagePipeline() else { return inputs }
        return pipeline.apply(inputs * 255, rows: rows, seed: seed, epoch: 0)
    }

    /// The shape of a model input from images stored as `stored` [C, H, W] (CSV rows before `crop` and `resize`):
    /// what the eval pipeline makes of them; `stored` itself for rows that are not images.
    func rowShape(stored: [Int]) -> [Int] {
        guard format != .csv || image != nil else { return stored }
        let shape = format == .csv ? [stored[0]] + (resize ?? crop.map { [$0[2], $0[3]] } ?? Array(stored.dropFirst())) : stored
        guard case let .success(out) = evalPipeline.outputShape(shape) else {
            preconditionFailure("rowShape: the recipe's pipelines were checked when it was read")
        }
        return out
    }

    /// Scaled CSV features of `rows` rows as model inputs: [rows, features], or images [rows, C, H, W] cut by `crop`
    /// and resampled to `resize`.
    func inputs(_ features: [Float], rows: Int) -> Tensor {
        guard let image else { return Tensor(features, shape: [rows, features.count / max(rows, 1)]) }
        var inputs = Tensor(features, shape: [rows] + image)
        if let c = crop { inputs = inputs.slice(axis: 2, c[0]..<(c[0] + c[2])).slice(axis: 3, c[1]..<(c[1] + c[3])) }
        if let size = resize { inputs = resizeImages(inputs, height: size[0], width: size[1]) }
        return inputs
    }
}

/// Refuses data a classifier cannot learn from, which would otherwise "train" to a meaningless perfect score: fewer
/// than two classes, or a class with no rows (a CSV's labels 0, 1, 3 make four outputs, one never a target).
func checkClasses(_ labels: [Int], classCount: Int, spec: Recipe.DataSpec,
                          describe: (Int) -> String) throws {
    let counts = rowsPerClass(labels, classCount)
    let present = counts.indices.filter { counts[$0] > 0 }
    guard present.count >= 2 else {
        let rows = labels.count == 1 ? "the one row is" : "all \(labels.count) rows are"
        let found = present.first.map { "\(rows) of \(describe($0))" } ?? "no rows"
        throw DataError(file: spec.path, line: nil, problem: "\(found); a classifier needs at least 2 classes")
    }
    if let empty = counts.firstIndex(of: 0) {
        let why = spec.format == .csv || spec.format == .idx ? " (labels are class ids 0..<\(classCount), so every id up to the largest "
            + "label needs rows)" : " (every text was a duplicate of one in another class)"
        throw DataError(file: spec.path, line: nil, problem: "\(describe(empty)) has no rows\(why)")
    }
}

/// Refuses a split that leaves a class without training rows (a class of one row with test and validation large
/// enough to take it): the model would be asked to predict a class it never saw.
func checkTrainingRows(_ trainLabels: [Int], all labels: [Int], classCount: Int, spec: Recipe.DataSpec,
                               describe: (Int) -> String) throws {
    let counts = rowsPerClass(trainLabels, classCount)
    if let empty = counts.firstIndex(of: 0) {
        let total = rowsPerClass(labels, classCount)[empty]
        let its = total == 1 ? "its only row" : "all its \(total) rows"
        throw DataError(file: spec.path, line: nil, problem: "\(describe(empty)) has no training rows: data.test "
                        + "\(spec.test) and data.validation \(spec.validation) hold out \(its); add rows or lower "
                        + "those fractions")
    }
}

private func rowsPerClass(_ labels: [Int], _ classCount: Int) -> [Int] {
    var counts = [Int](repeating: 0, count: classCount)
    for label in labels { counts[label] += 1 }
    return counts
}

/// At most `limit` rows of each class, chosen by a shuffle seeded with `seed` on `stream`, in row order.
func limited(_ labels: [Int], _ limit: Int, seed: UInt64, stream: UInt64 = 0x6c696d) -> [Int] {
    var rng = RandomGenerator(seed: seed).split(stream)
    var chosen: [Int] = []
    for c in Set(labels).sorted() {
        var rows = labels.indices.filter { labels[$0] == c }
        rows.shuffle(using: &rng)
        chosen += rows.prefix(limit)
    }
    return chosen.sorted()
}
