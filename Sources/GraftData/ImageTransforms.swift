import Foundation
import GraftCore

/// An image of `channels` planes of `height` × `width` Float values (0–255 for pixels), channels first: what the
/// transforms below work on, one image at a time.
public struct FloatImage: Sendable, Equatable {
    public let channels: Int, height: Int, width: Int
    public var values: [Float]

    public init(channels: Int, height: Int, width: Int, values: [Float]) {
        require(channels > 0 && height > 0 && width > 0 && values.count == channels * height * width,
                "FloatImage: \(values.count) values for \(channels)×\(height)×\(width)")
        (self.channels, self.height, self.width, self.values) = (channels, height, width, values)
    }

    /// A [C, H, W] tensor's values.
    public init(_ tensor: Tensor) {
        require(tensor.rank == 3, "FloatImage: need [C, H, W], got \(tensor.shape)")
        self.init(channels: tensor.shape[0], height: tensor.shape[1], width: tensor.shape[2], values: tensor.scalars)
    }

    public var shape: [Int] { [channels, height, width] }
    public var tensor: Tensor { Tensor(values, shape: shape) }

    /// The rectangle at (top, left) of height × width, which must lie inside the image.
    public func cropped(top: Int, left: Int, height h: Int, width w: Int) -> FloatImage {
        require(top >= 0 && left >= 0 && h > 0 && w > 0 && top + h <= height && left + w <= width,
                "FloatImage.cropped: \(h)×\(w) at (\(top), \(left)) is outside a \(height)×\(width) image")
        var out = [Float]()
        out.reserveCapacity(channels * h * w)
        for c in 0..<channels {
            for y in top..<(top + h) {
                let start = (c * height + y) * width + left
                out += values[start..<(start + w)]
            }
        }
        return FloatImage(channels: channels, height: h, width: w, values: out)
    }

    /// Resampled to height × width, antialiased bilinear as torchvision's `resize(antialias=True)` (`resizeImages`).
    public func resized(height h: Int, width w: Int) -> FloatImage {
        guard h != height || w != width else { return self }
        return FloatImage(resizeImages(tensor.reshaped([1] + shape), height: h, width: w).reshaped([channels, h, w]))
    }

    /// torchvision's `Resize(size)` with one number: the shorter side becomes `size`, the longer
    /// `int(size × long / short)`.
    public func resized(shorterSide size: Int) -> FloatImage {
        let (short, long) = (min(height, width), max(height, width))
        let longer = Int(Double(size) * Double(long) / Double(short))
        return height <= width ? resized(height: size, width: longer) : resized(height: longer, width: size)
    }

    /// The centred height × width region (not larger than the image), offsets `round((H − h) / 2)` with halves to
    /// even, as torchvision's `center_crop`.
    public func centerCropped(height h: Int, width w: Int) -> FloatImage {
        func offset(_ slack: Int) -> Int { Int((Double(slack) / 2).rounded(.toNearestOrEven)) }
        return cropped(top: offset(height - h), left: offset(width - w), height: h, width: w)
    }

    /// Mirrored left to right.
    public func flippedHorizontally() -> FloatImage {
        var out = values
        for line in 0..<(channels * height) {
            let start = line * width
            for x in 0..<width { out[start + x] = values[start + width - 1 - x] }
        }
        return FloatImage(channels: channels, height: height, width: width, values: out)
    }

    /// torchvision's `F.affine(img, angle, translate, scale, shear, interpolation=NEAREST, fill=0)`: rotation by
    /// `angle` degrees clockwise about the centre, shear by (x, y) degrees, scaling, then a shift of (dx, dy) pixels.
    /// Each output pixel takes the nearest source pixel (halves to even) of the inverse map; pixels from outside the
    /// image are 0.
    public func affine(angle: Double, translate: (dx: Double, dy: Double) = (0, 0), scale: Double = 1,
                       shear: (x: Double, y: Double) = (0, 0)) -> FloatImage {
        let (r, shx, shy) = (angle * Double.pi / 180, shear.x * Double.pi / 180, shear.y * Double.pi / 180)
        // The forward map is R·Sh (rotation after shear) with determinant 1; its inverse, over the scale, in
        // coordinates centred on the image, then the inverse shift, as torchvision builds it.
        let a = cos(r - shy) / cos(shy), b = -cos(r - shy) * tan(shx) / cos(shy) - sin(r)
        let c = sin(r - shy) / cos(shy), d = -sin(r - shy) * tan(shx) / cos(shy) + cos(r)
        var m = [d, -b, 0, -c, a, 0].map { $0 / scale }
        m[2] = m[0] * -translate.dx + m[1] * -translate.dy
        m[5] = m[3] * -translate.dx + m[4] * -translate.dy
        var out = [Float](repeating: 0, count: values.count)
        let (halfW, halfH) = (Double(width) / 2, Double(height) / 2)
        for y in 0..<height {
            let cy = Double(y) - halfH + 0.5
            for x in 0..<width {
                let cx = Double(x) - halfW + 0.5
                let sx = (m[0] * cx + m[1] * cy + m[2] + halfW - 0.5).rounded(.toNearestOrEven)
                let sy = (m[3] * cx + m[4] * cy + m[5] + halfH - 0.5).rounded(.toNearestOrEven)
                guard sx >= 0 && sy >= 0 && sx < Double(width) && sy < Double(height) else { continue }
                let source = Int(sy) * width + Int(sx), target = y * width + x
                for c in 0..<channels { out[c * height * width + target] = values[c * height * width + source] }
            }
        }
        return FloatImage(channels: channels, height: height, width: width, values: out)
    }

    /// Luminance 0.2989 R + 0.587 G + 0.114 B (torchvision's `rgb_to_grayscale` on tensors) in `count` (1 or 3)
    /// channels; a grey image is repeated.
    public func grayscale(channels count: Int) -> FloatImage {
        let plane = height * width
        let grey = channels == 1 ? values : (0..<plane).map {
            0.2989 * values[$0] + 0.587 * values[plane + $0] + 0.114 * values[2 * plane + $0]
        }
        return FloatImage(channels: count, height: height, width: width,
                          values: Array([[Float]](repeating: grey, count: count).joined()))
    }

    /// f · image + (1 − f) · other, clamped to 0–255 (torchvision's `_blend`).
    private func blend(_ f: Float, with other: (Int) -> Float) -> FloatImage {
        var out = values
        for i in out.indices { out[i] = min(255, max(0, f * values[i] + (1 - f) * other(i))) }
        return FloatImage(channels: channels, height: height, width: width, values: out)
    }

    /// torchvision's `adjust_brightness`: f · image.
    public func adjustingBrightness(_ f: Float) -> FloatImage { blend(f) { _ in 0 } }

    /// torchvision's `adjust_contrast`: blended with the mean luminance of the whole image.
    public func adjustingContrast(_ f: Float) -> FloatImage {
        let grey = channels == 3 ? grayscale(channels: 1).values : values
        let mean = grey.reduce(0, +) / Float(grey.count)
        return blend(f) { _ in mean }
    }

    /// torchvision's `adjust_saturation`: blended with the image's luminance; a grey image is unchanged.
    public func adjustingSaturation(_ f: Float) -> FloatImage {
        guard channels == 3 else { return self }
        let grey = grayscale(channels: 1).values, plane = height * width
        return blend(f) { grey[$0 % plane] }
    }

    /// torchvision's `adjust_hue`: the hue of every pixel shifted by `shift` turns (in [−0.5, 0.5]) through HSV;
    /// a grey image is unchanged.
    public func adjustingHue(_ shift: Float) -> FloatImage {
        guard channels == 3 else { return self }
        let plane = height * width
        var out = values
        for p in 0..<plane {
            let (r, g, b) = (values[p] / 255, values[plane + p] / 255, values[2 * plane + p] / 255)
            let (maxc, minc) = (max(r, g, b), min(r, g, b))
            let chroma = maxc - minc
            let s = chroma / (maxc == minc ? 1 : maxc)
            let divisor = maxc == minc ? 1 : chroma
            let (rc, gc, bc) = ((maxc - r) / divisor, (maxc - g) / divisor, (maxc - b) / divisor)
            let h0: Float = maxc == r ? bc - gc : maxc == g ? 2 + rc - bc : 4 + gc - rc
            var h = fmodf(h0 / 6 + 1, 1)
            h = fmodf(h + shift, 1)
            if h < 0 { h += 1 }  // Python's % keeps the divisor's sign
            let i6 = (h * 6).rounded(.down), f = h * 6 - i6
            let v = maxc
            let pp = min(1, max(0, v * (1 - s))), q = min(1, max(0, v * (1 - s * f))), t = min(1, max(0, v * (1 - s * (1 - f))))
            let (nr, ng, nb): (Float, Float, Float) = switch Int(i6) % 6 {
            case 0: (v, t, pp)
            case 1: (q, v, pp)
            case 2: (pp, v, t)
            case 3: (pp, q, v)
            case 4: (t, pp, v)
            default: (v, pp, q)
            }
            (out[p], out[plane + p], out[2 * plane + p]) = (nr * 255, ng * 255, nb * 255)
        }
        return FloatImage(channels: channels, height: height, width: width, values: out)
    }
}
