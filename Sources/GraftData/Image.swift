import CJPEG
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

// libjpeg reports a fatal error by calling `error_exit`, which must not return: C callers longjmp back to a setjmp
// point, which Swift cannot express (setjmp is not imported, and no C target can be added for a shim). Returning
// from it leaves libjpeg in an undefined state. So the file's marker structure is checked in Swift first, against
// every condition under which libjpeg-turbo's marker reader and decoder set-up call error_exit (bad or truncated
// segments, missing tables, unsupported coding, bad sampling or progression parameters), and such files throw
// before libjpeg sees them. Corrupt entropy-coded data makes libjpeg only *warn*; warnings are recorded and thrown
// after decoding. What remains for error_exit (out of memory, a case the check misses) prints the message with the
// file name and exits with status 1, as the design's "clear error, non-zero exit" asks, instead of undefined
// behaviour. The TurboJPEG API (tj3Decompress8) does the setjmp itself and returns error codes; it would remove the
// backstop but needs libturbojpeg and a change to the CJPEG module map.

extension RGBImage {
    /// Decodes a baseline or progressive Huffman-coded JPEG (grayscale, YCbCr, RGB, CMYK or YCCK) to RGB with
    /// libjpeg-turbo, with libjpeg's defaults (ISLOW IDCT, fancy upsampling) as PIL uses them; EXIF orientation is
    /// not applied (nor does PIL's `Image.open`). Throws `DataError` naming the file for anything malformed,
    /// including damage libjpeg would only warn about and paper over (a premature end of the data, bad codes).
    public static func decodeJPEG(path: String) throws -> RGBImage {
        let bytes: [UInt8]
        do { bytes = try readRegularFile(path) } catch { throw DataError(file: path, line: nil, problem: error.problem) }
        if let problem = jpegStructureProblem(bytes) {
            throw DataError(file: path, line: nil, problem: problem)
        }
        return try decodeChecked(bytes, path: path)
    }

    private static func decodeChecked(_ bytes: [UInt8], path: String) throws -> RGBImage {
        // libjpeg keeps pointers to both structs across calls, so they live on the heap, not in Swift locals.
        let cinfo = UnsafeMutablePointer<jpeg_decompress_struct>.allocate(capacity: 1)
        let jerr = UnsafeMutablePointer<jpeg_error_mgr>.allocate(capacity: 1)
        defer { cinfo.deallocate(); jerr.deallocate() }
        let context = JPEGDecodeContext(file: path)
        cinfo.pointee.err = jpeg_std_error(jerr)
        jerr.pointee.error_exit = jpegErrorExit
        jerr.pointee.emit_message = jpegEmitMessage
        jpeg_CreateDecompress(cinfo, JPEG_LIB_VERSION, MemoryLayout<jpeg_decompress_struct>.size)
        defer { jpeg_destroy_decompress(cinfo) }
        cinfo.pointee.client_data = Unmanaged.passUnretained(context).toOpaque()

        let raw: [UInt8] = withExtendedLifetime(context) {
            bytes.withUnsafeBufferPointer { input in
                jpeg_mem_src(cinfo, input.baseAddress, UInt(input.count))
                _ = jpeg_read_header(cinfo, 1)
                // libjpeg-turbo cannot convert CMYK/YCCK to RGB itself; it hands over CMYK and Swift converts.
                cinfo.pointee.out_color_space = cinfo.pointee.num_components == 4 ? JCS_CMYK : JCS_RGB
                _ = jpeg_start_decompress(cinfo)
                let rowBytes = Int(cinfo.pointee.output_width) * Int(cinfo.pointee.output_components)
                var raw = [UInt8](repeating: 0, count: rowBytes * Int(cinfo.pointee.output_height))
                raw.withUnsafeMutableBufferPointer { out in
                    while cinfo.pointee.output_scanline < cinfo.pointee.output_height {
                        var row: JSAMPROW? = out.baseAddress! + Int(cinfo.pointee.output_scanline) * rowBytes
                        // A memory source never suspends, so each call returns its one line.
                        _ = withUnsafeMutablePointer(to: &row) { jpeg_read_scanlines(cinfo, $0, 1) }
                    }
                }
                _ = jpeg_finish_decompress(cinfo)
                return raw
            }
        }
        if let warning = context.warning {
            throw DataError(file: path, line: nil, problem: "damaged image data (libjpeg: \(warning))")
        }
        let width = Int(cinfo.pointee.output_width), height = Int(cinfo.pointee.output_height)
        guard cinfo.pointee.output_components == 4 else { return RGBImage(width: width, height: height, pixels: raw) }
        return RGBImage(width: width, height: height,
                        pixels: cmykToRGB(raw, inverted: cinfo.pointee.saw_Adobe_marker != 0))
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

/// Per-decode state the C callbacks reach through `client_data`.
private final class JPEGDecodeContext {
    let file: String
    var warning: String?
    init(file: String) { self.file = file }
}

private func jpegMessage(_ cinfo: j_common_ptr) -> String {
    var buffer = [CChar](repeating: 0, count: Int(JMSG_LENGTH_MAX))
    cinfo.pointee.err.pointee.format_message(cinfo, &buffer)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private func jpegContext(_ cinfo: j_common_ptr) -> JPEGDecodeContext {
    Unmanaged<JPEGDecodeContext>.fromOpaque(cinfo.pointee.client_data!).takeUnretainedValue()
}

private let jpegErrorExit: @convention(c) (j_common_ptr?) -> Void = { cinfo in
    guard let cinfo else { exit(1) }
    let message = "graft: error: \(jpegContext(cinfo).file): libjpeg: \(jpegMessage(cinfo)) "
        + "(not caught by the JPEG structure check; libjpeg cannot continue)\n"
    FileHandle.standardError.write(Data(message.utf8))
    exit(1)
}

/// Level −1 is a warning; higher levels are trace messages, ignored. Every warning but two means damaged data
/// (bad codes, premature end, stray bytes) that libjpeg papers over; the two about metadata only (an unknown JFIF
/// revision or Adobe transform code, where libjpeg guesses as PIL does) are let through.
private let jpegEmitMessage: @convention(c) (j_common_ptr?, Int32) -> Void = { cinfo, level in
    guard let cinfo, level < 0 else { return }
    let context = jpegContext(cinfo), message = jpegMessage(cinfo)
    let metadataOnly = message.hasPrefix("Warning: unknown JFIF revision") || message.hasPrefix("Unknown Adobe color")
    if !metadataOnly && context.warning == nil { context.warning = message }
}

/// Why libjpeg-turbo would reach `error_exit` on this file, or nil when its marker structure is sound: a walk over
/// every segment with the checks of libjpeg-turbo's `jdmarker.c`, `jdinput.c`, `jdhuff.c` and `jdphuff.c`.
private func jpegStructureProblem(_ bytes: [UInt8]) -> String? {
    var check = JPEGStructureCheck()
    do {
        try check.walk(bytes)
        return nil
    } catch {
        return error.message
    }
}

private struct JPEGProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

private struct JPEGStructureCheck {
    struct Component { let id: UInt8, h: Int, v: Int, quant: Int, latched: Bool }
    var components: [Component]? = nil
    var progressive = false
    var quantDefined = [Bool](repeating: false, count: 4)
    var huffmanDefined = [[Bool]](repeating: [Bool](repeating: false, count: 4), count: 2)  // [DC, AC][index]

    mutating func walk(_ b: [UInt8]) throws(JPEGProblem) {
        guard b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 else {
            throw JPEGProblem("not a JPEG file (no SOI marker at the start)")
        }
        let truncated = JPEGProblem("truncated: the file ends before its EOI marker")
        var i = 2, sawScan = false
        while true {
            guard i < b.count else { throw truncated }
            guard b[i] == 0xFF else { throw JPEGProblem("unexpected byte at offset \(i) where a marker belongs") }
            while i < b.count && b[i] == 0xFF { i += 1 }
            guard i < b.count else { throw truncated }
            let marker = b[i], name = "marker 0xFF\(String(format: "%02X", b[i])) at offset \(i - 1)"
            i += 1
            switch marker {
            case 0xD9: if sawScan { return } else { throw JPEGProblem("no image data: EOI before any scan") }
            case 0xD8: throw JPEGProblem("second SOI \(name)")
            case 0x00: throw JPEGProblem("stray 0xFF00 at offset \(i - 2) where a marker belongs")
            case 0x01, 0xD0...0xD7: continue  // parameterless; libjpeg ignores them here
            default: break
            }
            guard i + 2 <= b.count else { throw truncated }
            let length = Int(b[i]) << 8 | Int(b[i + 1])
            guard length >= 2, i + length <= b.count else {
                throw JPEGProblem("\(name): segment length \(length) runs past the end of the file (truncated?)")
            }
            let s = Array(b[(i + 2)..<(i + length)])
            i += length
            do throws(JPEGProblem) {
                switch marker {
                case 0xC0, 0xC1, 0xC2: try frame(s, progressive: marker == 0xC2)
                case 0xC3, 0xC5...0xCF:
                    throw JPEGProblem("lossless, hierarchical or arithmetic coding is not supported")
                case 0xC4: try huffmanTables(s)
                case 0xDB: try quantisationTables(s)
                case 0xDD: guard s.count == 2 else { throw JPEGProblem("restart interval segment of length \(length)") }
                case 0xDA:
                    try scan(s)
                    sawScan = true
                    i = try Self.endOfEntropyCodedData(b, from: i)
                case 0xE0...0xEF, 0xFE, 0xDC: continue  // APPn, comments, DNL: skipped by length
                default: throw JPEGProblem("unknown marker")
                }
            } catch {
                throw JPEGProblem("\(name): \(error.message)")
            }
        }
    }

    mutating func frame(_ s: [UInt8], progressive: Bool) throws(JPEGProblem) {
        guard components == nil else { throw JPEGProblem("second frame header") }
        guard s.count >= 6, s[0] == 8 else { throw JPEGProblem("only 8-bit samples are supported") }
        let height = Int(s[1]) << 8 | Int(s[2]), width = Int(s[3]) << 8 | Int(s[4]), n = Int(s[5])
        guard s.count == 6 + 3 * n else { throw JPEGProblem("frame header length does not fit \(n) components") }
        guard width > 0, height > 0, width <= 65500, height <= 65500, width * height <= 1 << 28 else {
            throw JPEGProblem("unsupported image size \(width)×\(height)")
        }
        guard [1, 3, 4].contains(n) else { throw JPEGProblem("\(n) colour components (1, 3 or 4 are supported)") }
        var list: [Component] = []
        for k in 0..<n {
            let id = s[6 + 3 * k], h = Int(s[7 + 3 * k] >> 4), v = Int(s[7 + 3 * k] & 15), quant = Int(s[8 + 3 * k])
            guard (1...4).contains(h), (1...4).contains(v), quant < 4, !list.contains(where: { $0.id == id }) else {
                throw JPEGProblem("bad sampling factors, quantisation table or repeated id in component \(k)")
            }
            list.append(Component(id: id, h: h, v: v, quant: quant, latched: false))
        }
        let maxH = list.map(\.h).max()!, maxV = list.map(\.v).max()!
        guard list.allSatisfy({ maxH % $0.h == 0 && maxV % $0.v == 0 }) else {
            throw JPEGProblem("fractional sampling factors")
        }
        components = list
        self.progressive = progressive
    }

    mutating func huffmanTables(_ s: [UInt8]) throws(JPEGProblem) {
        var p = 0
        while p < s.count {
            guard p + 17 <= s.count else { throw JPEGProblem("Huffman table header cut short") }
            let kind = Int(s[p] >> 4), index = Int(s[p] & 15)
            guard kind <= 1, index < 4 else { throw JPEGProblem("Huffman table class \(kind) index \(index)") }
            let counts = s[(p + 1)..<(p + 17)].map(Int.init), total = counts.reduce(0, +)
            guard total <= 256, p + 17 + total <= s.count else {
                throw JPEGProblem("Huffman table longer than its segment")
            }
            // Canonical codes must fit their lengths, the all-ones code excluded (jdhuff.c's overflow check).
            var code = 0
            for (bits, count) in counts.enumerated() where total > 0 && counts[bits...].contains(where: { $0 > 0 }) {
                code += count
                guard code < 1 << (bits + 1) else { throw JPEGProblem("Huffman code lengths overflow") }
                code <<= 1
            }
            guard kind == 1 || s[(p + 17)..<(p + 17 + total)].allSatisfy({ $0 <= 15 }) else {
                throw JPEGProblem("DC Huffman symbol above 15")
            }
            huffmanDefined[kind][index] = true
            p += 17 + total
        }
    }

    mutating func quantisationTables(_ s: [UInt8]) throws(JPEGProblem) {
        var p = 0
        while p < s.count {
            let precision = Int(s[p] >> 4), index = Int(s[p] & 15), size = precision == 0 ? 64 : 128
            guard precision <= 1, index < 4, p + 1 + size <= s.count else {
                throw JPEGProblem("bad quantisation table")
            }
            quantDefined[index] = true
            p += 1 + size
        }
    }

    mutating func scan(_ s: [UInt8]) throws(JPEGProblem) {
        guard var frame = components else { throw JPEGProblem("scan before the frame header") }
        guard let n = s.first.map(Int.init), (1...4).contains(n), s.count == 1 + 2 * n + 3 else {
            throw JPEGProblem("bad scan header")
        }
        let ss = Int(s[1 + 2 * n]), se = Int(s[2 + 2 * n]), ah = Int(s[3 + 2 * n] >> 4), al = Int(s[3 + 2 * n] & 15)
        if progressive {
            let bad = (ss == 0 ? se != 0 : (ss > se || se > 63 || n != 1)) || (ah != 0 && al != ah - 1) || al > 13
            guard !bad else { throw JPEGProblem("bad progression parameters Ss=\(ss) Se=\(se) Ah=\(ah) Al=\(al)") }
        } else if ss != 0 || se != 63 || ah != 0 || al != 0 {
            throw JPEGProblem("sequential scan with Ss=\(ss) Se=\(se) Ah=\(ah) Al=\(al)")
        }
        let needDC = !progressive || (ss == 0 && ah == 0), needAC = !progressive || ss > 0
        var blocks = 0, seen: [UInt8] = []
        for k in 0..<n {
            let id = s[1 + 2 * k], dc = Int(s[2 + 2 * k] >> 4), ac = Int(s[2 + 2 * k] & 15)
            guard let c = frame.firstIndex(where: { $0.id == id }), !seen.contains(id) else {
                throw JPEGProblem("scan names an unknown or repeated component")
            }
            seen.append(id)
            blocks += frame[c].h * frame[c].v
            guard !needDC || (dc < 4 && huffmanDefined[0][dc]), !needAC || (ac < 4 && huffmanDefined[1][ac]) else {
                throw JPEGProblem("scan uses a Huffman table that is not defined")
            }
            // libjpeg copies a component's quantisation table when the component first appears in a scan.
            if !frame[c].latched {
                guard quantDefined[frame[c].quant] else {
                    throw JPEGProblem("quantisation table \(frame[c].quant) is not defined")
                }
                let old = frame[c]
                frame[c] = Component(id: old.id, h: old.h, v: old.v, quant: old.quant, latched: true)
            }
        }
        guard n == 1 || blocks <= 10 else { throw JPEGProblem("more than 10 blocks per MCU") }
        components = frame
    }

    /// The offset of the 0xFF that starts the marker after a scan's entropy-coded data, which runs up to the first
    /// 0xFF followed by neither a stuffed zero nor a restart marker.
    static func endOfEntropyCodedData(_ b: [UInt8], from start: Int) throws(JPEGProblem) -> Int {
        var i = start
        while true {
            guard let ff = b[i...].firstIndex(of: 0xFF) else { throw JPEGProblem("truncated inside the image data") }
            var k = ff + 1
            while k < b.count && b[k] == 0xFF { k += 1 }
            guard k < b.count else { throw JPEGProblem("truncated inside the image data") }
            guard b[k] == 0x00 || (0xD0...0xD7).contains(b[k]) else { return k - 1 }
            i = k + 1
        }
    }
}
