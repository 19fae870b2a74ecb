import Foundation
import Testing
@testable import GraftCore
@testable import GraftNN

/// Reads a flat {shape, values} record of a JSON fixture.
func fixtureTensor(_ any: Any?) -> Tensor {
    let d = any as! [String: Any]
    return Tensor((d["values"] as! [Double]).map(Float.init), shape: d["shape"] as! [Int])
}

func loadFixture(_ name: String) throws -> [String: Any] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
    return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
}

func expectClose(_ a: [Float], _ b: [Float], rtol: Float, atol: Float = 1e-5, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, sourceLocation: sourceLocation)
    let bad = zip(a, b).enumerated().first { abs($0.element.0 - $0.element.1) > atol + rtol * abs($0.element.1) }
    #expect(bad == nil, "first mismatch at \(bad?.offset ?? -1): \(bad?.element.0 ?? 0) vs \(bad?.element.1 ?? 0)",
            sourceLocation: sourceLocation)
}

@Suite struct BertParity {
    /// The fixture's tiny BERT with its weights loaded, run on the fixture's tokens: the hidden states (zero at
    /// padding), the pooled output and the gradients of the fixture's probe loss for each parameter it lists,
    /// against Hugging Face's numbers.
    struct TinyRun {
        let f: [String: Any]
        let model: BertModel
        let keys: [String]

        init() throws {
            f = try loadFixture("bert_tiny.json")
            var config = BertConfig()
            let c = f["config"] as! [String: Any]
            config.vocabularySize = c["vocab_size"] as! Int
            config.hidden = c["hidden_size"] as! Int
            config.layers = c["num_hidden_layers"] as! Int
            config.heads = c["num_attention_heads"] as! Int
            config.intermediate = c["intermediate_size"] as! Int
            config.maxPositions = c["max_position_embeddings"] as! Int
            var rng = RandomGenerator(seed: 0)
            model = BertModel(config, using: &rng)
            model.eval()
            let state = (f["state"] as! [String: Any]).mapValues(fixtureTensor)
            let report = try model.load(state, strict: true)
            #expect(report.loaded.count == model.stateDict().count)
            keys = (f["grads"] as! [String: Any]).keys.sorted()
        }

        func callAsFunction() -> (hidden: Tensor, pooled: Tensor, grads: [Tensor]) {
            let shape = f["shape"] as! [Int]
            let ids = Indices(f["ids"] as! [Int], shape: shape), types = Indices(f["types"] as! [Int], shape: shape)
            let keep = Tensor((f["mask"] as! [Int]).map(Float.init), shape: shape)
            let hidden = model(ids, typeIds: types, mask: keep) * keep.unsqueezed(-1)
            let pooled = model.pooled(hidden)
            let loss = (hidden * fixtureTensor(f["probe_hidden"])).sum() + (pooled * fixtureTensor(f["probe_pooled"])).sum()
            let named = Dictionary(uniqueKeysWithValues: model.namedParameters())
            return (hidden, pooled, grad(of: loss, wrt: keys.map { named[$0]! }))
        }

        var expectedHidden: [Float] {
            let shape = f["shape"] as! [Int]
            let keep = Tensor((f["mask"] as! [Int]).map(Float.init), shape: shape).unsqueezed(-1)
            return (fixtureTensor(f["hidden"]) * keep).scalars
        }

        func expectedGradient(_ key: String) -> [Float] {
            fixtureTensor((f["grads"] as! [String: Any])[key]).scalars
        }
    }

    @Test func matchesHuggingFaceBertModel() throws {
        let tiny = try TinyRun()
        let (hidden, pooled, grads) = tiny()
        expectClose(hidden.scalars, tiny.expectedHidden, rtol: 1e-4)
        expectClose(pooled.scalars, fixtureTensor(tiny.f["pooled"]).scalars, rtol: 1e-4)
        for (k, g) in zip(tiny.keys, grads) {
            expectClose(g.scalars, tiny.expectedGradient(k), rtol: 1e-3, atol: 1e-4)
        }
    }

    /// With bf16 matrix products the hidden states stay within bfloat16's precision of Hugging Face's fp32 ones,
    /// and so do the parameter gradients, relative to the largest of each.
    @Test func bf16ProductsStayNearTheFP32Reference() throws {
        let tiny = try TinyRun()
        let (hidden, _, grads) = withMatmulPrecision(.bfloat16) { tiny() }
        func nearby(_ got: [Float], _ want: [Float], _ what: String) {
            let scale = want.map(abs).max() ?? 1
            let worst = zip(got, want).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 0.02 * scale, "\(what): off by \(worst), largest value \(scale)")
        }
        nearby(hidden.scalars, tiny.expectedHidden, "hidden")
        #expect(hidden.scalars != tiny().hidden.scalars, "bf16 changed nothing")
        for (k, g) in zip(tiny.keys, grads) { nearby(g.scalars, tiny.expectedGradient(k), k) }
    }

    @Test func classifierHeadAndBlocks() throws {
        var config = BertConfig()
        (config.vocabularySize, config.hidden, config.layers, config.heads, config.intermediate) = (30, 8, 2, 2, 16)
        var rng = RandomGenerator(seed: 4)
        let model = BertClassifier(BertModel(config, using: &rng), classes: 5, using: &rng)
        #expect(model.blocks.map(\.0) == ["bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1", "bert.pooler", "classifier"])
        #expect(model.namedParameters().last?.0 == "classifier.bias")
        let ids = Indices([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect(model(ids).shape == [2, 5])
        let old = model.classifier.weight
        model.replaceHead(classes: 3, using: &rng)
        #expect(model(ids).shape == [2, 3] && model.classifier.weight !== old)
        #expect(throws: ModuleError.self) { try model.replaceModule(at: "classifier", with: Linear(4, 3, using: &rng)) }
    }

    @Test func tokenTensorInputMasksPaddingAndSplitsIntoFeaturesAndHead() throws {
        var config = BertConfig()
        (config.vocabularySize, config.hidden, config.layers, config.heads, config.intermediate) = (30, 8, 2, 2, 16)
        for pooling in BertPooling.allCases {
            var rng = RandomGenerator(seed: 5)
            let model = BertClassifier(BertModel(config, using: &rng), classes: 3, pooling: pooling, using: &rng)
            model.eval()
            let ids = [7, 3, 9, 0, 0, 4, 5, 6, 2, 1]
            let mask = Tensor(ids.map { $0 == 0 ? 0 : 1 }, shape: [2, 5])
            let direct = model(Indices(ids, shape: [2, 5]), mask: mask)
            let fromTokens = model(Tensor(ids.map(Float.init), shape: [2, 5]))
            #expect(direct.scalars == fromTokens.scalars, "\(pooling)")
            #expect(model.head(model.features(Tensor(ids.map(Float.init), shape: [2, 5]))).scalars == direct.scalars)
            // Padding does not change the first row's logits.
            let alone = model(Tensor([7, 3, 9].map(Float.init), shape: [1, 3]))
            expectClose(alone.scalars, Array(direct.scalars[0..<3]), rtol: 1e-5, atol: 1e-6)
            let blocks = model.blocks.map(\.0)
            #expect(blocks.contains("bert.pooler") == (pooling == .cls), "\(pooling)")
        }
        var rng = RandomGenerator(seed: 5)
        let model = BertClassifier(BertModel(config, using: &rng), classes: 3, pooling: .normalizedMean, using: &rng)
        let f = model.features(Tensor([1, 2, 0].map(Float.init), shape: [1, 3]))
        #expect(abs((f * f).sum().item - 1) < 1e-5)
    }

    @Test func configErrorsNameTheFileAndField() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graft-bert-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("config.json").path
        try #"{"vocab_size": 10, "hidden_size": "wide"}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try BertConfig(file: path) } throws: { "\($0)".contains(path) && "\($0)".contains("hidden_size") }
        #expect { try BertConfig(file: dir.appendingPathComponent("none.json").path) } throws: { "\($0)".contains("none.json") }
    }

    /// A FIFO as config.json is refused before it is opened; opening it would wait for a writer. Should that
    /// regress, a writer comes after 5 s, so the test fails instead of hanging.
    @Test func aFIFOConfigIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graft-bert-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/config.json"
        #expect(mkfifo(fifo, 0o600) == 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + 5) {
            let fd = open(fifo, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
        }
        #expect { try BertConfig(file: fifo) } throws: { "\($0)" == "\(fifo): not a regular file (a FIFO)" }
    }
}
