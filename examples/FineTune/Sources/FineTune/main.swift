// Pretrained MiniLM, a new head on its frozen body, BBC News: the README's 30-line example.
import Foundation
import GraftCore
import GraftData
import GraftNN
import GraftTrain

let assets = ProcessInfo.processInfo.environment["GRAFT_ASSETS"] ?? ".cache/assets"
let bert = try BertModel(pretrained: "\(assets)/minilm")
let tokenizer = try WordPieceTokenizer(vocabularyFile: "\(assets)/minilm/vocab.txt")
let (texts, _) = try TextDataset.folder("\(assets)/bbcnews")
let (train, heldOut) = texts.stratifiedSplit(heldOut: [0.2], seed: 0)

func batches(_ data: TextDataset, shuffle: Bool) -> Batches {
    let tokens = tokenizer.encodeBatch(data.texts, maxLength: 128, padding: .longest)
    return Batches(inputs: Tensor(tokens.ids.map(Float.init), shape: tokens.shape), labels: data.labels,
                   batchSize: 32, shuffle: shuffle)
}

var rng = RandomGenerator(seed: 0)
let model = BertClassifier(bert, classes: texts.classNames.count, pooling: .normalizedMean, padId: tokenizer.padId,
                           using: &rng)
let tuner = try FineTuner(model: model, strategy: .featureExtraction(lr: 1e-2), configuration: .init(epochs: 10))
for report in try tuner.fit(batches(train, shuffle: true)) {
    print("epoch \(report.epoch + 1): training loss \(report.trainLoss)")
}
let test = try tuner.trainer.evaluate(batches(heldOut[0], shuffle: false))
print("test accuracy \(test.accuracy)")
