import Foundation
import GraftCore
import Testing
@testable import GraftData

/// The fixed 3 × 12 × 10 image the torchvision fixtures start from (0–255 values).
private let input = FloatImage(channels: 3, height: 12, width: 10,
                               values: (imageDataFixtures["transform_input"] as! [Double]).map(Float.init))

private func reference(_ name: String) -> (shape: [Int], values: [Float]) {
    let entry = (imageDataFixtures["transforms"] as! [String: Any])[name] as! [String: Any]
    return (entry["shape"] as! [Int], (entry["values"] as! [Double]).map(Float.init))
}

private func expectClose(_ image: FloatImage, _ name: String, tolerance: Float = 1e-3) {
    let (shape, values) = reference(name)
    #expect(image.shape == shape, "\(name): shape \(image.shape), torchvision \(shape)")
    guard image.shape == shape else { return }
    let worst = zip(image.values, values).map { abs($0 - $1) }.max() ?? 0
    #expect(worst <= tolerance, "\(name): differs from torchvision by up to \(worst)")
}

@Suite struct TorchvisionParityTests {
    @Test func resize() {
        expectClose(input.resized(height: 7, width: 5), "resize_7x5")
        expectClose(input.resized(shorterSide: 6), "resize_shorter_6")
        expectClose(input.resized(height: 15, width: 13), "resize_up_15x13")
    }

    @Test func centerCropAndFlip() {
        expectClose(input.centerCropped(height: 5, width: 4), "center_crop_5x4", tolerance: 0)
        expectClose(input.centerCropped(height: 7, width: 7), "center_crop_7x7", tolerance: 0)
        expectClose(input.flippedHorizontally(), "hflip", tolerance: 0)
    }

    @Test func affineAndRotation() {
        expectClose(input.affine(angle: 30, translate: (2, -1), scale: 1.1), "affine", tolerance: 0)
        // Parameters with no source coordinate exactly halfway between two pixels: there nearest-neighbour rounding
        // depends on the last bit of torch's Float32 arithmetic.
        expectClose(input.affine(angle: 0, scale: 0.8), "affine_scale_only", tolerance: 0)
        expectClose(input.affine(angle: 15, translate: (1, 0), scale: 0.9, shear: (12, -8)), "affine_shear", tolerance: 0)
        // F.rotate(angle) turns the other way from F.affine(angle).
        expectClose(input.affine(angle: -20), "rotate_20", tolerance: 0)
    }

    @Test func colour() {
        expectClose(input.adjustingBrightness(1.3), "brightness_1.3")
        expectClose(input.adjustingContrast(0.6), "contrast_0.6")
        expectClose(input.adjustingSaturation(1.7), "saturation_1.7")
        expectClose(input.adjustingHue(0.2), "hue_0.2", tolerance: 5e-3)
        expectClose(input.adjustingHue(-0.35), "hue_-0.35", tolerance: 5e-3)
        expectClose(input.grayscale(channels: 3), "grayscale_3")
        let grey = FloatImage(channels: 1, height: 12, width: 10, values: Array(input.values[0..<120]))
        expectClose(grey.adjustingContrast(0.6), "grey_contrast_0.6")
    }

    @Test func normalizationPresets() {
        let out = ImagePipeline(normalization: .imagenet).apply(input.tensor.reshaped([1, 3, 12, 10]), rows: [0], seed: 0, epoch: 0)
        expectClose(FloatImage(out.reshaped([3, 12, 10])), "normalize_imagenet", tolerance: 1e-5)
        let pixel = Tensor([255, 0, 127], shape: [1, 3, 1, 1])
        func normalised(_ n: Normalization) -> [Float] { ImagePipeline(normalization: n).apply(pixel, rows: [0], seed: 0, epoch: 0).scalars }
        let caffe: [Float] = [127 - 103.939, 0 - 116.779, 255 - 123.68]  // BGR
        #expect(normalised(.caffe) == caffe)
        let lite: [Float] = [1, -127.0 / 128, 0]
        #expect(normalised(.efficientNetLite) == lite)
        let unit: [Float] = [1, 0, 127.0 / 255]
        #expect(normalised(.none) == unit)
        #expect(!Normalization.imagenet.accepts(channels: 1) && Normalization.none.accepts(channels: 1))
    }
}

@Suite struct AugmentationTests {
    static let pipeline = ImagePipeline([
        .randomResizedCrop(height: 8, width: 8, scale: 0.08...1, ratio: 0.75...(4.0 / 3)),
        .horizontalFlip(p: 0.5),
        .randomAffine(degrees: 15, translate: [0.1, 0.1], scale: 0.9...1.1),
        .colorJitter(brightness: 0.8...1.2, contrast: 0.8...1.2, saturation: 0.8...1.2, hue: -0.05...0.05),
    ], normalization: .imagenet)

    static let rows: Tensor = {
        var rng = RandomGenerator(seed: 3)
        return Tensor((0..<(7 * 3 * 12 * 10)).map { _ in Float(rng.next() % 256) }, shape: [7, 3, 12, 10])
    }()

    @Test func dependsOnSeedEpochAndRowOnly() {
        let p = Self.pipeline, all = Array(0..<7)
        let a = p.apply(Self.rows, rows: all, seed: 5, epoch: 2)
        #expect(a.shape == [7, 3, 8, 8])
        #expect(a.scalars == p.apply(Self.rows, rows: all, seed: 5, epoch: 2).scalars)
        #expect(a.scalars != p.apply(Self.rows, rows: all, seed: 5, epoch: 3).scalars)
        #expect(a.scalars != p.apply(Self.rows, rows: all, seed: 6, epoch: 2).scalars)
        // Row 4 alone is transformed as it is among all the others.
        let alone = p.apply(Self.rows.slice(axis: 0, 4..<5), rows: [4], seed: 5, epoch: 2)
        #expect(alone.scalars == a.slice(axis: 0, 4..<5).scalars)
    }

    @Test func aStepSeesTheSameRowsOnAnyNumberOfRanks() {
        let p = Self.pipeline
        let batches = Batches(inputs: Self.rows, labels: Array(0..<7), batchSize: 5, seed: 9) { x, rows, epoch in
            p.apply(x, rows: rows, seed: 9, epoch: epoch)
        }
        let order = batches.order(epoch: 1)
        for step in 0..<batches.batchCount {
            let whole = batches.batch(order, step: step, epoch: 1)
            for ranks in [2, 3] {
                let parts = (0..<ranks).map { batches.batch(order, step: step, rank: $0, of: ranks, epoch: 1) }
                #expect(parts.flatMap(\.rows) == whole.rows)
                #expect(parts.flatMap { $0.inputs.scalars } == whole.inputs.scalars)
                #expect(parts.allSatisfy { Array($0.inputs.shape.dropFirst()) == [3, 8, 8] })
            }
        }
    }

    @Test func randomResizedCropFallsBackToTheCentre() {
        var rng = RandomGenerator(seed: 1)
        // An area of 120 at aspect 1 is 11 × 11, wider than the image: every attempt fails.
        let r = ImageTransform.resizedCropRegion(height: 12, width: 10, scale: 1...1, ratio: 1...1, using: &rng)
        #expect(r == (1, 0, 10, 10))
        for _ in 0..<50 {
            let r = ImageTransform.resizedCropRegion(height: 12, width: 10, scale: 0.08...1, ratio: 0.75...(4.0 / 3), using: &rng)
            #expect(r.top >= 0 && r.left >= 0 && r.top + r.height <= 12 && r.left + r.width <= 10 && r.height > 0 && r.width > 0)
        }
    }

    @Test func shapesAndDeterministicPipelines() throws {
        let p = ImagePipeline([.resizeShorterSide(6), .centerCrop(height: 6, width: 6), .grayscale(channels: 3)])
        #expect(!p.isRandom && Self.pipeline.isRandom)
        #expect(try p.outputShape([1, 12, 10]).get() == [3, 6, 6])
        guard case .failure = ImagePipeline([.centerCrop(height: 20, width: 4)]).outputShape([3, 12, 10]) else {
            Issue.record("a crop larger than the image was accepted"); return
        }
        guard case .failure = ImagePipeline(normalization: .caffe).outputShape([1, 12, 10]) else {
            Issue.record("caffe normalisation of grey images was accepted"); return
        }
    }
}
