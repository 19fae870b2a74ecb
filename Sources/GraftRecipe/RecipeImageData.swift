import Foundation
import GraftCore
import GraftData

extension RecipeData {
    /// Reads an image folder or IDX pair: the rows kept (`limit-per-class`) are split by class, then the training
    /// rows kept (`train-per-class`) and the held-out ones are decoded at the recipe's channels and size and put
    /// through the pipelines. Validation and test rows take the eval pipeline now; training rows take the train
    /// pipeline now when it is deterministic, else at batch time (`trainAugmentation`).
    static func loadImages(_ spec: Recipe.DataSpec, seed: UInt64) throws -> RecipeData {
        let labels: [Int], classNames: [String]
        var notes: [String]
        let decode: ([Int]) throws -> Tensor
        let (height, width) = (spec.size[0], spec.size[1])
        switch spec.format {
        case .imageFolder:
            let folder = try ImageFolder.list(spec.path)
            (labels, classNames) = (folder.labels, folder.classNames)
            let skipped = folder.skipped.isEmpty ? "" : "; \(folder.skipped.count) other files skipped (not .png, .jpg or "
                + ".jpeg: \(folder.skipped.prefix(3).map { quotedExcerpt($0) }.joined(separator: ", "))\(folder.skipped.count > 3 ? ", …" : ""))"
            notes = ["\(spec.path): \(classNames.count) classes, \(folder.count) images\(skipped)"]
            decode = { try folder.subset($0).images(channels: spec.channels, height: height, width: width) }
        case .idx:
            let labelsPath = spec.labels ?? IDXImages.labelsPath(forImages: spec.path)!
            let idx = try IDXImages.read(images: spec.path, labels: labelsPath)
            labels = idx.labels
            let count = (labels.max() ?? -1) + 1
            if let names = spec.classNames, names.count != count {
                throw DataError(file: labelsPath, line: nil, problem: "labels are class ids 0..<\(count), but data.class-names "
                                + "gives \(names.count) names")
            }
            classNames = spec.classNames ?? (0..<count).map(String.init)
            notes = ["\(spec.path): \(idx.count) images of \(idx.height)×\(idx.width)×\(idx.channels), labels from \(labelsPath)"]
            decode = { idx.tensor(rows: $0, channels: spec.channels, size: (height, width)) }
        case .csv, .textFolder:
            preconditionFailure("loadImages: \(spec.format.rawValue) is not an image format")
        }
        let splitSeed = spec.splitSeed ?? seed
        let kept = spec.limitPerClass.map { limited(labels, $0, seed: splitSeed) } ?? Array(labels.indices)
        let keptLabels = kept.map { labels[$0] }
        let describe = { (c: Int) in "class \(quotedExcerpt(classNames[c]))" }
        try checkClasses(keptLabels, classCount: classNames.count, spec: spec, describe: describe)
        let (split, parts) = stratifiedSplit(labels: keptLabels, heldOut: [spec.test, spec.validation], seed: splitSeed)
        try checkTrainingRows(split.map { keptLabels[$0] }, all: keptLabels, classCount: classNames.count, spec: spec,
                              describe: describe)
        let (trainKept, note) = spec.trainingRowsKept(split.map { keptLabels[$0] }, seed: seed)
        let train = trainKept.map { split[$0] }
        if let note { notes.append(note) }
        let augmentation = spec.trainPipeline.isRandom ? spec.trainPipeline : nil
        func rows(_ indices: [Int], _ pipeline: ImagePipeline?) throws -> LabelledRows? {
            guard !indices.isEmpty else { return nil }
            let source = indices.map { kept[$0] }
            var inputs = try decode(source)
            if let pipeline { inputs = pipeline.apply(inputs, rows: indices, seed: seed, epoch: 0) }
            return LabelledRows(inputs: inputs, labels: source.map { labels[$0] })
        }
        guard let trainRows = try rows(train, augmentation == nil ? spec.trainPipeline : nil) else {
            throw DataError(file: spec.path, line: nil, problem: "no rows left to train on")
        }
        return RecipeData(train: trainRows, validation: try rows(parts[1], spec.evalPipeline), test: try rows(parts[0], spec.evalPipeline),
                          classNames: classNames, inputShape: spec.rowShape(stored: [spec.channels] + spec.size), notes: notes, trainAugmentation: augmentation)
    }
}

extension Recipe.DataSpec {
    /// Image files (PNG or JPEG) as the run's eval rows: decoded at the recipe's channels and size, then the eval
    /// pipeline, [n, C, H, W].
    func evalInputs(imageFiles files: [String]) throws -> Tensor {
        let images = try files.map { file in
            var image = try PixelImage.decode(path: file).converted(toChannels: channels).tensor
            if image.shape[1] != size[0] || image.shape[2] != size[1] {
                image = resizeImages(image.reshaped([1] + image.shape), height: size[0], width: size[1]).reshaped([channels] + size)
            }
            return image
        }
        return evalPipeline.apply(Tensor.stack(images, axis: 0), rows: Array(images.indices), seed: 0, epoch: 0)
    }
}
