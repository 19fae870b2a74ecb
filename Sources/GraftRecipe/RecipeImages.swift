import Foundation
import GraftCore
import GraftData
import GraftIO

/// The image fields of a recipe's data (`format: image-folder` or `idx`):
///
/// ```yaml
/// data:
///   format: idx                                  # or image-folder: path is root/<class>/<image files>
///   path: /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
///   labels: …/train-labels-idx1-ubyte.gz         # idx; default: path with images-idx3 → labels-idx1
///   class-names: [T-shirt/top, Trouser, …]       # idx; default 0, 1, …
///   channels: 3                                  # 1 or 3 (default 3 for image-folder, 1 for idx)
///   size: 64                                     # or [height, width]: every image is resampled to it on loading
///   transforms:
///     train: [{random-resized-crop: {size: 64, scale: [0.5, 1]}}, horizontal-flip]
///     eval: []
///   normalize: efficientnet-lite                 # imagenet, caffe, efficientnet-lite, none, or {mean: […], std: […]}
/// ```
extension Recipe.DataSpec {
    mutating func readImageFields(_ f: inout Fields) throws {
        if format == .idx {
            labels = try f.string("labels")
            if labels == nil && IDXImages.labelsPath(forImages: path) == nil {
                throw f.error("labels", "is required: the file name \(quotedExcerpt(path)) does not contain images-idx3 to derive it from")
            }
            classNames = try f.strings("class-names")
            if let names = classNames, names.count < 2 || Set(names).count != names.count {
                throw f.error("class-names", "must be at least two different names")
            }
        }
        channels = try f.int("channels", min: 1) ?? (format == .idx ? 1 : 3)
        if channels != 1 && channels != 3 { throw f.error("channels", "must be 1 or 3, got \(channels)") }
        guard let size = try f.ints("size") else {
            throw f.error("size", "is required: [height, width] (or one number) every image is resampled to on loading")
        }
        self.size = try imageSize(size, f, "size")
        try readPipelines(&f, stored: [channels] + self.size)
    }

    /// `transforms` (train and eval) and `normalize` of images stored as `stored` [C, H, W]: image files and IDX
    /// rows after resampling to `size`, CSV rows after `crop` and `resize`.
    mutating func readPipelines(_ f: inout Fields, stored: [Int]) throws {
        let normalization = try readNormalization(&f)
        var t = try f.section("transforms")
        for (key, pipeline) in [("train", \Recipe.DataSpec.trainPipeline), ("eval", \.evalPipeline)] {
            self[keyPath: pipeline] = ImagePipeline(try readTransforms(t.node(key), t, key), normalization: normalization)
        }
        try t.finish()
        var shapes: [[Int]] = []
        for (key, pipeline) in [("train", trainPipeline), ("eval", evalPipeline)] {
            switch pipeline.outputShape(stored) {
            case let .success(shape): shapes.append(shape)
            case let .failure(problem): throw t.error(key, "\(problem)")
            }
        }
        if shapes[0] != shapes[1] {
            throw t.error("eval", "gives rows of \(shapes[1]) and train rows of \(shapes[0]); the model takes one shape")
        }
    }

    /// `normalize`: a preset's name or `{mean: […], std: […]}` on [0, 1] pixels (one value, or one per channel).
    private func readNormalization(_ f: inout Fields) throws -> Normalization {
        guard let node = f.node("normalize") else { return .none }
        if let name = node.scalar {
            let presets: [String: Normalization] = ["imagenet": .imagenet, "caffe": .caffe,
                                                    "efficientnet-lite": .efficientNetLite, "none": .none]
            guard let preset = presets[name] else {
                throw f.error("normalize", "\(quotedExcerpt(name)) is not one of: imagenet, caffe, efficientnet-lite, none "
                              + "(or give {mean: […], std: […]})")
            }
            return preset
        }
        var m = try Fields(node, path: f.field("normalize"), file: f.file)
        guard let mean = try m.doubles("mean"), let std = try m.doubles("std") else {
            throw m.error(m.has("mean") ? "std" : "mean", "is required (for [0, 1] pixels, one value or one per channel)")
        }
        guard mean.count == std.count, [1, 3].contains(mean.count) else {
            throw m.error("std", "mean and std need the same count, 1 or 3, got \(mean.count) and \(std.count)")
        }
        if let bad = std.first(where: { !($0 > 0) }) { throw m.error("std", "must be > 0, got \(bad)") }
        try m.finish()
        return .unit(mean: mean.map(Float.init), std: std.map(Float.init))
    }

    /// A list of transforms, each a name (`horizontal-flip`) or a name with its options (`resize: {size: 64}`).
    func readTransforms(_ node: YAMLNode?, _ parent: Fields, _ key: String) throws -> [ImageTransform] {
        guard let node else { return [] }
        guard let items = node.items else { throw parent.error(key, "must be a list of transforms") }
        return try items.enumerated().map { index, item in
            let path = parent.field("\(key).\(index)")
            if let name = item.scalar { return try transform(name, Fields(nil, path: "\(path).\(name)", file: parent.file), item.line) }
            guard let entries = item.entries, entries.count == 1 else {
                throw RecipeError(file: parent.file, line: item.line, field: path,
                                  "must be one transform: a name, or a name with its options (resize: {size: 64})")
            }
            return try transform(entries[0].key, Fields(entries[0].value, path: "\(path).\(entries[0].key)", file: parent.file),
                                 entries[0].line)
        }
    }

    private func transform(_ name: String, _ fields: Fields, _ line: Int) throws -> ImageTransform {
        var o = fields
        let made: ImageTransform
        switch name {
        case "resize":
            let size = try o.ints("size") ?? []
            if size.count == 1 {
                guard size[0] > 0 && size[0] <= 4096 else { throw o.error("size", "must be 1 to 4096, got \(size[0])") }
                made = .resizeShorterSide(size[0])
            } else {
                let s = try imageSize(size, o, "size")
                made = .resize(height: s[0], width: s[1])
            }
        case "center-crop":
            let s = try imageSize(try o.ints("size") ?? [], o, "size")
            made = .centerCrop(height: s[0], width: s[1])
        case "random-resized-crop":
            let s = try imageSize(try o.ints("size") ?? [], o, "size")
            let scale = try range(&o, "scale", default: 0.08...1, within: 0...1)
            guard scale.upperBound > 0 else { throw o.error("scale", "must reach above 0") }
            let ratio = try range(&o, "ratio", default: (3.0 / 4)...(4.0 / 3), within: 1e-3...1e3)
            made = .randomResizedCrop(height: s[0], width: s[1], scale: scale, ratio: ratio)
        case "horizontal-flip":
            let p = try o.double("p") ?? 0.5
            guard (0...1).contains(p) else { throw o.error("p", "must be in [0, 1], got \(p)") }
            made = .horizontalFlip(p: p)
        case "rotation", "affine":
            guard let degrees = try o.double("degrees") else { throw o.error("degrees", "is required (rotation up to ± degrees)") }
            guard degrees >= 0 && degrees <= 180 else { throw o.error("degrees", "must be in [0, 180], got \(degrees)") }
            var translate: [Double] = [], scale = 1.0...1.0
            var shear: [ClosedRange<Double>?] = [nil, nil]
            if name == "affine" {
                translate = try o.doubles("translate") ?? []
                guard translate.isEmpty || (translate.count == 2 && translate.allSatisfy { (0...1).contains($0) }) else {
                    throw o.error("translate", "must be [horizontal, vertical] fractions in [0, 1]")
                }
                scale = try range(&o, "scale", default: 1...1, within: 1e-3...1e3)
                // As RandomAffine reads it: s is x in ±s; [a, b] is x in [a, b]; [a, b, c, d] adds y in [c, d].
                if let s = try o.doubles("shear") {
                    guard [1, 2, 4].contains(s.count), s.allSatisfy({ abs($0) < 90 }), s.count == 1 ? s[0] >= 0 : true,
                          s.count < 2 || s[0] <= s[1], s.count < 4 || s[2] <= s[3] else {
                        throw o.error("shear", "must be s ≥ 0 (x in ±s), [min, max] (x) or [x min, x max, y min, y max], "
                                      + "degrees within ±90")
                    }
                    shear = s.count == 1 ? [-s[0]...s[0], nil] : [s[0]...s[1], s.count == 4 ? s[2]...s[3] : nil]
                }
            }
            made = .randomAffine(degrees: degrees, translate: translate, scale: scale, shearX: shear[0], shearY: shear[1])
        case "color-jitter":
            func factor(_ key: String) throws -> ClosedRange<Double>? {
                guard let v = try o.double(key) else { return nil }
                guard v >= 0 else { throw o.error(key, "must be ≥ 0, got \(v)") }
                return v == 0 ? nil : max(0, 1 - v)...(1 + v)
            }
            let (b, c, s) = (try factor("brightness"), try factor("contrast"), try factor("saturation"))
            let hue = try o.double("hue") ?? 0
            guard (0...0.5).contains(hue) else { throw o.error("hue", "must be in [0, 0.5], got \(hue)") }
            made = .colorJitter(brightness: b, contrast: c, saturation: s, hue: hue == 0 ? nil : -hue...hue)
        case "grayscale":
            let count = try o.int("channels") ?? 1
            guard count == 1 || count == 3 else { throw o.error("channels", "must be 1 or 3, got \(count)") }
            made = .grayscale(channels: count)
        default:
            throw RecipeError(file: fields.file, line: line, field: fields.path, "unknown transform (known: resize, center-crop, "
                              + "random-resized-crop, horizontal-flip, rotation, affine, color-jitter, grayscale)")
        }
        try o.finish()
        return made
    }
}

/// [height, width] from one number (a square) or two, each 1 to 4096.
private func imageSize(_ size: [Int], _ f: Fields, _ key: String) throws -> [Int] {
    let hw = size.count == 1 ? [size[0], size[0]] : size
    guard hw.count == 2 && hw.allSatisfy({ $0 > 0 && $0 <= 4096 }) else {
        throw f.error(key, size.isEmpty ? "is required: one number or [height, width]"
                          : "must be one number or [height, width], each 1 to 4096, got \(excerpt("\(size)"))")
    }
    return hw
}

/// `[low, high]` with low ≤ high inside `within`.
private func range(_ f: inout Fields, _ key: String, default value: ClosedRange<Double>,
                   within bounds: ClosedRange<Double>) throws -> ClosedRange<Double> {
    guard let v = try f.doubles(key) else { return value }
    guard v.count == 2, v[0] <= v[1], bounds.contains(v[0]), bounds.contains(v[1]) else {
        throw f.error(key, "must be [low, high] with low ≤ high in [\(bounds.lowerBound), \(bounds.upperBound)], got \(excerpt("\(v)"))")
    }
    return v[0]...v[1]
}
