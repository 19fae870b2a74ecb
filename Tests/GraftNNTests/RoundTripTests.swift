import Foundation
import GraftCore
import GraftIO
import GraftNN
import Testing

/// Every zoo model's state dict through a safetensors file and back into a freshly built model: same names in the
/// same order, every value bit for bit; and a checkpoint whose head does not fit loads around the head.
@Suite struct StateDictRoundTrip {
    @Test(arguments: RoundTripModel.allCases)
    func stateDictSurvivesSafeTensorsBitForBit(_ zoo: RoundTripModel) throws {
        let source = zoo.make(seed: 1)
        let target = zoo.make(seed: 2)
        let state = source.stateDict()
        let names = state.map(\.0)
        #expect(names == target.stateDict().map(\.0), "same config, same keys")
        #expect(Set(names).count == names.count, "state-dict names must be unique")

        // Seed-independent initial values (BatchNorm/LayerNorm weight 1, bias 0, running statistics) would pass a
        // load that copied nothing; make every source tensor differ from its target, and add the bit patterns a
        // float-to-float conversion would disturb: −0, a subnormal, infinities, NaNs with payloads (quiet,
        // signalling, negative).
        var rng = RandomGenerator(seed: 99)
        for ((name, s), (_, t)) in zip(state, target.stateDict()) where firstBitDifference(s, t) == nil {
            let noise = Tensor.randomNormal(s.shape, using: &rng)
            s.pointer.update(from: noise.pointer, count: s.count)
            if name.hasSuffix("num_batches_tracked") { s.pointer[0] = 12_345 }
        }
        let special: [UInt32] = [0x8000_0000, 0x0000_0001, 0x7F7F_FFFF, 0x7F80_0000, 0xFF80_0000,
                                 0x7FC0_1234, 0x7F80_0001, 0xFFC0_0042, 0x0080_0000]
        let first = state[0].1
        try #require(first.count >= special.count)
        for (i, bits) in special.enumerated() { first.pointer[i] = Float(bitPattern: bits) }
        for ((name, s), (_, t)) in zip(state, target.stateDict()) {
            #expect(firstBitDifference(s, t) != nil, "\(name) must differ before loading, or the test proves nothing")
        }

        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/\(zoo.rawValue).safetensors"
        try SafeTensors.write(state, to: path)

        let file = try SafeTensorsFile(path: path)
        #expect(file.names == names, "the file keeps the state dict's names and order")
        #expect(file.infos.map(\.shape) == state.map(\.1.shape))
        #expect(file.infos.allSatisfy { $0.dtype == .f32 })
        let tensors = try file.tensors()
        #expect(tensors.map(\.0) == names)

        let report = try target.load(Dictionary(uniqueKeysWithValues: tensors), strict: true, source: path)
        #expect(report.loaded == names && report.isComplete)
        let reloaded = target.stateDict()
        #expect(reloaded.map(\.0) == names)
        var differing: [String] = []
        for ((name, s), (_, t)) in zip(state, reloaded) {
            #expect(s.shape == t.shape, "\(name)")
            if let d = firstBitDifference(s, t) {
                differing.append("\(name)[\(d.index)]: 0x\(String(d.expected, radix: 16)) became 0x\(String(d.found, radix: 16))")
            }
        }
        #expect(differing.isEmpty, "not bit-identical after the round trip: \(differing.prefix(5).joined(separator: "; "))")
    }

    /// A 1000-class ResNet-18 checkpoint into a ResNet-18 whose head was replaced by a 5-class one.
    @Test func headMismatchIsReportedAndTheRestLoads() throws {
        var rng = RandomGenerator(seed: 3)
        let pretrained = ResNet(.resnet18, using: &rng)
        var rng2 = RandomGenerator(seed: 4)
        let model = ResNet(.resnet18, using: &rng2)
        model.replaceHead(classes: 5, using: &rng2)
        // BatchNorm starts at 1, 0 and the unit running statistics whatever the seed: give the checkpoint its own
        // values there so every loaded tensor visibly changes.
        let current = Dictionary(uniqueKeysWithValues: model.stateDict())
        for (name, t) in pretrained.stateDict() where current[name].map({ firstBitDifference(t, $0) == nil }) == true {
            let noise = Tensor.randomUniform(t.shape, low: 0.5, high: 1.5, using: &rng)
            t.pointer.update(from: noise.pointer, count: t.count)
        }
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/resnet18-1000.safetensors"
        try SafeTensors.write(pretrained.stateDict(), to: path)
        let state = Dictionary(uniqueKeysWithValues: try SafeTensorsFile(path: path).tensors())

        let before = model.stateDict().map { ($0.0, snapshot($0.1)) }
        let head: Set = ["fc.weight", "fc.bias"]
        let expectedMismatches = ["fc.weight: [5, 512] in the model, [1000, 512] in the file",
                                  "fc.bias: [5] in the model, [1000] in the file"]

        // Strict: refused, naming both head tensors, and nothing changes.
        let error = #expect(throws: StateDictError.self) { try model.load(state, strict: true, source: path) }
        #expect(error.map { describe($0.report.mismatched) } == expectedMismatches)
        #expect(error?.report.missing.isEmpty == true && error?.report.unexpected.isEmpty == true)
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("fc.weight") && message.contains("fc.bias") && message.contains(path), "\(message)")
        for ((name, old), (_, now)) in zip(before, model.stateDict()) {
            #expect(firstBitDifference(old, now) == nil, "\(name) changed by a refused strict load")
        }

        // Non-strict: exactly the head is reported; every other tensor is the checkpoint's, the head keeps its own.
        let report = try model.load(state, strict: false, source: path)
        #expect(describe(report.mismatched) == expectedMismatches)
        #expect(report.missing.isEmpty && report.unexpected.isEmpty)
        let names = model.stateDict().map(\.0)
        #expect(report.loaded == names.filter { !head.contains($0) })
        #expect(report.loaded.count == 120)
        for ((name, now), (_, old)) in zip(model.stateDict(), before) {
            if head.contains(name) {
                #expect(firstBitDifference(old, now) == nil, "\(name) must keep the new head's values")
            } else {
                let loaded = try #require(state[name])
                #expect(firstBitDifference(old, now) != nil, "\(name) must have changed")
                #expect(firstBitDifference(loaded, now) == nil, "\(name) must be the checkpoint's")
            }
        }
    }
}

/// The zoo, each at a configuration a real run would use (small where the full model adds nothing).
enum RoundTripModel: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case mlp, smallCNN, resnet18SmallImage, resnet50, efficientNetLite0, bertModel, bertClassifier

    var testDescription: String { rawValue }

    func make(seed: UInt64) -> Module {
        var rng = RandomGenerator(seed: seed)
        var tiny = BertConfig()
        (tiny.vocabularySize, tiny.hidden, tiny.layers, tiny.heads, tiny.intermediate, tiny.maxPositions) =
            (50, 16, 2, 2, 32, 32)
        switch self {
        case .mlp: return MLP(sizes: [784, 128, 64, 10], using: &rng)
        case .smallCNN: return SmallCNN(using: &rng)
        case .resnet18SmallImage: return ResNet(.resnet18, classes: 10, smallImageStem: true, using: &rng)
        case .resnet50: return ResNet(.resnet50, using: &rng)
        case .efficientNetLite0: return EfficientNetLite(using: &rng)
        case .bertModel: return BertModel(tiny, using: &rng)
        case .bertClassifier: return BertClassifier(BertModel(tiny, using: &rng), classes: 3, using: &rng)
        }
    }
}

/// The first element whose bit pattern differs (memcmp first, as the big models have millions of elements);
/// nil when the tensors are bit-identical. Different shapes count as a difference at index -1.
private func firstBitDifference(_ expected: Tensor, _ found: Tensor) -> (index: Int, expected: UInt32, found: UInt32)? {
    guard expected.shape == found.shape else { return (-1, 0, 0) }
    if memcmp(expected.pointer, found.pointer, expected.count * MemoryLayout<Float>.size) == 0 { return nil }
    for i in 0..<expected.count where expected.pointer[i].bitPattern != found.pointer[i].bitPattern {
        return (i, expected.pointer[i].bitPattern, found.pointer[i].bitPattern)
    }
    return nil
}

/// A copy of the tensor's values, off the tape.
private func snapshot(_ t: Tensor) -> Tensor {
    let storage = Storage(count: t.count)
    storage.pointer.update(from: t.pointer, count: t.count)
    return Tensor(shape: t.shape, storage: storage)
}

private func describe(_ mismatches: [LoadReport.Mismatch]) -> [String] {
    mismatches.map { "\($0.key): \($0.expected) in the model, \($0.found) in the file" }
}

/// A fresh directory of its own (tests run in parallel).
private func temporaryDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("graft-roundtrip-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}
