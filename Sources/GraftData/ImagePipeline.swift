import Foundation
import GraftCore

/// One step of an image pipeline, as torchvision's transform of the same name defines it. The random ones draw
/// their parameters from the generator they are given, which the pipeline keys on (seed, epoch, row).
public enum ImageTransform: Sendable, Equatable {
    /// `Resize([h, w])`, or with `shorterSide` `Resize(n)`: antialiased bilinear.
    case resize(height: Int, width: Int)
    case resizeShorterSide(Int)
    /// `CenterCrop`: the image must be at least this large.
    case centerCrop(height: Int, width: Int)
    /// `RandomResizedCrop(size, scale, ratio)`: a region of a random share `scale` of the area and aspect `ratio`
    /// (log-uniform), 10 attempts, else the central crop of the largest fitting aspect; resized to height × width.
    case randomResizedCrop(height: Int, width: Int, scale: ClosedRange<Double>, ratio: ClosedRange<Double>)
    /// `RandomHorizontalFlip(p)`.
    case horizontalFlip(p: Double)
    /// `RandomAffine(degrees, translate, scale, shear)` (nearest, fill 0): angle uniform in ±degrees; shifts uniform
    /// in ±translate × width (height), rounded; scale uniform in `scale`; shear angles uniform in `shearX` and
    /// `shearY` (degrees). `RandomRotation(d)` is this with only degrees.
    case randomAffine(degrees: Double, translate: [Double], scale: ClosedRange<Double>,
                      shearX: ClosedRange<Double>? = nil, shearY: ClosedRange<Double>? = nil)
    /// `ColorJitter`: factors uniform in the ranges given (nil: left alone), applied in a random order; hue shifts
    /// uniform in ±hue.
    case colorJitter(brightness: ClosedRange<Double>?, contrast: ClosedRange<Double>?, saturation: ClosedRange<Double>?,
                     hue: ClosedRange<Double>?)
    /// `Grayscale(num_output_channels)`: luminance in 1 or 3 channels (a grey image is repeated).
    case grayscale(channels: Int)

    /// Whether the transform draws random numbers (and so cannot be applied once, ahead of training).
    public var isRandom: Bool {
        switch self {
        case .resize, .resizeShorterSide, .centerCrop, .grayscale: false
        case .randomResizedCrop, .horizontalFlip, .randomAffine, .colorJitter: true
        }
    }

    /// The shape [C, H, W] an image of `shape` comes out with, or why the transform cannot take it.
    public func outputShape(_ shape: [Int]) -> Result<[Int], DataError.Problem> {
        let (c, h, w) = (shape[0], shape[1], shape[2])
        switch self {
        case let .resize(height, width), let .randomResizedCrop(height, width, _, _): return .success([c, height, width])
        case let .resizeShorterSide(n):
            let long = Int(Double(n) * Double(max(h, w)) / Double(min(h, w)))
            return .success(h <= w ? [c, n, long] : [c, long, n])
        case let .centerCrop(height, width):
            guard height <= h && width <= w else { return .failure(.init("center-crop to \(height)×\(width) needs images at least that large, got \(h)×\(w)")) }
            return .success([c, height, width])
        case .horizontalFlip, .randomAffine: return .success(shape)
        case .colorJitter: return .success(shape)
        case let .grayscale(channels): return .success([channels, h, w])
        }
    }

    /// The transform of `image`, drawing what it needs from `rng`.
    public func apply(_ image: FloatImage, using rng: inout RandomGenerator) -> FloatImage {
        switch self {
        case let .resize(height, width): return image.resized(height: height, width: width)
        case let .resizeShorterSide(n): return image.resized(shorterSide: n)
        case let .centerCrop(height, width): return image.centerCropped(height: height, width: width)
        case let .randomResizedCrop(height, width, scale, ratio):
            let r = ImageTransform.resizedCropRegion(height: image.height, width: image.width, scale: scale, ratio: ratio, using: &rng)
            return image.cropped(top: r.top, left: r.left, height: r.height, width: r.width).resized(height: height, width: width)
        case let .horizontalFlip(p):
            return uniform(0...1, &rng) < p ? image.flippedHorizontally() : image
        case let .randomAffine(degrees, translate, scale, shearX, shearY):
            let angle = uniform(-degrees...degrees, &rng)
            var shift = (dx: 0.0, dy: 0.0)
            if translate.count == 2 {
                let (mx, my) = (translate[0] * Double(image.width), translate[1] * Double(image.height))
                shift = (uniform(-mx...mx, &rng).rounded(.toNearestOrEven), uniform(-my...my, &rng).rounded(.toNearestOrEven))
            }
            let factor = scale.lowerBound == scale.upperBound ? scale.lowerBound : uniform(scale, &rng)
            let shear = (x: shearX.map { uniform($0, &rng) } ?? 0, y: shearY.map { uniform($0, &rng) } ?? 0)
            return image.affine(angle: angle, translate: shift, scale: factor, shear: shear)
        case let .colorJitter(brightness, contrast, saturation, hue):
            let order = [0, 1, 2, 3].shuffled(using: &rng)
            let factors = [brightness, contrast, saturation, hue].map { $0.map { Float(uniform($0, &rng)) } }
            var out = image
            for step in order {
                guard let f = factors[step] else { continue }
                switch step {
                case 0: out = out.adjustingBrightness(f)
                case 1: out = out.adjustingContrast(f)
                case 2: out = out.adjustingSaturation(f)
                default: out = out.adjustingHue(f)
                }
            }
            return out
        case let .grayscale(channels): return image.grayscale(channels: channels)
        }
    }

    /// `RandomResizedCrop.get_params`: up to 10 draws of an area share and a log-uniform aspect whose rounded
    /// region fits, at a uniform position; else the centred region of the whole image clamped to the aspect range.
    static func resizedCropRegion(height: Int, width: Int, scale: ClosedRange<Double>, ratio: ClosedRange<Double>,
                                  using rng: inout RandomGenerator) -> (top: Int, left: Int, height: Int, width: Int) {
        let area = Double(height * width)
        let logRatio = log(ratio.lowerBound)...log(ratio.upperBound)
        for _ in 0..<10 {
            let target = area * uniform(scale, &rng)
            let aspect = exp(uniform(logRatio, &rng))
            let w = Int((target * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((target / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && w <= width && h > 0 && h <= height {
                let top = Int.random(in: 0...(height - h), using: &rng), left = Int.random(in: 0...(width - w), using: &rng)
                return (top, left, h, w)
            }
        }
        let inRatio = Double(width) / Double(height)
        var (w, h) = (width, height)
        if inRatio < ratio.lowerBound {
            h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if inRatio > ratio.upperBound {
            w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return ((height - h) / 2, (width - w) / 2, h, w)
    }
}

/// Uniform in `range` from 53 random bits (the lower bound when the range is a point).
private func uniform(_ range: ClosedRange<Double>, _ rng: inout RandomGenerator) -> Double {
    range.lowerBound + (range.upperBound - range.lowerBound) * Double(rng.next() >> 11) * 0x1p-53
}

/// Per-channel normalisation of 0–255 pixels, the last step of every pipeline: channel c of the result is
/// (x[source c] − mean[c]) / std[c], mean and std in 0–255 units.
public struct Normalization: Sendable, Equatable {
    public let mean: [Float], std: [Float]
    /// Channels in reverse order (RGB → BGR), as Caffe's models take them.
    public let bgr: Bool

    public init(mean: [Float], std: [Float], bgr: Bool = false) {
        require(mean.count == std.count && !mean.isEmpty && std.allSatisfy { $0 > 0 },
                "Normalization: \(mean.count) means, \(std.count) positive stds needed")
        (self.mean, self.std, self.bgr) = (mean, std, bgr)
    }

    /// Pixels scaled to [0, 1], as torchvision's `ToTensor` leaves them.
    public static let none = Normalization(mean: [0], std: [255])
    /// torchvision's ImageNet statistics on [0, 1] pixels.
    public static let imagenet = unit(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
    /// Caffe (and Keras' `caffe` mode): BGR, the ImageNet mean subtracted on 0–255 pixels, no scaling.
    public static let caffe = Normalization(mean: [103.939, 116.779, 123.68], std: [1, 1, 1], bgr: true)
    /// EfficientNet-Lite's (x − 127) / 128 on 0–255 pixels.
    public static let efficientNetLite = Normalization(mean: [127], std: [128])

    /// mean and std given for [0, 1] pixels (torchvision's `Normalize` after `ToTensor`).
    public static func unit(mean: [Float], std: [Float]) -> Normalization {
        Normalization(mean: mean.map { $0 * 255 }, std: std.map { $0 * 255 })
    }

    /// Whether it applies to images of `channels` channels: one value for all, or one per channel (Caffe's BGR
    /// order needs three).
    public func accepts(channels: Int) -> Bool { (mean.count == 1 && !bgr) || mean.count == channels }

    /// `image` normalised into `out` (channels × height × width values).
    func write(_ image: FloatImage, to out: UnsafeMutablePointer<Float>) {
        let plane = image.height * image.width
        for c in 0..<image.channels {
            let k = mean.count == 1 ? 0 : c
            let source = bgr ? image.channels - 1 - c : c
            let (m, s) = (mean[k], std[k])
            image.values.withUnsafeBufferPointer { v in
                for i in 0..<plane { out[c * plane + i] = (v[source * plane + i] - m) / s }
            }
        }
    }
}

extension DataError {
    /// What is wrong, before the file it is about is known.
    public struct Problem: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }
}
