import Foundation
import Testing
import GraftCore
import GraftData
@testable import GraftRecipe

/// The PNG fixtures of GraftDataTests (Fixtures/make_image_data_fixtures.py).
private let pngFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("GraftDataTests/Fixtures/images").path

/// root/<class>/<n>.png: two classes of four PNGs each (other colour types and sizes alike).
func imageFolder() throws -> String {
    let root = "\(try temporaryDirectory())/images"
    for (cls, files) in [("boots", ["rgb8", "grey8", "palette", "rgba16"]), ("shirts", ["grey16", "rgb16", "grey_alpha8", "rgba8"])] {
        try FileManager.default.createDirectory(atPath: "\(root)/\(cls)", withIntermediateDirectories: true)
        for (i, f) in files.enumerated() { try FileManager.default.copyItem(atPath: "\(pngFolder)/\(f).png", toPath: "\(root)/\(cls)/\(i).png") }
    }
    return root
}

private func imageRecipe(_ path: String, data: String = "", strategy: String = "{name: full, lr: 0.01}",
                         output: String = "~") -> String {
    """
    seed: 2
    data:
      format: image-folder
      path: \(path)
      size: 12
      validation: 0.25
      test: 0.25
    \(data)
    model: {architecture: small-cnn}
    strategy: \(strategy)
    training: {epochs: 2, batch-size: 4}
    output: \(output)
    """
}

@Suite struct ImageRecipeTests {
    @Test func readsTheImageFields() throws {
        let r = try Recipe.load(path: try recipeFile(imageRecipe("/x", data: """
              channels: 1
              transforms:
                train:
                  - random-resized-crop: {size: 8, scale: [0.5, 1]}
                  - horizontal-flip
                  - affine: {degrees: 10, translate: [0.1, 0.2], scale: [0.9, 1.1]}
                  - affine: {degrees: 0, shear: [-5, 5, 0, 10]}
                  - color-jitter: {brightness: 0.2, contrast: 0.3}
                eval:
                  - resize: {size: 9}
                  - center-crop: {size: 8}
              normalize: {mean: [0.5], std: [0.25]}
            """)))
        let d = r.data
        #expect(d.format == .imageFolder && d.channels == 1 && d.size == [12, 12])
        #expect(d.trainPipeline.transforms == [
            .randomResizedCrop(height: 8, width: 8, scale: 0.5...1, ratio: 0.75...(4.0 / 3)), .horizontalFlip(p: 0.5),
            .randomAffine(degrees: 10, translate: [0.1, 0.2], scale: 0.9...1.1),
            .randomAffine(degrees: 0, translate: [], scale: 1...1, shearX: -5...5, shearY: 0...10),
            .colorJitter(brightness: 0.8...1.2, contrast: 0.7...1.3, saturation: nil, hue: nil)])
        #expect(d.evalPipeline.transforms == [.resizeShorterSide(9), .centerCrop(height: 8, width: 8)])
        #expect(d.evalPipeline.normalization == .unit(mean: [0.5], std: [0.25]) && d.trainPipeline.isRandom)
        let idx = try Recipe.load(path: try recipeFile(imageRecipe("/d/train-images-idx3-ubyte.gz", data: "  normalize: caffe\n  channels: 3")
            .replacingOccurrences(of: "image-folder", with: "idx")))
        #expect(idx.data.labels == nil && idx.data.channels == 3 && idx.data.evalPipeline.normalization == .caffe)
    }

    @Test(arguments: [
        ("  transforms: {train: [{blur: {}}]}", "recipe.yaml:8: data.transforms.train.0.blur: unknown transform"),
        ("  transforms: {train: [{resize: {size: 0}}]}", "data.transforms.train.0.resize.size: must be 1 to 4096, got 0"),
        ("  transforms: {train: [{horizontal-flip: {p: 2}}]}", "data.transforms.train.0.horizontal-flip.p: must be in [0, 1]"),
        ("  transforms: {train: [{horizontal-flip: {q: 1}}]}", "data.transforms.train.0.horizontal-flip.q: unknown field"),
        ("  transforms: {train: [{random-resized-crop: {size: 8, scale: [0.9, 0.1]}}]}", "random-resized-crop.scale: must be [low, high]"),
        ("  transforms: {eval: [{center-crop: {size: 20}}]}", "data.transforms.eval: center-crop to 20×20 needs images at least that large, got 12×12"),
        ("  transforms: {train: [{center-crop: {size: 8}}]}", "data.transforms.eval: gives rows of [3, 12, 12] and train rows of [3, 8, 8]"),
        ("  transforms: {tain: []}", "data.transforms.tain: unknown field (known here: train, eval)"),
        ("  transforms: {train: {resize: 8}}", "data.transforms.train: must be a list of transforms"),
        ("  normalize: imagenet\n  channels: 1", "data.transforms.train: the normalisation needs 3 channels"),
        ("  normalize: imagenette", "recipe.yaml:8: data.normalize: 'imagenette' is not one of: imagenet, caffe, efficientnet-lite, none"),
        ("  normalize: {mean: [0.5, 0.5]}", "data.normalize.std: is required"),
        ("  normalize: {mean: [0.5], std: [0]}", "data.normalize.std: must be > 0, got 0.0"),
        ("  channels: 2", "data.channels: must be 1 or 3, got 2"),
        ("  transforms: {train: [{affine: {degrees: 0, shear: [5, 1]}}]}", "affine.shear: must be s ≥ 0 (x in ±s)"),
        ("  max-tokens: 5", "data.max-tokens: unknown field"),
    ])
    func namesEveryBadField(_ data: String, _ message: String) throws {
        let text = errorText { _ = try Recipe.load(path: try recipeFile(imageRecipe("/x", data: data))) }
        #expect(text.contains(message), "\(text)")
    }

    @Test func needsASizeAndAnIDXLabelsFile() throws {
        let noSize = imageRecipe("/x").replacingOccurrences(of: "  size: 12\n", with: "")
        #expect(errorText { _ = try Recipe.load(path: try recipeFile(noSize)) }.contains("data.size: is required"))
        let idx = imageRecipe("/d/pictures.idx").replacingOccurrences(of: "image-folder", with: "idx")
        #expect(errorText { _ = try Recipe.load(path: try recipeFile(idx)) }.contains("data.labels: is required"))
    }

    @Test func trainsAugmentedAndPredictsImageFiles() throws {
        let folder = try imageFolder()
        let output = "\(try temporaryDirectory())/run"
        let augmented = """
              transforms:
                train: [{random-resized-crop: {size: 12, scale: [0.5, 1]}}, horizontal-flip, {color-jitter: {brightness: 0.3}}]
              normalize: imagenet
            """
        let recipe = try Recipe.load(path: try recipeFile(imageRecipe(folder, data: augmented, output: output)))
        let run = RecipeRun(recipe)
        var lines: [String] = []
        run.log = { lines.append($0) }
        let result = try run.run()
        #expect(result.reports.count == 2, "\(lines)")
        #expect(lines.contains { $0.contains("2 classes, 8 images") }, "\(lines)")
        let trained = try TrainedRun(output)
        #expect(trained.readsImages && trained.classNames == ["boots", "shirts"])
        let x = try trained.inputs(imageFiles: ["\(pngFolder)/rgb8.png", "\(pngFolder)/grey1.png"])
        #expect(x.shape == [2, 3, 12, 12])
    }

    @Test func refusesCachedFeaturesOfAugmentedRows() throws {
        let folder = try imageFolder()
        let recipe = try Recipe.load(path: try recipeFile(imageRecipe(folder, data: "  transforms: {train: [horizontal-flip]}",
                                                                      strategy: "{name: feature-extraction, lr: 0.01}")))
        let text = errorText { try RecipeRun(recipe).run() }
        #expect(text.contains("strategy: the train transforms are random") && text.contains("cached"), "\(text)")
        // Deterministic transforms are applied once, on loading: caching is fine then.
        let fixed = try Recipe.load(path: try recipeFile(imageRecipe(folder, data: "  transforms: {train: [{grayscale: {channels: 3}}], eval: [{grayscale: {channels: 3}}]}",
                                                                     strategy: "{name: feature-extraction, lr: 0.01}")))
        let run = RecipeRun(fixed)
        run.log = { _ in }
        #expect(try run.run().reports.count == 2)
    }

    @Test func csvImagesTakeTheTransforms() throws {
        // Two classes of 1×2×2 images; pixel k of row r is (r + k) / 16 once scaled.
        let csv = "\(try temporaryDirectory())/pixels.csv"
        let lines = (0..<12).map { r in ((0..<4).map { String(r + $0) } + [String(r % 2)]).joined(separator: ",") }
        try lines.joined(separator: "\n").write(toFile: csv, atomically: true, encoding: .utf8)
        let data = """
              format: csv
              path: \(csv)
              scale: 0.0625
              image: [1, 2, 2]
              transforms: {train: [horizontal-flip], eval: []}
              normalize: {mean: [0.5], std: [0.25]}
            """
        let text = imageRecipe("/x").replacingOccurrences(of: "  format: image-folder\n  path: /x\n  size: 12\n", with: data + "\n")
        let recipe = try Recipe.load(path: try recipeFile(text))
        #expect(recipe.data.trainPipeline.isRandom && recipe.data.evalPipeline.normalization == .unit(mean: [0.5], std: [0.25]))
        let loaded = try RecipeData.load(recipe.data, seed: 2, tokenizer: nil)
        #expect(loaded.trainAugmentation != nil && loaded.inputShape == [1, 2, 2])
        func isRow(_ values: ArraySlice<Float>, _ pixel: (Float) -> Float) -> Bool {
            (0..<12).contains { r in zip(values, (0..<4).map { pixel(Float(r + $0) / 16) }).allSatisfy { abs($0 - $1) < 1e-4 } }
        }
        // Held-out rows took the eval pipeline: normalised as [0, 1] pixels, (x − 0.5) / 0.25.
        let test = try #require(loaded.test)
        #expect(test.count == 4)  // a quarter of each class
        for row in 0..<test.count {
            #expect(isRow(test.inputs.scalars[(row * 4)..<(row * 4 + 4)]) { ($0 - 0.5) / 0.25 }, "test row \(row)")
        }
        // Training rows are stored on 0–255, as the train pipeline takes them at batch time.
        for row in 0..<loaded.train.count {
            #expect(isRow(loaded.train.inputs.scalars[(row * 4)..<(row * 4 + 4)]) { $0 * 255 }, "train row \(row)")
        }
        // Without transforms or normalize, the rows stay as scale made them.
        let plain = try Recipe.load(path: try recipeFile(text.replacingOccurrences(of: "  transforms: {train: [horizontal-flip], eval: []}\n  normalize: {mean: [0.5], std: [0.25]}\n", with: "")))
        let plainRows = try #require(try RecipeData.load(plain.data, seed: 2, tokenizer: nil).test)
        #expect(isRow(plainRows.inputs.scalars[0..<4]) { $0 })

        let noImage = text.replacingOccurrences(of: "  image: [1, 2, 2]\n", with: "")
        #expect(errorText { _ = try Recipe.load(path: try recipeFile(noImage)) }.contains("data.transforms: needs image: [channels, height, width]"))
    }
}

