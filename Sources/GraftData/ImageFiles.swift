import CPNGDecode
import Foundation
import GraftCore

/// An 8-bit image of 1 (grey) or 3 (RGB) channels, rows top to bottom, each pixel's channels interleaved: what an
/// image file decodes to before it becomes a tensor.
public struct PixelImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        require((channels == 1 || channels == 3) && width >= 0 && height >= 0 && pixels.count == width * height * channels,
                "PixelImage: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        (self.width, self.height, self.channels, self.pixels) = (width, height, channels, pixels)
    }

    /// The image with `count` channels: grey repeated into R, G and B, or RGB reduced to PIL's luminance
    /// L = (19595 R + 38470 G + 7471 B + 2¹⁵) >> 16 (0.299 R + 0.587 G + 0.114 B, rounded).
    public func converted(toChannels count: Int) -> PixelImage {
        require(count == 1 || count == 3, "PixelImage: \(count) channels; images have 1 or 3")
        guard count != channels else { return self }
        let n = width * height
        var out = [UInt8](repeating: 0, count: n * count)
        if count == 3 {
            for p in 0..<n { for c in 0..<3 { out[p * 3 + c] = pixels[p] } }
        } else {
            for p in 0..<n {
                let (r, g, b) = (UInt32(pixels[p * 3]), UInt32(pixels[p * 3 + 1]), UInt32(pixels[p * 3 + 2]))
                out[p] = UInt8((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16)
            }
        }
        return PixelImage(width: width, height: height, channels: count, pixels: out)
    }

    /// The image as a [C, H, W] tensor of its 0–255 values, channels first.
    public var tensor: Tensor {
        let plane = width * height
        let storage = Storage(count: channels * plane)
        pixels.withUnsafeBufferPointer { src in
            for c in 0..<channels {
                let out = storage.pointer + c * plane
                for i in 0..<plane { out[i] = Float(src[i * channels + c]) }
            }
        }
        return Tensor(shape: [channels, height, width], storage: storage)
    }

    /// The largest image decoded: 2^27 pixels, refused from the header before anything is allocated.
    public static let maxPixels = 1 << 27

    /// Decodes a PNG or a JPEG, told apart by their signatures (not by the file's name). PNG: 8- or 16-bit grey, grey
    /// with alpha, RGB, RGBA and palette images (16-bit samples keep their high byte, alpha is dropped, as PIL's
    /// `convert("RGB")` drops it); JPEG through `RGBImage.decodeJPEG`. Anything else, or a damaged file, throws
    /// `DataError` naming the file.
    public static func decode(path: String) throws -> PixelImage {
        let bytes: [UInt8]
        do { bytes = try readRegularFile(path) } catch { throw DataError(file: path, line: nil, problem: error.problem) }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try decodePNG(bytes, path: path) }
        if bytes.starts(with: [0xFF, 0xD8]) {
            let rgb = try RGBImage.decodeJPEG(path: path)
            return PixelImage(width: rgb.width, height: rgb.height, channels: 3, pixels: rgb.pixels)
        }
        throw DataError(file: path, line: nil, problem: bytes.isEmpty ? "the file is empty" : "neither a PNG nor a JPEG")
    }

    /// `bytes` of a PNG file decoded with libpng.
    public static func decodePNG(_ bytes: [UInt8], path: String) throws -> PixelImage {
        var image = graft_png_image()
        var message = [CChar](repeating: 0, count: 256)
        let status = bytes.withUnsafeBufferPointer { input in
            graft_png_decode(input.baseAddress, input.count, maxPixels, &image, &message, message.count)
        }
        guard status == 0, let pixels = image.pixels else {
            throw DataError(file: path, line: nil, problem: "not a readable PNG (libpng: \(decoderMessage(message)))")
        }
        defer { graft_png_free(&image) }
        let (width, height, channels) = (Int(image.width), Int(image.height), Int(image.components))
        return PixelImage(width: width, height: height, channels: channels,
                          pixels: [UInt8](UnsafeBufferPointer(start: pixels, count: width * height * channels)))
    }
}
