import CZlib
import Foundation
import GraftCore

/// An IDX file (the MNIST and Fashion-MNIST format) of unsigned bytes: a big-endian header — two zero bytes, the
/// data type (0x08, unsigned byte), the number of dimensions — then each dimension as a big-endian UInt32, then the
/// values in row-major order.
public struct IDXFile: Sendable {
    public let shape: [Int]
    public let values: [UInt8]

    /// Reads `path`, gunzipping it first when it starts with gzip's signature (a `.gz` file). The header is checked
    /// against the data actually there: a truncated file, a header that claims more or fewer values than follow, a
    /// type other than unsigned bytes, or no dimensions is a `DataError` naming the file. Nothing is allocated from
    /// the header's claims: decompression grows with the data, and deflate expands at most about 1032-fold.
    public static func read(_ path: String) throws -> IDXFile {
        var bytes: [UInt8]
        do { bytes = try readRegularFile(path) } catch { throw DataError(file: path, line: nil, problem: error.problem) }
        if bytes.starts(with: [0x1F, 0x8B]) { bytes = try gunzip(bytes, path: path) }
        func fail(_ problem: String) -> DataError { DataError(file: path, line: nil, problem: problem) }
        guard bytes.count >= 4 else { throw fail("\(bytes.count) bytes: too short for an IDX header") }
        guard bytes[0] == 0 && bytes[1] == 0 else { throw fail("not an IDX file (it does not start with two zero bytes)") }
        guard bytes[2] == 0x08 else {
            throw fail(String(format: "data type 0x%02X: only unsigned bytes (0x08) are read", bytes[2]))
        }
        let rank = Int(bytes[3])
        guard rank >= 1 else { throw fail("the header declares no dimensions") }
        let headerSize = 4 + 4 * rank
        guard bytes.count >= headerSize else {
            throw fail("\(bytes.count) bytes: the header of \(rank) dimensions needs \(headerSize)")
        }
        var shape: [Int] = [], total = 1
        for d in 0..<rank {
            let b = bytes[(4 + 4 * d)..<(8 + 4 * d)].reduce(0) { $0 << 8 | Int($1) }
            shape.append(b)
            // Saturates instead of overflowing: any product past the file's size is refused just below.
            total = total.multipliedReportingOverflow(by: b).overflow ? Int.max : total * b
        }
        let present = bytes.count - headerSize
        guard total == present else {
            let claimed = total == Int.max ? "more than \(Int64.max)" : "\(total)"
            throw fail("the header declares \(shape) = \(claimed) values but \(present) bytes follow it"
                       + (total > present ? " (truncated?)" : ""))
        }
        return IDXFile(shape: shape, values: Array(bytes[headerSize...]))
    }

    /// The data of a gzip file (`bytes`) through zlib; a damaged or truncated stream is a `DataError` naming `path`.
    public static func gunzip(_ bytes: [UInt8], path: String) throws -> [UInt8] {
        var stream = z_stream()
        // 16 + MAX_WBITS: a gzip wrapper, not a raw zlib one.
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError(file: path, line: nil, problem: "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        var input = bytes
        input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            while status == Z_OK {
                chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(buffer.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    out += buffer[0..<(buffer.count - Int(stream.avail_out))]
                }
                // No progress possible: the input ended before the stream did.
                if status == Z_BUF_ERROR || (status == Z_OK && stream.avail_in == 0 && stream.avail_out != 0) {
                    status = Z_BUF_ERROR
                }
            }
        }
        guard status == Z_STREAM_END else {
            let detail = stream.msg.map { String(cString: $0) } ?? (status == Z_BUF_ERROR ? "the data ends early (truncated)" : "error \(status)")
            throw DataError(file: path, line: nil, problem: "not a readable gzip file (zlib: \(detail))")
        }
        return out
    }
}

/// IDX images with their labels, as the MNIST files pair them.
public struct IDXImages: Sendable {
    /// [N, H, W] (grey) or [N, H, W, C] images of 0–255 values, and one label per image.
    public let images: IDXFile
    public let labels: [Int]

    /// The labels file of an images file by MNIST's naming: `…-images-idx3-ubyte[.gz]` → `…-labels-idx1-ubyte[.gz]`.
    public static func labelsPath(forImages path: String) -> String? {
        let name = (path as NSString).lastPathComponent
        guard name.contains("images-idx3") else { return nil }
        return (path as NSString).deletingLastPathComponent.isEmpty ? name.replacingOccurrences(of: "images-idx3", with: "labels-idx1")
            : (path as NSString).deletingLastPathComponent + "/" + name.replacingOccurrences(of: "images-idx3", with: "labels-idx1")
    }

    /// Reads both files and checks that they pair: images of 3 dimensions [N, H, W] (or 4, [N, H, W, C] with C 1 or
    /// 3), labels of 1 dimension [N] with the same N, each label a class id below `LabelledData.maximumClassCount`.
    public static func read(images imagesPath: String, labels labelsPath: String) throws -> IDXImages {
        let images = try IDXFile.read(imagesPath)
        guard images.shape.count == 3 || (images.shape.count == 4 && [1, 3].contains(images.shape[3])) else {
            throw DataError(file: imagesPath, line: nil, problem: "holds \(images.shape); images are [N, height, width] (or [N, height, width, 1 or 3])")
        }
        let labels = try IDXFile.read(labelsPath)
        guard labels.shape.count == 1 else {
            throw DataError(file: labelsPath, line: nil, problem: "holds \(labels.shape); labels are one dimension [N]")
        }
        guard labels.shape[0] == images.shape[0] else {
            throw DataError(file: labelsPath, line: nil, problem: "has \(labels.shape[0]) labels for the \(images.shape[0]) images of \(imagesPath)")
        }
        return IDXImages(images: images, labels: labels.values.map(Int.init))
    }

    public var count: Int { labels.count }
    public var channels: Int { images.shape.count == 4 ? images.shape[3] : 1 }
    public var height: Int { images.shape[1] }
    public var width: Int { images.shape[2] }

    /// Rows `rows` as [n, channels, height, width] of 0–255 values (repeated or reduced to `channels`), resampled
    /// to `size` (antialiased bilinear) when given.
    public func tensor(rows: [Int], channels target: Int, size: (height: Int, width: Int)? = nil) -> Tensor {
        let plane = height * width * channels
        let out = rows.map { row in
            let pixels = Array(images.values[(row * plane)..<((row + 1) * plane)])
            return PixelImage(width: width, height: height, channels: channels, pixels: pixels).converted(toChannels: target).tensor
        }
        let stacked = out.isEmpty ? Tensor(shape: [0, target, height, width], storage: Storage(count: 0)) : Tensor.stack(out, axis: 0)
        guard let size, size.height != height || size.width != width, !rows.isEmpty else { return stacked }
        return resizeImages(stacked, height: size.height, width: size.width)
    }
}
