import Foundation
import GraftCore
import GraftData
import GraftTrain

/// Rows ready for training: inputs [N, …] (token ids as floats for text) and labels.
public struct LabelledRows {
    public let inputs: Tensor
    public let labels: [Int]
    public var count: Int { labels.count }
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

    /// Reads and splits `spec`; text is tokenised with `tokenizer`.
    static func load(_ spec: Recipe.DataSpec, seed: UInt64, tokenizer: WordPieceTokenizer?) throws -> RecipeData {
        switch spec.format {
        case .textFolder:
            guard let tokenizer else { preconditionFailure("text data needs a tokenizer") }
            let (all, report) = try TextDataset.folder(spec.path)
            var notes = [report.summary]
            if !report.nonUTF8Files.isEmpty { notes.append("decoded as Windows-1252: \(report.nonUTF8Files.joined(separator: ", "))") }
            let data = spec.limitPerClass.map { all.subset(limited(all.labels, $0, seed: seed)) } ?? all
            let (train, parts) = data.stratifiedSplit(heldOut: [spec.test, spec.validation], seed: seed)
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
            let data = spec.limitPerClass.map { all.subset(limited(all.labels, $0, seed: seed)) } ?? all
            let (train, parts) = data.stratifiedSplit(heldOut: [spec.test, spec.validation], seed: seed)
            func rows(_ d: LabelledData) -> LabelledRows? {
                guard d.count > 0 else { return nil }
                return LabelledRows(inputs: Tensor(d.features, shape: [d.count] + shape), labels: d.labels)
            }
            guard let trainRows = rows(train) else { throw DataError(file: spec.path, line: nil, problem: "no rows left to train on") }
            return RecipeData(train: trainRows, validation: rows(parts[1]), test: rows(parts[0]),
                              classNames: (0..<data.classCount).map(String.init), inputShape: shape, notes: [])
        }
    }
}

/// At most `limit` rows of each class, chosen by a seeded shuffle, in row order.
private func limited(_ labels: [Int], _ limit: Int, seed: UInt64) -> [Int] {
    var rng = RandomGenerator(seed: seed).split(0x6c696d)
    var chosen: [Int] = []
    for c in Set(labels).sorted() {
        var rows = labels.indices.filter { labels[$0] == c }
        rows.shuffle(using: &rng)
        chosen += rows.prefix(limit)
    }
    return chosen.sorted()
}
