import CJPEGDecode
import Foundation
import GraftCore

/// An 8-bit RGB image: rows top to bottom, each pixel's R, G, B interleaved (height × width × 3).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        require(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                "RGBImage: \(pixels.count) bytes for \(width)×\(height)×3")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The rectangle at (x, y) of the given size, which must lie inside the image.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> RGBImage {
        require(x >= 0 && y >= 0 && w >= 0 && h >= 0 && x + w <= width && y + h <= height,
                "RGBImage.cropped: \(w)×\(h) at (\(x), \(y)) is outside a \(width)×\(height) image")
        var out = [UInt8]()
        out.reserveCapacity(w * h * 3)
        for row in y..<(y + h) { out += pixels[((row * width + x) * 3)..<((row * width + x + w) * 3)] }
        return RGBImage(width: w, height: h, pixels: out)
    }

    /// The largest centred region whose width / height is `aspect`; offsets round half to even, as torchvision's
    /// `CenterCrop` does, so a crop here and there picks the same pixels.
    public func centerCrop(toAspect aspect: Double) -> RGBImage {
        require(aspect > 0 && aspect.isFinite, "centerCrop: aspect \(aspect) must be positive")
        var w = width, h = height
        if Double(width) > Double(height) * aspect {
            w = min(width, max(1, Int((Double(height) * aspect).rounded())))
        } else {
            h = min(height, max(1, Int((Double(width) / aspect).rounded())))
        }
        func offset(_ slack: Int) -> Int { Int((Double(slack) / 2).rounded(.toNearestOrEven)) }
        return cropped(x: offset(width - w), y: offset(height - h), width: w, height: h)
    }

    /// The largest centred square.
    public func centerCropSquare() -> RGBImage { centerCrop(toAspect: 1) }

    /// Bilinear resampling with half-pixel centres and no antialiasing, the arithmetic of PyTorch's
    /// `F.interpolate(mode: "bilinear", align_corners: False)` in Float32; results round to the nearest integer.
    public func resizedBilinear(width outWidth: Int, height outHeight: Int) -> RGBImage {
        require(outWidth > 0 && outHeight > 0 && width > 0 && height > 0,
                "resizedBilinear: cannot resize \(width)×\(height) to \(outWidth)×\(outHeight)")
        let xs = bilinearTaps(input: width, output: outWidth), ys = bilinearTaps(input: height, output: outHeight)
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        let stride = width * 3
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for oy in 0..<outHeight {
                    let (y0, y1, ly) = ys[oy]
                    let row0 = y0 * stride, row1 = y1 * stride
                    for ox in 0..<outWidth {
                        let (x0, x1, lx) = xs[ox]
                        for c in 0..<3 {
                            let p00 = Float(src[row0 + x0 * 3 + c]), p01 = Float(src[row0 + x1 * 3 + c])
                            let p10 = Float(src[row1 + x0 * 3 + c]), p11 = Float(src[row1 + x1 * 3 + c])
                            let v = (1 - ly) * ((1 - lx) * p00 + lx * p01) + ly * ((1 - lx) * p10 + lx * p11)
                            dst[(oy * outWidth + ox) * 3 + c] = UInt8(min(255, max(0, v.rounded())))
                        }
                    }
                }
            }
        }
        return RGBImage(width: outWidth, height: outHeight, pixels: out)
    }

    /// The image as a [1, 3, height, width] tensor of (x − mean[c]) / std[c] on 0–255 values, channels first
    /// (EfficientNet-Lite: mean 127, std 128 for every channel).
    public func tensor(mean: [Float], std: [Float]) -> Tensor {
        require(mean.count == 3 && std.count == 3 && !std.contains(0),
                "RGBImage.tensor: need three means and three non-zero stds, got \(mean) and \(std)")
        let plane = width * height
        let storage = Storage(count: 3 * plane)
        for c in 0..<3 {
            let m = mean[c], s = std[c], out = storage.pointer + c * plane
            for i in 0..<plane { out[i] = (Float(pixels[i * 3 + c]) - m) / s }
        }
        return Tensor(shape: [1, 3, height, width], storage: storage)
    }
}

/// For each output position: the two source indices and the weight of the second, as PyTorch computes them
/// (source = (o + 0.5) · in/out − 0.5, clamped at 0; the second index stops at the last pixel).
private func bilinearTaps(input: Int, output: Int) -> [(Int, Int, Float)] {
    let scale = Float(input) / Float(output)
    return (0..<output).map { o in
        let src = max(scale * (Float(o) + 0.5) - 0.5, 0)
        let i0 = Int(src)
        return (i0, i0 < input - 1 ? i0 + 1 : i0, src - Float(i0))
    }
}

// MARK: - JPEG decoding

extension RGBImage {
    /// The largest image decoded: 2^27 pixels (400 MB of RGB), refused from the header before anything is allocated.
    public static let maxJPEGPixels = 1 << 27

    /// Decodes a baseline or progressive Huffman-coded JPEG (grayscale, YCbCr, RGB, CMYK or YCCK) to RGB with
    /// libjpeg-turbo, with libjpeg's defaults (ISLOW IDCT, fancy upsampling) as PIL uses them; EXIF orientation is
    /// not applied (nor does PIL's `Image.open`). Throws `DataError` naming the file for anything malformed,
    /// including damage libjpeg would only warn about and paper over (a premature end of the data, bad codes).
    public static func decodeJPEG(path: String) throws -> RGBImage {
        let bytes: [UInt8]
        do { bytes = try readRegularFile(path) } catch { throw DataError(file: path, line: nil, problem: error.problem) }
        var image = graft_jpeg_image()
        var message = [CChar](repeating: 0, count: 256)
        let status = bytes.withUnsafeBufferPointer { input in
            graft_jpeg_decode(input.baseAddress, input.count, maxJPEGPixels, &image, &message, message.count)
        }
        guard status == 0, let pixels = image.pixels else {
            throw DataError(file: path, line: nil, problem: "not a readable JPEG (libjpeg: \(decoderMessage(message)))")
        }
        defer { graft_jpeg_free(&image) }
        let width = Int(image.width), height = Int(image.height)
        let raw = [UInt8](UnsafeBufferPointer(start: pixels, count: width * height * Int(image.components)))
        guard image.components == 4 else { return RGBImage(width: width, height: height, pixels: raw) }
        return RGBImage(width: width, height: height, pixels: cmykToRGB(raw, inverted: image.adobe != 0))
    }

    /// Pillow's CMYK → RGB (R = (255 − K) − round(C · (255 − K) / 255)); Adobe files store CMYK inverted.
    private static func cmykToRGB(_ cmyk: [UInt8], inverted: Bool) -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: cmyk.count / 4 * 3)
        for p in 0..<(cmyk.count / 4) {
            func ink(_ i: Int) -> Int { inverted ? 255 - Int(cmyk[p * 4 + i]) : Int(cmyk[p * 4 + i]) }
            let notK = 255 - ink(3)
            for c in 0..<3 {
                let t = ink(c) * notK + 128
                rgb[p * 3 + c] = UInt8(notK - (((t >> 8) + t) >> 8))
            }
        }
        return rgb
    }
}

/// The text a C decoder left in `buffer`: up to its first NUL, as UTF-8 (invalid bytes replaced).
func decoderMessage(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
