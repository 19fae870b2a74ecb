import Foundation
import Testing
import GraftCore
import GraftData
@testable import GraftRecipe

#if canImport(Glibc)
import Glibc
#endif

/// Writes `lines` as a CSV in a fresh directory and returns its path.
private func csv(_ lines: [String]) throws -> String {
    let path = "\(try temporaryDirectory())/data.csv"
    try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// `rows` rows of each label, two features each.
private func rows(_ labels: [Int], each rows: Int) -> [String] {
    labels.flatMap { label in (0..<rows).map { "\($0),\(label * 2),\(label)" } }
}

/// The recipe data of `blobRecipe` pointed at `path`, with `overrides`.
private func dataSpec(_ path: String, _ overrides: [String] = []) throws -> Recipe.DataSpec {
    try Recipe.load(path: try recipeFile(blobRecipe(csv: path, output: "o")), overrides: overrides).data
}

private func loadError(_ spec: Recipe.DataSpec, tokenizer: WordPieceTokenizer? = nil) -> String {
    errorText { _ = try RecipeData.load(spec, seed: 1, tokenizer: tokenizer) }
}

/// Makes a FIFO at `path`; should a reader wait on it, a writer comes after 5 s so the test fails instead of hanging.
private func makeFIFO(_ path: String) throws {
    #expect(mkfifo(path, 0o600) == 0)
    DispatchQueue.global().asyncAfter(deadline: .now() + 5) {
        let fd = open(path, O_WRONLY | O_NONBLOCK)
        if fd >= 0 { close(fd) }
    }
}

@Suite struct RecipeDataChecks {
    @Test func oneClassIsRefused() throws {
        let path = try csv(rows([0], each: 20))
        #expect(loadError(try dataSpec(path)) == "\(path): all 20 rows are of class 0; a classifier needs at least 2 classes")
        let three = try csv(rows([3], each: 20))
        #expect(loadError(try dataSpec(three)).hasPrefix("\(three): all 20 rows are of class 3;"))
    }

    @Test func aClassIDWithoutRowsIsRefused() throws {
        let path = try csv(rows([0, 1, 3], each: 10))
        #expect(loadError(try dataSpec(path)) == "\(path): class 2 has no rows (labels are class ids 0..<4, so every id "
                + "up to the largest label needs rows)")
    }

    @Test func aSplitThatLeavesAClassNoTrainingRowsIsRefused() throws {
        let path = try csv(rows([0, 1], each: 10) + ["5,5,2"])
        let spec = try dataSpec(path, ["data.test=0.5", "data.validation=0.4"])
        #expect(loadError(spec) == "\(path): class 2 has no training rows: data.test 0.5 and data.validation 0.4 hold "
                + "out its only row; add rows or lower those fractions")
        // The same data with smaller held-out parts trains.
        let data = try RecipeData.load(try dataSpec(path), seed: 1, tokenizer: nil)
        #expect(Set(data.train.labels) == [0, 1, 2] && data.classNames == ["0", "1", "2"])
    }

    @Test func textFoldersWithOneClassOrAClassOfDuplicatesAreRefused() throws {
        let tokenizer = try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b"])
        let root = try temporaryDirectory()
        func write(_ relative: String, _ text: String) throws {
            try FileManager.default.createDirectory(atPath: "\(root)/\((relative as NSString).deletingLastPathComponent)",
                                                    withIntermediateDirectories: true)
            try text.write(toFile: "\(root)/\(relative)", atomically: true, encoding: .utf8)
        }
        try write("sport/1.txt", "a")
        try write("sport/2.txt", "b")
        var spec = try dataSpec(root, ["data.format=text-folder"])
        #expect(loadError(spec, tokenizer: tokenizer)
                == "\(root): all 2 rows are of class 'sport'; a classifier needs at least 2 classes")
        try write("arts/1.txt", "c")
        try write("tech/1.txt", "b")
        spec = try dataSpec(root, ["data.format=text-folder"])
        #expect(loadError(spec, tokenizer: tokenizer)
                == "\(root): class 'tech' has no rows (every text was a duplicate of one in another class)")
    }

    @Test func specialFilesAreRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = "\(dir)/data.csv"
        try makeFIFO(fifo)
        #expect(loadError(try dataSpec(fifo)) == "\(fifo): not a regular file (a FIFO)")
        let recipe = "\(dir)/recipe.yaml"
        try makeFIFO(recipe)
        #expect(errorText { _ = try Recipe.load(path: recipe) } == "\(recipe): not a regular file (a FIFO)")
        let weights = "\(dir)/model.safetensors"
        try makeFIFO(weights)
        let spec = try Recipe.load(path: try recipeFile(blobRecipe(csv: "x", output: "o")),
                                   overrides: ["model.weights=\(weights)"]).model
        var rng = RandomGenerator(seed: 1)
        #expect(errorText { _ = try spec.build(classes: 2, inputShape: [6], padId: 0, using: &rng) }
                == "\(weights): not a regular file (a FIFO)")
    }
}

@Suite struct RecipeMessages {
    @Test func scheduleOptionsAreNamedAsTheRecipeSpellsThem() throws {
        let path = try recipeFile(blobRecipe(csv: "x", output: "o"))
        func message(_ overrides: [String]) -> String { errorText { _ = try Recipe.load(path: path, overrides: overrides) } }
        #expect(message(["schedule.warmup-steps=-1"])
                == "\(path):17: schedule cosine: invalid option warmup-steps = -1 (must be ≥ 0)")
        let step = try recipeFile(blobRecipe(csv: "x", output: "o")
            .replacingOccurrences(of: "  name: cosine\n  warmup-steps: 3", with: "  name: step\n  step-size: 0"))
        #expect(errorText { _ = try Recipe.load(path: step) }
                == "\(step):17: schedule step: invalid option step-size = 0 (must be > 0)")
        // Set on the command line, an option has no line.
        #expect(message(["schedule={name: step, step-size: 0}"]) == "\(path): schedule step: invalid option step-size = 0 (must be > 0)")
        #expect(message(["schedule={name: cosine, t-max: 0}"]) == "\(path): schedule cosine: invalid option t-max = 0 (must be > 0)")
        #expect(message(["schedule={name: one-cycle, max-lr: 0.1, pct-start: 1.5}"])
                == "\(path): schedule one-cycle: invalid option pct-start = 1.5 (must be in (0, 1))")
    }

    @Test func aHugeValueIsQuotedInPart() throws {
        let path = try recipeFile(blobRecipe(csv: "x", output: "o"))
        let huge = String(repeating: "z", count: 1_000_000)
        let shown = "'\(String(repeating: "z", count: 80))…' (1000000 characters)"
        let cases: [(String, String)] = [
            ("training.epochs=\(huge)", "\(path):19: training.epochs: \(shown) is not an integer"),
            ("training.monitor=\(huge)", "\(path):21: training.monitor: \(shown) is not one of: loss, accuracy, macro-f1"),
            ("strategy.lr=\(huge)", "\(path):12: strategy.lr: \(shown) is not a finite number"),
        ]
        for (override, expected) in cases {
            #expect(errorText { _ = try Recipe.load(path: path, overrides: [override]) } == expected)
        }
        // A huge unknown key, from the file itself (YAML takes a key of over 1,024 characters only after '? ').
        let withKey = try recipeFile(blobRecipe(csv: "x", output: "o", extra: "? \(huge)\n: 1"))
        let unknown = errorText { _ = try Recipe.load(path: withKey) }
        #expect(unknown.hasPrefix("\(withKey):23: \(String(repeating: "z", count: 80))… (1000000 characters): unknown field"))
        #expect(unknown.count < 400, "\(unknown.prefix(300))")
        let badOverride = errorText { _ = try Recipe.load(path: path, overrides: [huge]) }
        #expect(badOverride == "\(path): override \(shown) is not of the form field.path=value")
    }
}
