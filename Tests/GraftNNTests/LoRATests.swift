import Foundation
import Testing
import GraftCore
import GraftIO
@testable import GraftNN

/// LoRA layers: gradients against central differences, parity with Hugging Face PEFT on a tiny BERT (fixture made by
/// Fixtures/make_lora_fixtures.py), merging, and injection by target names.
@Suite struct LoRATests {
    /// A LoRALinear [5 → 4], r 3, α 6 (scaling 2), with a non-zero B.
    private func layer(dropout: Float = 0, seed: UInt64 = 1) -> LoRALinear {
        var rng = RandomGenerator(seed: seed)
        let base = Linear(5, 4, using: &rng)
        let lora = LoRALinear(base, LoRAConfiguration(rank: 3, alpha: 6, dropout: dropout), using: &rng)
        let b = Tensor.randomNormal([4, 3], using: &rng)
        lora.loraB.weight.pointer.update(from: b.pointer, count: b.count)
        return lora
    }

    /// Autograd's gradients of ⟨lora(x), w⟩ with respect to x, A and B equal central differences computed in
    /// Double, element by element (|analytic − numeric| ≤ 1e-3 + 1e-3·|numeric|); W and b, frozen, get none.
    @Test(arguments: [Float(0), 0.5]) func gradientsMatchFiniteDifferences(dropout: Float) {
        let lora = layer(dropout: dropout)
        var rng = RandomGenerator(seed: 2)
        let x = Tensor.randomNormal([2, 3, 5], using: &rng, requiresGrad: true)
        let w = Tensor.randomNormal([2, 3, 4], using: &rng)
        // Dropout keyed on the rows is the same mask on every call, so the objective is a fixed function.
        let keys: [UInt64] = [11, 12]
        let objective = { BatchRowKeys.$current.withValue(keys) { (lora(x) * w).sum() } }
        let inputs = [x, lora.loraA.weight, lora.loraB.weight]
        let analytic = grad(of: objective(), wrt: inputs)
        #expect(lora.base.weight.requiresGrad == false && lora.base.bias?.requiresGrad == false)
        for (k, t) in inputs.enumerated() {
            for i in 0..<t.count {
                let saved = t.pointer[i]
                let eps: Float = 1e-2
                t.pointer[i] = saved + eps
                let up = Double(withNoGrad(objective).item)
                t.pointer[i] = saved - eps
                let down = Double(withNoGrad(objective).item)
                t.pointer[i] = saved
                let numeric = (up - down) / (2 * Double(eps))
                let a = Double(analytic[k].pointer[i])
                #expect(abs(a - numeric) <= 1e-3 + 1e-3 * abs(numeric), "input \(k) element \(i): \(a) vs \(numeric)")
            }
        }
        (objective()).backward()
        #expect(lora.base.weight.grad == nil && lora.base.bias?.grad == nil)
    }

    /// A fresh adapter (B = 0) leaves the output unchanged; A starts as nn.Linear's default, U(±1/√in).
    @Test func freshAdapterIsTheIdentityUpdate() {
        var rng = RandomGenerator(seed: 4)
        let base = Linear(64, 6, using: &rng)
        let x = Tensor.randomNormal([3, 64], using: &rng)
        let before = base(x).scalars
        let lora = LoRALinear(base, using: &rng)
        #expect(lora(x).scalars == before)
        #expect(lora.loraA.weight.shape == [8, 64] && lora.loraB.weight.shape == [6, 8])
        #expect(lora.loraB.weight.scalars.allSatisfy { $0 == 0 })
        let a = lora.loraA.weight.scalars, bound = 1 / Float(64).squareRoot()
        #expect(a.allSatisfy { abs($0) <= bound } && a.map(abs).max()! > 0.9 * bound)
        #expect(lora.configuration.scaling == 1)
    }

    /// merge() folds the update into W: the merged forward equals the unmerged one, and unmerge() restores W.
    @Test func mergeEqualsTheUnmergedForward() {
        let lora = layer()
        var rng = RandomGenerator(seed: 5)
        let x = Tensor.randomNormal([7, 5], using: &rng)
        let w = lora.base.weight.scalars
        let unmerged = lora(x).scalars
        let mergedWeight = lora.mergedWeight().scalars
        lora.merge()
        #expect(lora.isMerged && lora.base.weight.scalars == mergedWeight)
        expectClose(lora(x).scalars, unmerged, rtol: 1e-5, atol: 1e-5)
        // The same as a plain Linear with the merged weight.
        expectClose(Tensor.linear(x, weight: Tensor(mergedWeight, shape: [4, 5]), bias: lora.base.bias).scalars,
                    unmerged, rtol: 1e-5, atol: 1e-5)
        lora.unmerge()
        expectClose(lora.base.weight.scalars, w, rtol: 0, atol: 1e-6)
        expectClose(lora(x).scalars, unmerged, rtol: 1e-5, atol: 1e-5)
    }

    /// The fixture's BERT, its adapters as PEFT saved them, and the tensors PEFT computed.
    private func peftFixture() throws -> (model: BertModel, file: [String: Tensor]) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/lora_bert_tiny.safetensors")
        let file = Dictionary(uniqueKeysWithValues: try SafeTensorsFile(path: url.path).tensors())
        var config = BertConfig()
        (config.vocabularySize, config.hidden, config.layers, config.heads) = (50, 16, 2, 4)
        (config.intermediate, config.maxPositions) = (32, 20)
        var rng = RandomGenerator(seed: 0)
        let model = BertModel(config, using: &rng)
        model.eval()
        let base = file.filter { $0.key.hasPrefix("base.") }
        try model.load(Dictionary(uniqueKeysWithValues: base.map { (String($0.key.dropFirst(5)), $0.value) }), strict: true)
        let wrapped = try model.injectLoRA(targets: ["query", "value"], LoRAConfiguration(rank: 4, alpha: 8), using: &rng)
        #expect(wrapped == ["encoder.layer.0.attention.self.query", "encoder.layer.0.attention.self.value",
                            "encoder.layer.1.attention.self.query", "encoder.layer.1.attention.self.value"])
        // PEFT's adapter file names the tensors `base_model.model.<path>.lora_A.weight`: Graft's names under a prefix.
        let adapter = file.filter { $0.key.hasPrefix("adapter.") }.map { (String($0.key.dropFirst("adapter.base_model.model.".count)), $0.value) }
        let report = try model.load(Dictionary(uniqueKeysWithValues: adapter), strict: false)
        #expect(report.unexpected.isEmpty && report.mismatched.isEmpty && report.loaded.count == 8)
        return (model, file)
    }

    /// Output and adapter gradients of a LoRA-wrapped BERT equal PEFT's, element by element.
    @Test func matchesPEFT() throws {
        let (model, file) = try peftFixture()
        let ids = Indices(file["ids"]!.scalars.map { Int($0) }, shape: [2, 7])
        let mask = file["mask"]!
        let hidden = model(ids, mask: mask)
        let keep = mask.unsqueezed(-1)
        // Padded positions are not compared: nothing reads them.
        expectClose((hidden * keep).scalars, (file["hidden"]! * keep).scalars, rtol: 1e-4, atol: 2e-5)
        (hidden * file["probe"]! * keep).sum().backward()
        let parameters = Dictionary(uniqueKeysWithValues: model.namedParameters())
        var compared = 0
        for (key, expected) in file where key.hasPrefix("grad.") {
            let name = String(key.dropFirst("grad.base_model.model.".count))
            let g = try #require(parameters[name]?.grad, "no gradient for \(name)")
            expectClose(g.scalars, expected.scalars, rtol: 1e-3, atol: 1e-4)
            compared += 1
        }
        #expect(compared == 8)
        // The wrapped layers' own weights and biases are frozen: no gradient.
        for (_, layer) in model.loraLayers() {
            #expect(layer.base.weight.grad == nil && layer.base.bias?.grad == nil)
        }
    }

    /// mergedStateDict() has the plain model's keys and PEFT's merge_and_unload weights; loaded into a BERT without
    /// adapters it gives the adapted output.
    @Test func mergedWeightsMatchPEFT() throws {
        let (model, file) = try peftFixture()
        let merged = model.mergedStateDict()
        #expect(!merged.contains { $0.0.contains("lora_") })
        for (key, t) in merged {
            let expected = try #require(file["merged.\(key)"], "PEFT's merged model has no \(key)")
            expectClose(t.scalars, expected.scalars, rtol: 1e-5, atol: 1e-6)
        }
        var rng = RandomGenerator(seed: 9)
        let plain = BertModel(model.config, using: &rng)
        try plain.load(Dictionary(uniqueKeysWithValues: merged), strict: true)
        plain.eval()
        let ids = Indices(file["ids"]!.scalars.map { Int($0) }, shape: [2, 7])
        let keep = file["mask"]!.unsqueezed(-1)
        expectClose((plain(ids, mask: file["mask"]!) * keep).scalars, (model(ids, mask: file["mask"]!) * keep).scalars,
                    rtol: 1e-4, atol: 1e-5)
    }

    /// On MiniLM-L6's shapes (hidden 384, 6 layers), LoRA r 8 on query and value adds 6 × 2 × (8·384 + 384·8) =
    /// 73,728 parameters, the only trainable ones in the encoder.
    @Test func miniLMQueryValueCount() throws {
        var config = BertConfig()
        (config.vocabularySize, config.hidden, config.layers, config.heads, config.intermediate) = (100, 384, 6, 12, 1536)
        var rng = RandomGenerator(seed: 0)
        let bert = BertModel(config, using: &rng)
        let total = bert.parameterCount()
        try bert.injectLoRA(targets: ["query", "value"], LoRAConfiguration(), using: &rng)
        #expect(bert.parameterCount() == total + 73_728)
        // The 12 wrapped layers' weights and biases are frozen, nothing else.
        #expect(bert.namedParameters().filter { !$0.1.requiresGrad }.count == 24)
    }

    /// Targets match a whole path or its tail after a dot; a target that names no Linear, or one whose parent cannot
    /// take a replacement, is an error naming it; excluded paths (the head) are never wrapped.
    @Test func injectionByTargets() throws {
        var rng = RandomGenerator(seed: 3)
        let mlp = MLP(sizes: [4, 8, 8, 3], using: &rng)
        // The head is excluded: a target that names only it names nothing.
        #expect(throws: LoRAError.self) { try mlp.injectLoRA(targets: ["4"], excluding: ["layers.4"], LoRAConfiguration(), using: &rng) }
        let wrapped = try mlp.injectLoRA(targets: ["0", "layers.2"], excluding: ["layers.4"], LoRAConfiguration(rank: 2), using: &rng)
        #expect(wrapped == ["layers.0", "layers.2"])
        #expect(mlp.namedParameters().map(\.0) == ["layers.0.weight", "layers.0.bias", "layers.0.lora_A.weight", "layers.0.lora_B.weight",
                                                    "layers.2.weight", "layers.2.bias", "layers.2.lora_A.weight", "layers.2.lora_B.weight",
                                                    "layers.4.weight", "layers.4.bias"])
        #expect(throws: LoRAError.self) { try mlp.injectLoRA(targets: ["query"], LoRAConfiguration(), using: &rng) }
        do {
            try mlp.injectLoRA(targets: ["query"], LoRAConfiguration(), using: &rng)
        } catch let error as LoRAError {
            #expect(error.description.contains("target 'query' matches no Linear layer"))
        }
        var config = BertConfig()
        (config.vocabularySize, config.hidden, config.layers, config.heads, config.intermediate) = (20, 8, 1, 2, 16)
        let bert = BertModel(config, using: &rng)
        // Every Linear of an encoder layer can be wrapped; the pooler's cannot (its parent allows no replacement).
        let all = try bert.injectLoRA(targets: ["key", "output.dense", "intermediate.dense"], LoRAConfiguration(rank: 2), using: &rng)
        #expect(all == ["encoder.layer.0.attention.self.key", "encoder.layer.0.attention.output.dense",
                        "encoder.layer.0.intermediate.dense", "encoder.layer.0.output.dense"])
        #expect(bert.loraLayers().count == 4)
        let ids = Indices([1, 2, 3], shape: [1, 3])
        _ = bert(ids)
        do {
            try bert.injectLoRA(targets: ["pooler.dense"], LoRAConfiguration(), using: &rng)
            Issue.record("wrapping the pooler should fail")
        } catch let error as LoRAError {
            #expect(error.description.contains("cannot wrap 'pooler.dense'"))
        }
    }
}
