import GraftCore

/// Resamples images [N, C, H, W] to [N, C, height, width] with an antialiased triangle filter, the arithmetic of
/// PyTorch's `F.interpolate(mode="bilinear", antialias=True, align_corners=False)` (and of PIL's bilinear resize):
/// each output sample is a weighted mean of the inputs under a triangle as wide as the scale factor, at least one
/// pixel, so shrinking averages every input pixel instead of skipping some, and enlarging is plain bilinear.
public func resizeImages(_ images: Tensor, height: Int, width: Int) -> Tensor {
    require(images.shape.count == 4 && height > 0 && width > 0 && images.shape[2] > 0 && images.shape[3] > 0,
            "resizeImages: need images [N, C, H, W] and a positive size, got \(images.shape) → \(height)×\(width)")
    let (planes, inH, inW) = (images.shape[0] * images.shape[1], images.shape[2], images.shape[3])
    let xs = triangleTaps(input: inW, output: width), ys = triangleTaps(input: inH, output: height)
    let source = images.scalars
    var rows = [Float](repeating: 0, count: planes * inH * width)  // horizontal pass
    var out = [Float](repeating: 0, count: planes * height * width)
    for p in 0..<planes {
        for y in 0..<inH {
            let line = (p * inH + y) * inW
            for (x, tap) in xs.enumerated() {
                var sum: Float = 0
                for (k, w) in tap.weights.enumerated() { sum += w * source[line + tap.first + k] }
                rows[(p * inH + y) * width + x] = sum
            }
        }
        for (y, tap) in ys.enumerated() {
            for x in 0..<width {
                var sum: Float = 0
                for (k, w) in tap.weights.enumerated() { sum += w * rows[(p * inH + tap.first + k) * width + x] }
                out[(p * height + y) * width + x] = sum
            }
        }
    }
    return Tensor(out, shape: [images.shape[0], images.shape[1], height, width])
}

/// For each output sample, the first input it reads and the normalised weights of the inputs from there.
private func triangleTaps(input: Int, output: Int) -> [(first: Int, weights: [Float])] {
    let scale = Double(input) / Double(output)
    let support = max(scale, 1), inverse = 1 / max(scale, 1)
    return (0..<output).map { i in
        let centre = scale * (Double(i) + 0.5)
        let first = max(Int(centre - support + 0.5), 0)
        let last = min(Int(centre + support + 0.5), input)
        var weights = (first..<last).map { j in max(0, 1 - abs((Double(j) - centre + 0.5) * inverse)) }
        let total = weights.reduce(0, +)
        if total > 0 { weights = weights.map { $0 / total } }
        return (first, weights.map(Float.init))
    }
}
