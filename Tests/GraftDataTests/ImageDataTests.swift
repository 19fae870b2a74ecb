import Foundation
import GraftCore
import Testing
@testable import GraftData

/// Pixels and IDX contents the fixtures were made with, and torchvision's transforms of a fixed image
/// (Fixtures/make_image_data_fixtures.py).
nonisolated(unsafe) let imageDataFixtures: [String: Any] = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/image_data_fixtures.json")
    return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
}()

let imageFixtureFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/images").path

private func threw(_ body: () throws -> Void) -> String? {
    do { try body() } catch { return "\(error)" }
    return nil
}

@Suite struct PNGDecodingTests {
    @Test(arguments: ["grey8", "grey16", "grey1", "grey4", "grey_alpha8", "grey_alpha16", "rgb8", "rgb16", "rgba8",
                      "rgba16", "palette"])
    func decodesEveryColourType(_ name: String) throws {
        let expected = imageDataFixtures[name] as! [String: Any]
        let image = try PixelImage.decode(path: "\(imageFixtureFolder)/\(name).png")
        #expect(image.width == 5 && image.height == 4)
        #expect(image.channels == expected["channels"] as! Int)
        #expect(image.pixels.map(Int.init) == expected["pixels"] as! [Int])
    }

    @Test func convertsChannels() throws {
        let grey = try PixelImage.decode(path: "\(imageFixtureFolder)/grey8.png")
        let rgb = grey.converted(toChannels: 3)
        #expect(rgb.channels == 3 && rgb.pixels[0..<3].allSatisfy { $0 == grey.pixels[0] })
        #expect(rgb.converted(toChannels: 1) == grey)  // R = G = B comes back exactly
        let t = rgb.tensor
        #expect(t.shape == [3, 4, 5] && t.scalars[20] == Float(grey.pixels[0]))
    }

    @Test func refusesWhatItCannotDecode() {
        let bad = threw { _ = try PixelImage.decode(path: "\(imageFixtureFolder)/not_a_png.png") }
        #expect(bad?.contains("not_a_png.png: neither a PNG nor a JPEG") == true)
        let truncated = threw { _ = try PixelImage.decode(path: "\(imageFixtureFolder)/truncated.png") }
        #expect(truncated?.contains("truncated.png: not a readable PNG (libpng:") == true, "\(truncated ?? "")")
        #expect(threw { _ = try PixelImage.decode(path: "\(imageFixtureFolder)/missing.png") }?.contains("missing.png") == true)
    }
}

@Suite struct IDXTests {
    @Test(arguments: ["", ".gz"])
    func readsImagesAndLabels(_ suffix: String) throws {
        let expected = imageDataFixtures["idx"] as! [String: Any]
        let data = try IDXImages.read(images: "\(imageFixtureFolder)/good-images-idx3-ubyte\(suffix)",
                                      labels: "\(imageFixtureFolder)/good-labels-idx1-ubyte\(suffix)")
        #expect(data.images.shape == [3, 4, 5] && data.labels == expected["labels"] as! [Int])
        #expect(data.images.values.map(Int.init) == expected["images"] as! [Int])
        let rows = data.tensor(rows: [2, 0], channels: 3, size: (8, 10))
        #expect(rows.shape == [2, 3, 8, 10])
        let plain = data.tensor(rows: [2], channels: 1)
        #expect(plain.scalars == (expected["images"] as! [Int])[40..<60].map(Float.init))
    }

    @Test func derivesTheLabelsFile() {
        #expect(IDXImages.labelsPath(forImages: "/d/train-images-idx3-ubyte.gz") == "/d/train-labels-idx1-ubyte.gz")
        #expect(IDXImages.labelsPath(forImages: "t10k-images-idx3-ubyte") == "t10k-labels-idx1-ubyte")
        #expect(IDXImages.labelsPath(forImages: "/d/pictures.idx") == nil)
    }

    @Test func refusesTruncatedAndLyingFiles() {
        let truncated = threw { _ = try IDXFile.read("\(imageFixtureFolder)/truncated-images-idx3-ubyte") }
        #expect(truncated?.contains("truncated-images-idx3-ubyte: the header declares [3, 4, 5] = 60 values but 53 bytes follow it (truncated?)") == true,
                "\(truncated ?? "")")
        let lying = threw { _ = try IDXFile.read("\(imageFixtureFolder)/lying-images-idx3-ubyte") }
        #expect(lying?.contains("lying-images-idx3-ubyte: the header declares [4294967295, 4294967295, 4294967295]") == true,
                "\(lying ?? "")")
        let gz = threw { _ = try IDXFile.read("\(imageFixtureFolder)/truncated-images-idx3-ubyte.gz") }
        #expect(gz?.contains("truncated-images-idx3-ubyte.gz: not a readable gzip file") == true, "\(gz ?? "")")
        let png = threw { _ = try IDXFile.read("\(imageFixtureFolder)/rgb8.png") }
        #expect(png?.contains("rgb8.png: not an IDX file") == true, "\(png ?? "")")
        let pair = threw {
            _ = try IDXImages.read(images: "\(imageFixtureFolder)/good-images-idx3-ubyte",
                                   labels: "\(imageFixtureFolder)/good-images-idx3-ubyte.gz")
        }
        #expect(pair?.contains("labels are one dimension") == true, "\(pair ?? "")")
    }

    @Test func readsFashionMNISTWhenInstalled() throws {
        let path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
        guard FileManager.default.fileExists(atPath: path) else { return }  // apt-get install dataset-fashion-mnist
        let data = try IDXImages.read(images: path, labels: IDXImages.labelsPath(forImages: path)!)
        #expect(data.images.shape == [10000, 28, 28] && Set(data.labels) == Set(0..<10))
    }
}

@Suite struct ImageFolderTests {
    /// root/<class>/<files>: two classes of small PNGs in other colour types, a note file, a nested folder.
    static func makeFolder() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("graft-imagefolder-\(UUID().uuidString)").path
        let fm = FileManager.default
        for (cls, files) in [("cat", ["rgb8.png", "palette.png"]), ("ant", ["grey8.png"])] {
            try fm.createDirectory(atPath: "\(root)/\(cls)/nested", withIntermediateDirectories: true)
            for f in files { try fm.copyItem(atPath: "\(imageFixtureFolder)/\(f)", toPath: "\(root)/\(cls)/\(f)") }
        }
        try fm.copyItem(atPath: "\(imageFixtureFolder)/rgba16.png", toPath: "\(root)/ant/nested/z.PNG")
        try Data("notes".utf8).write(to: URL(fileURLWithPath: "\(root)/cat/readme.txt"))
        return root
    }

    @Test func listsAndLoadsLikeTorchvision() throws {
        let root = try Self.makeFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = try ImageFolder.list(root)
        #expect(folder.classNames == ["ant", "cat"])
        #expect(folder.files.map { String($0.dropFirst(root.count + 1)) } == ["ant/grey8.png", "ant/nested/z.PNG", "cat/palette.png", "cat/rgb8.png"])
        #expect(folder.labels == [0, 0, 1, 1] && folder.skipped.count == 1)
        let images = try folder.images(channels: 3, height: 8, width: 6)
        #expect(images.shape == [4, 3, 8, 6])
        let same = try folder.subset([3]).images(channels: 3, height: 4, width: 5)
        let rgb = imageDataFixtures["rgb8"] as! [String: Any]
        #expect(same.scalars == PixelImage(width: 5, height: 4, channels: 3, pixels: (rgb["pixels"] as! [Int]).map(UInt8.init)).tensor.scalars)
    }

    @Test func namesTheFileItCannotDecode() throws {
        let root = try Self.makeFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.copyItem(atPath: "\(imageFixtureFolder)/truncated.png", toPath: "\(root)/cat/broken.png")
        let error = threw { _ = try ImageFolder.list(root).images(channels: 1, height: 4, width: 4) }
        #expect(error?.contains("cat/broken.png: not a readable PNG") == true, "\(error ?? "")")
        let empty = threw { _ = try ImageFolder.list(imageFixtureFolder) }
        #expect(empty?.contains("no class sub-folders") == true)
    }
}
