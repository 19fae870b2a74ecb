import Foundation
import Testing
import GraftCore
import GraftData
@testable import GraftRecipe

/// The data of `recipe` read as a run of seed `seed` reads it, with `overrides`.
private func load(_ recipe: String, _ overrides: [String], seed: UInt64 = 1,
                  tokenizer: WordPieceTokenizer? = nil) throws -> RecipeData {
    let spec = try Recipe.load(path: recipe, overrides: overrides).data
    return try RecipeData.load(spec, seed: seed, tokenizer: tokenizer)
}

/// Rows as comparable values: each row's inputs with its label.
private func contents(_ rows: LabelledRows?) -> [[Float]] {
    guard let rows else { return [] }
    let width = rows.inputs.count / max(rows.count, 1), values = rows.inputs.scalars
    return (0..<rows.count).map { Array(values[($0 * width)..<(($0 + 1) * width)]) + [Float(rows.labels[$0])] }
}

private func perClass(_ labels: [Int]) -> [Int: Int] { labels.reduce(into: [:]) { $0[$1, default: 0] += 1 } }

/// Checks `data.train-per-class` on `recipe` (whose data has classes `classes` with `trainRows` training rows each
/// without the limit) at each of `limits`: validation and test rows unchanged, at most N training rows per class, all
/// of them training rows of the whole data.
private func checkLimits(_ recipe: String, _ limits: [Int], classes: Int, trainRows: Int,
                         tokenizer: WordPieceTokenizer? = nil) throws {
    let whole = try load(recipe, [], tokenizer: tokenizer)
    #expect(perClass(whole.train.labels).values.allSatisfy { $0 == trainRows })
    for limit in limits {
        let limited = try load(recipe, ["data.train-per-class=\(limit)"], tokenizer: tokenizer)
        #expect(contents(limited.validation) == contents(whole.validation))
        #expect(contents(limited.test) == contents(whole.test))
        let counts = perClass(limited.train.labels)
        #expect(counts.count == classes && counts.values.allSatisfy { $0 == min(limit, trainRows) })
        #expect(Set(contents(limited.train)).isSubset(of: Set(contents(whole.train))))
        #expect(limited.notes.contains { $0.hasPrefix("data.train-per-class \(limit):") })
    }
}

/// An IDX pair of `count` 2×2 images (label i % 2, pixels i) in a fresh directory; returns the images file.
private func idxFiles(count: Int) throws -> String {
    let dir = try temporaryDirectory()
    func header(_ magic: UInt8, _ dims: [Int]) -> [UInt8] {
        [0, 0, 8, magic] + dims.flatMap { d in (0..<4).reversed().map { UInt8((d >> (8 * $0)) & 0xff) } }
    }
    let images = header(3, [count, 2, 2]) + (0..<count).flatMap { [UInt8](repeating: UInt8($0), count: 4) }
    let labels = header(1, [count]) + (0..<count).map { UInt8($0 % 2) }
    try Data(images).write(to: URL(fileURLWithPath: "\(dir)/train-images-idx3-ubyte"))
    try Data(labels).write(to: URL(fileURLWithPath: "\(dir)/train-labels-idx1-ubyte"))
    return "\(dir)/train-images-idx3-ubyte"
}

@Suite struct TrainPerClassTests {
    @Test func csvKeepsTheHeldOutRowsAndAtMostNTrainingRowsPerClass() throws {
        // 400 rows, 100 per class: 60 training, 20 validation, 20 test rows of each class.
        let recipe = try recipeFile(blobRecipe(csv: try blobCSV(rows: 400), output: "o"))
        try checkLimits(recipe, [1, 5, 20, 60, 500], classes: 4, trainRows: 60)
    }

    @Test func imageFoldersAndIDXFilesToo() throws {
        let folder = try recipeFile("""
            data: {format: image-folder, path: \(try imageFolder()), size: 6, validation: 0.25, test: 0.25}
            model: {architecture: small-cnn}
            strategy: {name: full, lr: 0.01}
            training: {epochs: 1}
            """)
        try checkLimits(folder, [1, 2, 3], classes: 2, trainRows: 2)
        let idx = try recipeFile("""
            data: {format: idx, path: \(try idxFiles(count: 40)), size: 2, validation: 0.2, test: 0.2}
            model: {architecture: small-cnn}
            strategy: {name: full, lr: 0.01}
            training: {epochs: 1}
            """)
        try checkLimits(idx, [1, 4, 12], classes: 2, trainRows: 12)
    }

    @Test func textFoldersToo() throws {
        let tokenizer = try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + (0..<40).map { "w\($0)" })
        let root = try temporaryDirectory()
        for (c, name) in ["arts", "sport"].enumerated() {
            try FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
            for i in 0..<20 { try "w\(c * 20 + i) w\(i)".write(toFile: "\(root)/\(name)/\(i).txt", atomically: true, encoding: .utf8) }
        }
        let recipe = try recipeFile(blobRecipe(csv: root, output: "o").replacingOccurrences(of: "format: csv", with: "format: text-folder"))
        try checkLimits(recipe, [1, 3], classes: 2, trainRows: 12, tokenizer: tokenizer)
    }

    @Test func theChoiceFollowsTheSeedAndTheSplitTheSplitSeed() throws {
        let recipe = try recipeFile(blobRecipe(csv: try blobCSV(rows: 400), output: "o"))
        let limit = ["data.train-per-class=5"]
        let first = try load(recipe, limit, seed: 1), again = try load(recipe, limit, seed: 1)
        #expect(contents(first.train) == contents(again.train))
        // Another run seed with the split seed fixed: other training rows, the same held-out rows.
        let other = try load(recipe, limit + ["data.split-seed=1"], seed: 2)
        #expect(contents(other.train) != contents(first.train))
        #expect(contents(other.validation) == contents(first.validation) && contents(other.test) == contents(first.test))
        // Without a split seed, the run's seed splits.
        let resplit = try load(recipe, limit, seed: 2)
        #expect(contents(resplit.test) != contents(first.test))
    }

    @Test func aTrainingSetSmallerThanABatchNormBatchIsRefused() throws {
        // A small CNN has batch norm, which leaves a short batch out: 2 rows in batches of 4 would never train.
        let recipe = try Recipe.load(path: try recipeFile("""
            data: {format: image-folder, path: \(try imageFolder()), size: 8, validation: 0.25, test: 0.25, train-per-class: 1}
            model: {architecture: small-cnn}
            strategy: {name: full, lr: 0.01}
            training: {epochs: 1, batch-size: 4}
            """))
        #expect(errorText { try RecipeRun(recipe).run() }.hasSuffix("training.batch-size: 4 is more than the 2 training rows, "
                + "and batch norm leaves a short batch out, so no step would train; use a batch size of at most 2"))
        try RecipeRun(try Recipe.load(path: recipe.file, overrides: ["training.batch-size=2"])).run()
    }

    @Test func badValuesNameTheFieldAndLine() throws {
        let path = try recipeFile(blobRecipe(csv: "x", output: "o"))
        func message(_ overrides: [String]) -> String { errorText { _ = try Recipe.load(path: path, overrides: overrides) } }
        #expect(message(["data.train-per-class=0"]) == "\(path): data.train-per-class: must be ≥ 1, got 0")
        #expect(message(["data.train-per-class=many"]).contains("data.train-per-class: 'many' is not an integer"))
        #expect(message(["data.split-seed=-1"]).contains("data.split-seed: must be ≥ 0, got -1"))
        let inFile = try recipeFile(blobRecipe(csv: "x", output: "o").replacingOccurrences(of: "  test: 0.2", with: "  test: 0.2\n  train-per-class: [5]"))
        #expect(errorText { _ = try Recipe.load(path: inFile) } == "\(inFile):7: data.train-per-class: must be a single value")
    }
}
