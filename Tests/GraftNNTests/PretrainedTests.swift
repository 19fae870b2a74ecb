import Foundation
import GraftCore
import GraftData
import GraftIO
import GraftNN
import Testing

/// The real pretrained EfficientNet-Lite0 on scikit-learn's two bundled photos, with the reference predictions of
/// /work/shared/ASSETS.md: flower.jpg → 985 "daisy"; china.jpg → 698 "palace", then 442 "bell cote", 663 "monastery".
/// The assets come from `launch/assets.sh efficientnet sklearn`; each test is skipped, naming the missing files,
/// when they are absent.
@Suite struct PretrainedEfficientNet {
    @Test(.enabled(if: missingLite0Assets(for: "flower.jpg").isEmpty, skipMessage(for: "flower.jpg")))
    func flowerIsADaisy() throws {
        let ranked = try classify("flower.jpg")
        #expect(ranked.first?.class == 985, "expected 985 (daisy); top 5: \(describe(ranked))")
    }

    @Test(.enabled(if: missingLite0Assets(for: "china.jpg").isEmpty, skipMessage(for: "china.jpg")))
    func chinaIsAPalaceThenBellCoteThenMonastery() throws {
        let ranked = try classify("china.jpg")
        #expect(ranked.first?.class == 698, "expected 698 (palace); top 5: \(describe(ranked))")
        #expect(ranked.prefix(3).map(\.class) == [698, 442, 663],
                "expected 698 palace, 442 bell cote, 663 monastery; top 5: \(describe(ranked))")
    }
}

/// The asset cache: $GRAFT_ASSETS, else `.cache/assets` in the repository.
private let pretrainedAssetsRoot: String = ProcessInfo.processInfo.environment["GRAFT_ASSETS"]
    ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent(".cache/assets").path

private let lite0WeightsPath = "\(pretrainedAssetsRoot)/efficientnet/efficientnet-lite0.safetensors"

private func photoPath(_ name: String) -> String { "\(pretrainedAssetsRoot)/images/\(name)" }

/// The files a photo's test needs that are not on disk.
private func missingLite0Assets(for photo: String) -> [String] {
    [lite0WeightsPath, photoPath(photo)].filter { !FileManager.default.fileExists(atPath: $0) }
}

private func skipMessage(for photo: String) -> Comment {
    "missing \(missingLite0Assets(for: photo).joined(separator: " and ")): run launch/assets.sh efficientnet sklearn"
}

/// EfficientNet-Lite0 with every tensor of the converted checkpoint loaded strictly, in eval mode.
private func pretrainedLite0() throws -> EfficientNetLite {
    var rng = RandomGenerator(seed: 0)
    let model = EfficientNetLite(using: &rng)
    let file = try SafeTensorsFile(path: lite0WeightsPath)
    let report = try model.load(Dictionary(uniqueKeysWithValues: try file.tensors()), strict: true,
                                source: lite0WeightsPath)
    #expect(report.loaded.count == model.stateDict().count && report.loaded.count == file.infos.count)
    model.eval()
    return model
}

/// The photo as ASSETS.md prepares it: the largest centred square, bilinear resize to 224 × 224,
/// (x − 127) / 128 on every channel, as a [1, 3, 224, 224] NCHW tensor.
private func lite0Input(_ photo: String) throws -> Tensor {
    let image = try RGBImage.decodeJPEG(path: photoPath(photo))
    return image.centerCropSquare().resizedBilinear(width: 224, height: 224)
        .tensor(mean: [127, 127, 127], std: [128, 128, 128])
}

/// ImageNet classes by falling softmax probability.
private func classify(_ photo: String) throws -> [(class: Int, probability: Float)] {
    let x = try lite0Input(photo)
    #expect(x.shape == [1, 3, 224, 224])
    let model = try pretrainedLite0()
    let logits = withNoGrad { model(x) }
    #expect(logits.shape == [1, 1000])
    let probabilities = logits.softmax(axis: -1).scalars
    return probabilities.enumerated().map { (class: $0.offset, probability: $0.element) }
        .sorted { $0.probability > $1.probability }
}

private func describe(_ ranked: [(class: Int, probability: Float)]) -> String {
    ranked.prefix(5).map { "\($0.class) (p \(String(format: "%.4f", $0.probability)))" }.joined(separator: ", ")
}
