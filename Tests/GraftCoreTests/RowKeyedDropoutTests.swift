import Testing
@testable import GraftCore

/// Dropout whose mask rows come from (seed, row key): the same whichever batch or shard holds the row.
@Suite struct RowKeyedDropout {
    let keys: [UInt64] = [0x9E37_79B9, 17, 4_000_000_007, 3, 0xDEAD_BEEF_0000_0001, 42]

    /// The mask times 1/(1 − p) that `dropout` applies, read off an all-ones input.
    func mask(rows: [UInt64], width: [Int] = [5, 4], p: Float = 0.3, seed: UInt64 = 11) -> [Float] {
        Tensor.ones([rows.count] + width).dropout(p, training: true, rowKeys: rows, seed: seed).scalars
    }

    @Test func aRowsMaskDoesNotDependOnTheRestOfTheBatch() {
        let full = mask(rows: keys), width = 20
        #expect(full.contains(0) && full.contains { $0 != 0 })
        let shard = mask(rows: Array(keys[2...4]))
        #expect(Array(full[2 * width..<5 * width]) == shard)
        // Two ranks' shards, put together, are the one-process batch.
        #expect(mask(rows: Array(keys[..<3])) + mask(rows: Array(keys[3...])) == full)
    }

    @Test func differentKeysOrSeedsGiveDifferentMasks() {
        let width = [64], n = 64
        let a = mask(rows: keys, width: width), b = mask(rows: keys.map { $0 &+ 1 }, width: width)
        let c = mask(rows: keys, width: width, seed: 12)
        for r in 0..<keys.count {
            let row = r * n..<(r + 1) * n
            #expect(a[row] != b[row] && a[row] != c[row], "row \(r)")
        }
        let repeated = mask(rows: [7, 7], width: width)
        #expect(repeated[..<n] == repeated[n...], "the same key twice is the same mask")
    }

    @Test func keepsAboutOneMinusPScaledByItsInverse() {
        let p: Float = 0.3
        let values = mask(rows: (0..<2000).map { UInt64($0) &* 0x1_0000_0001 }, width: [50], p: p)
        let kept = values.filter { $0 != 0 }
        #expect(Swift.abs(Float(kept.count) / Float(values.count) - (1 - p)) < 0.01)
        #expect(kept.allSatisfy { $0 == 1 / (1 - p) })
    }

    @Test func gradientIsMaskTimesScale() {
        let x = sample([6, 3, 2], seed: 1), w = sample([6, 3, 2], seed: 2)
        x.requiresGrad = true
        (x.dropout(0.4, training: true, rowKeys: keys, seed: 5) * w).sum().backward()
        let m = mask(rows: keys, width: [3, 2], p: 0.4, seed: 5)
        #expect(x.grad!.scalars == zip(w.scalars, m).map { $0 * $1 })
        checkGradients([sample([6, 4], seed: 3)]) { $0[0].dropout(0.5, training: true, rowKeys: keys, seed: 9) }
    }

    @Test func evalModeAndZeroProbabilityAreTheIdentity() {
        let x = sample([6, 2], seed: 4)
        #expect(x.dropout(0.5, training: false, rowKeys: keys, seed: 1) === x)
        #expect(x.dropout(0, training: true, rowKeys: keys, seed: 1) === x)
    }

    @Test func rowCountMustMatchTheKeys() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([4, 2]).dropout(0.5, training: true, rowKeys: [1, 2, 3], seed: 0)
        }
        expectMessage("dropout: input [4, 2] has 4 rows but 3 row keys were given", r)
    }
}
