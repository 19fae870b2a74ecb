import Testing
@testable import GraftCore
@testable import GraftNN

/// The Dropout layer with and without batch row keys.
@Suite struct DropoutLayer {
    let keys: [UInt64] = [101, 202, 303, 404, 505, 606]

    func batch(_ rows: Int) -> Tensor { Tensor.ones([rows, 3, 4]) }

    func rows(_ t: Tensor, _ range: Range<Int>) -> [Float] {
        let width = t.count / t.shape[0]
        return Array(t.scalars[range.lowerBound * width..<range.upperBound * width])
    }

    @Test func withRowKeysAShardGetsTheRowsOfTheWholeBatch() {
        let layer = Dropout(0.5, seed: 7)
        let full = BatchRowKeys.$current.withValue(keys) { layer(batch(6)) }
        let shard = BatchRowKeys.$current.withValue(Array(keys[2...4])) { layer(batch(3)) }
        #expect(rows(full, 2..<5) == shard.scalars)
        #expect(full.scalars.contains(0) && full.scalars.contains(2))
        // The masks are a function of (seed, key): another layer made with the same seed draws the same ones,
        // whatever the first layer did before.
        #expect(BatchRowKeys.$current.withValue(keys) { Dropout(0.5, seed: 7)(batch(6)) }.scalars == full.scalars)
        #expect(layer.generator == RandomGenerator(seed: 7), "the keyed path leaves the sequential generator alone")
    }

    @Test func layersWithDifferentSeedsDrawDifferentMasks() {
        let a = BatchRowKeys.$current.withValue(keys) { Dropout(0.5, seed: 1)(batch(6)) }
        let b = BatchRowKeys.$current.withValue(keys) { Dropout(0.5, seed: 2)(batch(6)) }
        for r in 0..<6 { #expect(rows(a, r..<r + 1) != rows(b, r..<r + 1), "row \(r)") }
    }

    @Test func withoutKeysTheSequentialStreamIsUsed() {
        let layer = Dropout(0.5, seed: 7)
        var reference = RandomGenerator(seed: 7)
        #expect(layer(batch(6)).scalars == batch(6).dropout(0.5, training: true, using: &reference).scalars)
        #expect(layer.generator == reference)
    }

    @Test func evalModeIsTheIdentityWithKeys() {
        let layer = Dropout(0.5, seed: 7)
        layer.eval()
        let x = batch(6)
        #expect(BatchRowKeys.$current.withValue(keys) { layer(x) } === x)
    }

    @Test func gradientFollowsTheKeyedMask() {
        let layer = Dropout(0.25, seed: 3), x = Tensor.ones([6, 3, 4], requiresGrad: true)
        let y = BatchRowKeys.$current.withValue(keys) { layer(x) }
        y.sum().backward()
        #expect(x.grad!.scalars == y.scalars)
    }

    @Test func keysThatDoNotFitTheBatchStopWithBothCounts() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = BatchRowKeys.$current.withValue([1, 2, 3]) { Dropout(0.1)(Tensor.zeros([4, 2])) }
        }
        let stderr = String(decoding: r?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("dropout: input [4, 2] has 4 rows but 3 row keys were given"), "stderr was: \(stderr)")
    }
}
