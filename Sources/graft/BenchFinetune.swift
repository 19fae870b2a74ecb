import ArgumentParser
import CBLAS
import Foundation
import GraftCore
import GraftIO
import GraftNN
import GraftOptim

/// Step times of full fine-tuning, head-only training through a frozen body, and head training on cached
/// features, for ResNet-18 (small-image stem, 32×32, batch 64) and MiniLM-L6 (64 tokens, batch 16).
struct BenchFinetune: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "finetune",
                                                    abstract: "Fine-tuning step times: full, head-only, cached features.")

    @Option(help: "Threads for OpenBLAS; Graft's own kernels use every core.") var threads: Int = 2
    @Option(help: "Directory with MiniLM's model.safetensors and config.json.") var minilm: String =
        repositoryRoot.appendingPathComponent(".cache/assets/minilm").path

    func run() throws {
        openblas_set_num_threads(Int32(threads))
        var rng = RandomGenerator(seed: 0)

        let resnet = ResNet(.resnet18, classes: 10, smallImageStem: true, using: &rng)
        let images = Tensor.randomNormal([64, 3, 32, 32], using: &rng)
        let labels = (0..<64).map { _ in Int(rng.next() % 10) }
        try report("ResNet-18, 32×32, batch 64", model: resnet, head: "fc.*",
                   full: { Tensor.crossEntropy(resnet(images), targets: labels) },
                   features: { resnet.features(images) }, head: { resnet.fc($0) }, labels: labels)

        var bertRng = RandomGenerator(seed: 1)
        let bert = BertModel(try BertConfig(file: "\(minilm)/config.json"), using: &bertRng)
        let weights = try SafeTensorsFile(path: "\(minilm)/model.safetensors")
        try bert.load(Dictionary(uniqueKeysWithValues: try weights.tensors()), strict: true, source: weights.path)
        let classifier = BertClassifier(bert, classes: 5, using: &bertRng)
        classifier.dropout.isTraining = false
        let ids = Indices((0..<16 * 64).map { _ in 1000 + Int(bertRng.next() % 20000) }, shape: [16, 64])
        let mask = Tensor.ones([16, 64]), targets = (0..<16).map { _ in Int(bertRng.next() % 5) }
        try report("MiniLM-L6, 64 tokens, batch 16", model: classifier, head: "classifier.*",
                   full: { Tensor.crossEntropy(classifier(ids, mask: mask), targets: targets) },
                   features: { bert.pooled(bert(ids, mask: mask)) }, head: { classifier.classifier($0) }, labels: targets)
    }

    /// Times one SGD step three ways and prints the ratios the fine-tuning design promises.
    private func report(_ title: String, model: Module, head: String, full: () -> Tensor, features: () -> Tensor,
                        head headForward: (Tensor) -> Tensor, labels: [Int]) throws {
        model.train()
        let sgd = try SGD(groups: [ParameterGroup(name: "all", parameters: model.namedParameters(),
                                                  options: GroupOptions(learningRate: 1e-4))])
        func step(_ loss: () -> Tensor) { sgd.zeroGradients(); loss().backward(); sgd.step() }

        let fullTime = secondsPerCall(minimum: 2) { step(full) }
        try model.setFrozen(true, matching: "*")
        try model.setFrozen(false, matching: head)
        model.fixFrozenBatchNorm()
        let headOnly = secondsPerCall(minimum: 2) { step { Tensor.crossEntropy(headForward(features()), targets: labels) } }
        model.eval()
        let cached = withNoGrad { features() }
        let cachedTime = secondsPerCall(minimum: 1) { step { Tensor.crossEntropy(headForward(cached), targets: labels) } }
        try model.setFrozen(false, matching: "*")
        print(title)
        print(String(format: "  full fine-tuning       %8.2f ms/step", fullTime * 1000))
        print(String(format: "  head only, frozen body %8.2f ms/step  (%.2f× of full)", headOnly * 1000, headOnly / fullTime))
        print(String(format: "  head on cached features%8.3f ms/step  (epochs %.0f× faster than head-only)", cachedTime * 1000,
                     headOnly / cachedTime))
    }
}
