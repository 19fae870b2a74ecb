import Foundation
import GraftCore
import GraftIO
import GraftNN

/// Forward time of BERT encoders keeping the first N layers of the same weights, for each N of `depths`, measured
/// side by side: rounds alternate between the depths, so a load that comes and goes on a shared machine falls on
/// all of them alike, and each depth's figure is its median round.
func benchDepths(_ depths: [Int], model: String, batch: Int, tokens: Int, rounds: Int = 9) throws {
    let config = try BertConfig(file: "\(model)/config.json")
    if let bad = depths.first(where: { $0 < 1 || $0 > config.layers }) {
        throw ValidationBenchError("--layers \(bad) is not within 1...\(config.layers), the layers of \(model)/config.json")
    }
    let weights = try SafeTensorsFile(path: "\(model)/model.safetensors")
    let tensors = try weights.tensors()
    var rng = RandomGenerator(seed: 0)
    let encoders = try depths.map { depth in
        var c = config
        c.layers = depth
        let bert = BertModel(c, using: &rng)
        let kept = tensors.filter { key, _ in !(depth..<config.layers).contains { key.hasPrefix("encoder.layer.\($0).") } }
        try bert.load(Dictionary(uniqueKeysWithValues: kept), strict: true, source: weights.path)
        bert.eval()
        return bert
    }
    let ids = Indices((0..<batch * tokens).map { _ in 1000 + Int(rng.next() % 20000) }, shape: [batch, tokens])
    let mask = Tensor.ones([batch, tokens])
    for bert in encoders { _ = withNoGrad { bert(ids, mask: mask) } }  // warm-up
    var times = [[Double]](repeating: [], count: depths.count)
    for _ in 0..<rounds {
        for (i, bert) in encoders.enumerated() {
            let start = Date()
            _ = withNoGrad { bert(ids, mask: mask) }
            times[i].append(Date().timeIntervalSince(start))
        }
    }
    let medians = times.map { $0.sorted()[$0.count / 2] }
    for (depth, seconds) in zip(depths, medians) {
        print(String(format: "%d layer%@: %7.1f ms per %d×%d batch (median of %d rounds), %.2f× the speed of %d layer%@",
                     depth, depth == 1 ? " " : "s", seconds * 1000, batch, tokens, rounds, medians[0] / seconds, depths[0],
                     depths[0] == 1 ? "" : "s"))
    }
}

/// A bad benchmark option found once the model's configuration is read.
struct ValidationBenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
