import ArgumentParser
import Foundation
import GraftCore
import GraftData

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
        let model = MLP(sizes: [data.featureCount] + (try parseHidden()) + [data.classCount], using: &rng)
        var sgd = SGD(parameterCount: model.parameters.count, learningRate: learningRate, momentum: momentum)
        print("model: MLP \(([data.featureCount] + (try parseHidden()) + [data.classCount]).map(String.init).joined(separator: "-")), "
              + "\(model.parameters.map(\.count).reduce(0, +)) parameters")
        for epoch in 1...epochs {
            let start = Date()
            var order = Array(0..<train.count)
            order.shuffle(using: &rng)
            var lossSum: Double = 0, correct = 0
            for lo in stride(from: 0, to: order.count, by: batchSize) {
                let (x, y) = train.batch(order[lo..<min(lo + batchSize, order.count)])
                for p in model.parameters { p.grad = nil }
                let logits = model(x)
                let loss = Tensor.crossEntropy(logits, targets: y)
                loss.backward()
                sgd.step(model.parameters)
                lossSum += Double(loss.item) * Double(y.count)
                correct += zip(logits.argmax(axis: 1).values, y).filter { $0 == $1 }.count
            }
            let testAccuracy = evaluate(model, test)
            print(String(format: "epoch %2d  loss %.4f  train acc %.2f%%  test acc %.2f%%  (%.2f s)", epoch,
                         lossSum / Double(train.count), 100 * Double(correct) / Double(train.count),
                         100 * testAccuracy, Date().timeIntervalSince(start)))
        }
    }

    private func evaluate(_ model: MLP, _ data: LabelledData) -> Double {
        withNoGrad {
            var correct = 0
            for lo in stride(from: 0, to: data.count, by: 512) {
                let (x, y) = data.batch(Array(lo..<min(lo + 512, data.count))[...])
                correct += zip(model(x).argmax(axis: 1).values, y).filter { $0 == $1 }.count
            }
            return Double(correct) / Double(data.count)
        }
    }
}
