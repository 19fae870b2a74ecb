import ArgumentParser
import Foundation
import GraftCore
import GraftData
import GraftNN
import GraftOptim
import GraftTrain

/// Trains an MLP on a labelled CSV (MNIST-5k by default) and prints loss and accuracy per epoch.
struct MLPDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlp", abstract: "Train a 784-512-512-10 MLP on MNIST-5k (or another labelled CSV).")

    @Option(help: "Headerless CSV: pixel columns, then the label.") var csv: String
    @Option(help: "Multiply every feature by this (1/255 for 8-bit pixels).") var scale: Float = 1.0 / 255
    @Option(help: "Hidden layer widths, comma-separated.") var hidden: String = "512,512"
    @Option(help: "Passes over the training rows.") var epochs: Int = 8
    @Option(help: "Rows per step.") var batchSize: Int = 128
    @Option(help: "SGD learning rate.") var learningRate: Float = 0.05
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Option(help: "Fraction of rows held out for testing (stratified).") var testFraction: Double = 0.2
    @Option(help: "Seed for the split, the initial weights and the shuffling.") var seed: UInt64 = 0

    func validate() throws {
        guard epochs > 0, batchSize > 0 else { throw ValidationError("--epochs and --batch-size must be positive") }
        guard learningRate > 0 else { throw ValidationError("--learning-rate must be positive, got \(learningRate)") }
        guard (0..<1).contains(momentum) else { throw ValidationError("--momentum must be in [0, 1), got \(momentum)") }
        guard testFraction > 0, testFraction < 1 else { throw ValidationError("--test-fraction must be in (0, 1)") }
        guard (try? parseHidden()) != nil else { throw ValidationError("--hidden must be positive integers, got '\(hidden)'") }
    }

    private func parseHidden() throws -> [Int] {
        let sizes = hidden.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.count == hidden.split(separator: ",").count, sizes.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("bad --hidden")
        }
        return sizes
    }

    func run() throws {
        let data = try LabelledData.csv(csv, scale: scale)
        let (train, test) = data.stratifiedSplit(heldOut: testFraction, seed: seed)
        print("data: \(csv): \(data.count) rows, \(data.featureCount) features, \(data.classCount) classes; "
              + "train \(train.count), test \(test.count)")
        var rng = RandomGenerator(seed: seed)
        let sizes = [data.featureCount] + (try parseHidden()) + [data.classCount]
        let model = MLP(sizes: sizes, using: &rng)
        var options = GroupOptions(learningRate: learningRate)
        options.momentum = momentum
        let sgd = try SGD(groups: [ParameterGroup(name: "all", parameters: model.namedParameters(), options: options)])
        print("model: MLP \(sizes.map(String.init).joined(separator: "-")), \(model.parameterCount()) parameters")
        for epoch in 1...epochs {
            let start = Date()
            var order = Array(0..<train.count)
            order.shuffle(using: &rng)
            var lossSum: Double = 0, seen = ConfusionMatrix(classes: data.classCount)
            for lo in stride(from: 0, to: order.count, by: batchSize) {
                let (x, y) = train.batch(order[lo..<min(lo + batchSize, order.count)])
                sgd.zeroGradients()
                let logits = model(x)
                let loss = Tensor.crossEntropy(logits, targets: y)
                loss.backward()
                sgd.step()
                lossSum += Double(loss.item) * Double(y.count)
                seen.add(logits: logits, targets: y)
            }
            let tested = evaluate(model, test, classes: data.classCount)
            print(String(format: "epoch %2d  loss %.4f  train acc %.2f%%  test acc %.2f%%  test macro-F1 %.3f  (%.2f s)", epoch,
                         lossSum / Double(train.count), 100 * seen.accuracy, 100 * tested.accuracy, tested.macroF1,
                         Date().timeIntervalSince(start)))
        }
    }

    private func evaluate(_ model: MLP, _ data: LabelledData, classes: Int) -> ConfusionMatrix {
        withNoGrad {
            var matrix = ConfusionMatrix(classes: classes)
            for lo in stride(from: 0, to: data.count, by: 512) {
                let (x, y) = data.batch(Array(lo..<min(lo + 512, data.count))[...])
                matrix.add(logits: model(x), targets: y)
            }
            return matrix
        }
    }
}
