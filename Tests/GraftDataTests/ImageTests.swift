import Foundation
import GraftCore
import Testing
@testable import GraftData

/// What PIL and PyTorch made of the same inputs (Fixtures/make_image_fixtures.py).
private nonisolated(unsafe) let fixtures: [String: Any] = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/image_fixtures.json")
    return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
}()

/// Where launch/assets.sh puts the photos (`launch/assets.sh sklearn`).
private let imagesDirectory: String = {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let assets = ProcessInfo.processInfo.environment["GRAFT_ASSETS"]
        ?? repo.appendingPathComponent(".cache/assets").path
    return assets + "/images"
}()

private let photosPresent = ["flower.jpg", "china.jpg"].allSatisfy {
    FileManager.default.fileExists(atPath: "\(imagesDirectory)/\($0)")
}
private let photosMissing: Comment = "flower.jpg/china.jpg not in \(imagesDirectory): run launch/assets.sh sklearn"

private func photoFixture(_ name: String) -> [String: Any] {
    (fixtures["photos"] as! [String: Any])[name] as! [String: Any]
}

/// A fresh file holding `bytes`, in a directory of its own (tests run in parallel).
private func temporaryFile(_ name: String, _ bytes: [UInt8]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graft-image-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
}

private func tinyJPEG(_ name: String) -> (bytes: [UInt8], rgb: [UInt8]) {
    let entry = (fixtures["tiny_jpegs"] as! [String: Any])[name] as! [String: Any]
    return ([UInt8](Data(base64Encoded: entry["jpeg_base64"] as! String)!), (entry["rgb"] as! [Int]).map(UInt8.init))
}

/// Decoding `bytes` from a file must throw a DataError whose message names that file.
private func expectDecodeError(_ name: String, _ bytes: [UInt8], mentioning phrase: String,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
    let path = try temporaryFile(name, bytes)
    let error = #expect(throws: DataError.self, sourceLocation: sourceLocation) { try RGBImage.decodeJPEG(path: path) }
    #expect(error?.file == path, sourceLocation: sourceLocation)
    #expect(error?.description.hasPrefix(path) == true, sourceLocation: sourceLocation)
    #expect(error?.problem.contains(phrase) == true, "\(error?.problem ?? "no error")", sourceLocation: sourceLocation)
}

/// The plain definition of half-pixel bilinear resampling, one output sample at a time, in Double.
private func referenceBilinear(_ image: RGBImage, width outW: Int, height outH: Int) -> [Double] {
    func taps(_ o: Int, _ inSize: Int, _ outSize: Int) -> (Int, Int, Double) {
        let src = max((Double(o) + 0.5) * Double(inSize) / Double(outSize) - 0.5, 0)
        let i0 = min(Int(src.rounded(.down)), inSize - 1)
        return (i0, min(i0 + 1, inSize - 1), src - Double(i0))
    }
    var out: [Double] = []
    for oy in 0..<outH {
        for ox in 0..<outW {
            let (y0, y1, ly) = taps(oy, image.height, outH), (x0, x1, lx) = taps(ox, image.width, outW)
            for c in 0..<3 {
                func p(_ x: Int, _ y: Int) -> Double { Double(image.pixels[(y * image.width + x) * 3 + c]) }
                let top = (1 - lx) * p(x0, y0) + lx * p(x1, y0), bottom = (1 - lx) * p(x0, y1) + lx * p(x1, y1)
                out.append((1 - ly) * top + ly * bottom)
            }
        }
    }
    return out
}

/// An image whose red channel is x·10 + y and green channel y·10 + x, so crops can be located exactly.
private func coordinateImage(width: Int, height: Int) -> RGBImage {
    var pixels: [UInt8] = []
    for y in 0..<height { for x in 0..<width { pixels += [UInt8(x * 10 + y), UInt8(y * 10 + x), 7] } }
    return RGBImage(width: width, height: height, pixels: pixels)
}

@Suite struct ImageTests {
    // libjpeg-turbo here (Debian's 2.1) and Pillow's bundled libjpeg-turbo (3.2 when the fixtures were made) both
    // decode with the ISLOW IDCT and fancy upsampling; they agreed exactly on both photos. Another library version may
    // change a rounding step in upsampling or colour conversion, so pixels may differ by 2 and channel means by 0.05.
    @Test(.enabled(if: photosPresent, photosMissing), arguments: ["flower.jpg", "china.jpg"])
    func decodesPhotosLikePIL(name: String) throws {
        let expected = photoFixture(name)
        let image = try RGBImage.decodeJPEG(path: "\(imagesDirectory)/\(name)")
        #expect(image.width == expected["width"] as! Int && image.height == expected["height"] as! Int)
        #expect((image.width, image.height) == (640, 427))
        for sample in expected["pixels"] as! [[String: Any]] {
            let x = sample["x"] as! Int, y = sample["y"] as! Int, rgb = sample["rgb"] as! [Int]
            let got = (0..<3).map { Int(image.pixels[(y * image.width + x) * 3 + $0]) }
            #expect(zip(got, rgb).allSatisfy { abs($0 - $1) <= 2 }, "\(name) pixel (\(x), \(y)): \(got) vs PIL \(rgb)")
        }
        let means = (0..<3).map { c in
            Double(stride(from: c, to: image.pixels.count, by: 3).reduce(0) { $0 + Int(image.pixels[$1]) })
                / Double(image.width * image.height)
        }
        for (got, want) in zip(means, expected["channel_means"] as! [Double]) {
            #expect(abs(got - want) <= 0.05, "\(name) channel mean \(got) vs PIL \(want)")
        }
    }

    /// Decode, square centre crop, resize to 224, (x − 127) / 128, against PIL + torch doing the same. Tolerance:
    /// decoding may differ by 2/128 and this path rounds the resized image to integers (0.5/128).
    @Test(.enabled(if: photosPresent, photosMissing), arguments: ["flower.jpg", "china.jpg"])
    func efficientNetInputMatchesTorchPipeline(name: String) throws {
        let expected = photoFixture(name)
        let x = try RGBImage.decodeJPEG(path: "\(imagesDirectory)/\(name)")
            .centerCropSquare().resizedBilinear(width: 224, height: 224)
            .tensor(mean: [127, 127, 127], std: [128, 128, 128])
        #expect(x.shape == [1, 3, 224, 224])
        let values = x.scalars
        for sample in expected["efficientnet_input"] as! [[String: Any]] {
            let c = sample["c"] as! Int, y = sample["y"] as! Int, xx = sample["x"] as! Int
            let got = values[(c * 224 + y) * 224 + xx], want = Float(sample["value"] as! Double)
            #expect(abs(got - want) <= 2.5 / 128, "\(name) [0, \(c), \(y), \(xx)]: \(got) vs torch \(want)")
        }
        for (c, want) in (expected["efficientnet_input_channel_means"] as! [Double]).enumerated() {
            let got = values[(c * 224 * 224)..<((c + 1) * 224 * 224)].reduce(0, +) / Float(224 * 224)
            #expect(abs(Double(got) - want) <= 0.002, "\(name) channel \(c) mean \(got) vs torch \(want)")
        }
    }

    @Test func bilinearMatchesReferenceLoop() {
        var state: UInt32 = 12345
        let pixels = (0..<(6 * 5 * 3)).map { _ -> UInt8 in
            state = state &* 1_103_515_245 &+ 12345
            return UInt8(truncatingIfNeeded: state >> 16)
        }
        let image = RGBImage(width: 6, height: 5, pixels: pixels)
        for (w, h) in [(6, 5), (3, 2), (13, 11), (1, 1), (17, 3), (4, 9)] {
            let fast = image.resizedBilinear(width: w, height: h)
            let slow = referenceBilinear(image, width: w, height: h)
            #expect(fast.width == w && fast.height == h)
            // Float32 against Double: a value within rounding distance of .5 may round either way.
            let worst = zip(fast.pixels, slow).map { abs(Double($0) - $1) }.max()!
            #expect(worst <= 0.5 + 1e-4, "\(w)×\(h): off by \(worst) from the reference loop")
        }
        #expect(image.resizedBilinear(width: 6, height: 5) == image)
    }

    /// Against `F.interpolate(mode="bilinear", align_corners=False, antialias=False)` on random images: the
    /// resize rounds to integers, so each value must be within 0.5 of torch's float result.
    @Test func bilinearMatchesTorchInterpolate() {
        for case_ in fixtures["resize"] as! [[String: Any]] {
            let image = RGBImage(width: case_["width"] as! Int, height: case_["height"] as! Int,
                                 pixels: (case_["pixels"] as! [Int]).map(UInt8.init))
            let w = case_["out_width"] as! Int, h = case_["out_height"] as! Int
            let torch = case_["out_hwc"] as! [Double]
            let ours = image.resizedBilinear(width: w, height: h)
            let worst = zip(ours.pixels, torch).map { abs(Double($0) - $1) }.max()!
            #expect(worst <= 0.5 + 1e-3, "\(image.width)×\(image.height) → \(w)×\(h): off by \(worst) from torch")
        }
    }

    @Test func centerCropPicksTheMiddleWithTorchvisionOffsets() {
        let wide = coordinateImage(width: 9, height: 4).centerCropSquare()
        #expect((wide.width, wide.height) == (4, 4))
        #expect(wide.pixels[0] == 2 * 10 + 0)  // (9 − 4) / 2 = 2.5 rounds half to even: column 2
        let tall = coordinateImage(width: 3, height: 8).centerCrop(toAspect: 1.5)
        #expect((tall.width, tall.height) == (3, 2))
        #expect(tall.pixels[1] == 3 * 10 + 0)  // rows 3 and 4
        let same = coordinateImage(width: 4, height: 3)
        #expect(same.centerCrop(toAspect: 4.0 / 3.0) == same)
        let photo = coordinateImage(width: 20, height: 13).centerCropSquare()
        #expect((photo.width, photo.height) == (13, 13) && photo.pixels[0] == 4 * 10)  // 3.5 → 4
    }

    @Test func tensorIsChannelsFirstAndNormalised() {
        let image = RGBImage(width: 2, height: 1, pixels: [0, 127, 255, 10, 20, 30])
        let x = image.tensor(mean: [127, 127, 127], std: [128, 128, 128])
        #expect(x.shape == [1, 3, 1, 2])
        let expected: [Float] = [-127, -117, 0, -107, 128, -97].map { $0 / 128 }
        #expect(x.scalars == expected)
        let y = image.tensor(mean: [0, 100, 200], std: [1, 2, 5])
        let expectedY: [Float] = [0, 10, 13.5, -40, 11, -34]
        #expect(y.scalars == expectedY)
    }

    @Test func grayscaleAndCMYKBecomeRGB() throws {
        for name in ["gray", "cmyk"] {
            let (bytes, rgb) = tinyJPEG(name)
            let image = try RGBImage.decodeJPEG(path: try temporaryFile("\(name).jpg", bytes))
            #expect((image.width, image.height) == (8, 8))
            let worst = zip(image.pixels, rgb).map { abs(Int($0) - Int($1)) }.max()!
            #expect(worst <= 2, "\(name): off by \(worst) from PIL's convert('RGB')")
        }
        let gray = try RGBImage.decodeJPEG(path: try temporaryFile("gray.jpg", tinyJPEG("gray").bytes))
        let p = gray.pixels
        let neutral = stride(from: 0, to: p.count, by: 3).allSatisfy { (i: Int) -> Bool in
            p[i] == p[i + 1] && p[i] == p[i + 2]
        }
        #expect(neutral, "grayscale decodes to R = G = B")
    }

    @Test func metadataOnlyWarningIsNotAnError() throws {
        let original = tinyJPEG("gray").bytes
        var bytes = original
        let jfif = (0..<(bytes.count - 5)).first { Array(bytes[$0..<($0 + 5)]) == Array("JFIF\0".utf8) }!
        bytes[jfif + 5] = 3  // JFIF 3.x: libjpeg warns "unknown JFIF revision number" and decodes as usual
        let image = try RGBImage.decodeJPEG(path: try temporaryFile("jfif3.jpg", bytes))
        #expect(image == (try RGBImage.decodeJPEG(path: try temporaryFile("gray.jpg", original))))
    }

    @Test func malformedFilesThrowErrorsNamingTheFile() throws {
        let good = tinyJPEG("gray").bytes
        try expectDecodeError("notes.jpg", Array("not a picture\n".utf8), mentioning: "Not a JPEG file")
        try expectDecodeError("empty.jpg", [], mentioning: "the file is empty")
        try expectDecodeError("half.jpg", Array(good.prefix(good.count / 2)), mentioning: "Premature end")
        try expectDecodeError("headers-only.jpg", Array(good.prefix(200)), mentioning: "Premature end")

        // Huffman code-length counts summing past 256: libjpeg would call error_exit.
        var badTable = good
        let dht = (0..<(good.count - 1)).first { good[$0] == 0xFF && good[$0 + 1] == 0xC4 }!
        for k in (dht + 5)..<(dht + 21) { badTable[k] = 0xFF }
        try expectDecodeError("bad-huffman.jpg", badTable, mentioning: "Bogus Huffman table")

        // A 12-bit frame header, which this libjpeg build cannot decode.
        var twelveBit = good
        let sof = (0..<(good.count - 1)).first { good[$0] == 0xFF && good[$0 + 1] == 0xC0 }!
        twelveBit[sof + 4] = 12
        try expectDecodeError("twelve-bit.jpg", twelveBit, mentioning: "Unsupported JPEG data precision 12")

        // Entropy-coded data cut short but properly terminated: structurally fine, so libjpeg decodes it and warns.
        let sos = (0..<(good.count - 1)).first { good[$0] == 0xFF && good[$0 + 1] == 0xDA }!
        let cut = Array(good.prefix(sos + 2 + Int(good[sos + 2]) << 8 + Int(good[sos + 3]) + 4)) + [0xFF, 0xD9]
        try expectDecodeError("short-scan.jpg", cut, mentioning: "not a readable JPEG (libjpeg: Corrupt JPEG data")

        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("graft-no-such-\(UUID()).jpg").path
        let error = #expect(throws: DataError.self) { try RGBImage.decodeJPEG(path: missing) }
        #expect(error?.file == missing)
    }

    /// Inputs the JPEG fuzzer found reaching libjpeg's fatal error handler, which used to end the process.
    @Test func fuzzerFindingsThrow() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/jpeg-regressions")
        let expected = ["invalid-component-in-sos.jpg": "Invalid component ID 1 in SOS",
                        "second-scan-in-baseline.jpg": "Corrupt JPEG data"]
        for (name, phrase) in expected {
            try expectDecodeError(name, [UInt8](try Data(contentsOf: folder.appendingPathComponent(name))),
                                  mentioning: phrase)
        }
    }

    @Test func hugeDimensionsAreRefusedBeforeAllocation() throws {
        var bytes = tinyJPEG("gray").bytes
        let sof = (0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 }!
        bytes.replaceSubrange((sof + 5)..<(sof + 9), with: [0xFF, 0x00, 0xFF, 0x00])  // 65280 × 65280
        try expectDecodeError("huge.jpg", bytes, mentioning: "65280 × 65280 pixels is over the limit")
    }

    @Test(.enabled(if: photosPresent, photosMissing))
    func truncatedPhotoThrows() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(imagesDirectory)/flower.jpg")))
        try expectDecodeError("flower-cut.jpg", Array(bytes.prefix(bytes.count * 3 / 5)), mentioning: "Premature end")
    }
}
