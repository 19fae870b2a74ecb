import GraftCore
import Testing
@testable import GraftData

@Suite struct BatchesTests {
    func data(rows: Int, batch: Int, dropLast: Bool = false) -> Batches {
        Batches(inputs: Tensor((0..<rows).map(Float.init), shape: [rows, 1]), labels: (0..<rows).map { $0 % 3 },
                batchSize: batch, seed: 4, dropLast: dropLast)
    }

    @Test(arguments: [(1259, 40), (10, 3), (7, 4), (5, 8)])
    func everyRowOncePerEpochOnAnyNumberOfRanks(rows: Int, batch: Int) {
        let d = data(rows: rows, batch: batch)
        for ranks in 1...4 {
            for epoch in 0..<2 {
                let order = d.order(epoch: epoch)
                var seen: [Int] = []
                for step in 0..<d.batchCount {
                    let parts = (0..<ranks).map { d.batch(order, step: step, rank: $0, of: ranks) }
                    let global = Array(d.globalRows(order, step: step))
                    // Ranks split the global batch in order, contiguously, sizes within one of each other.
                    #expect(parts.flatMap(\.rows) == global)
                    #expect(parts.allSatisfy { $0.globalCount == global.count })
                    let sizes = parts.map(\.rows.count)
                    #expect(sizes.max()! - sizes.min()! <= 1)
                    // Inputs and labels are the rows' own.
                    for p in parts {
                        #expect(p.inputs.shape == [p.rows.count, 1])
                        #expect(p.inputs.scalars == p.rows.map(Float.init))
                        #expect(p.labels == p.rows.map { $0 % 3 })
                    }
                    seen += global
                }
                #expect(seen.sorted() == Array(0..<rows), "rows \(rows), batch \(batch), \(ranks) ranks, epoch \(epoch)")
            }
        }
    }

    @Test func aRankMayHaveNoRowsInAStep() {
        let d = data(rows: 5, batch: 4)  // the last global batch holds one row
        let order = d.order(epoch: 0)
        let parts = (0..<3).map { d.batch(order, step: 1, rank: $0, of: 3) }
        #expect(parts.map(\.rows.count) == [1, 0, 0])
        #expect(parts[1].inputs.shape == [0, 1] && parts[1].labels.isEmpty && parts[1].globalCount == 1)
    }

    @Test func sharesAreContiguousAndNearEqual() {
        #expect((0..<3).map { Batches.share(10, rank: $0, of: 3) } == [0..<4, 4..<7, 7..<10])
        #expect((0..<4).map { Batches.share(2, rank: $0, of: 4) } == [0..<1, 1..<2, 2..<2, 2..<2])
    }

    @Test func dropLastLeavesOutTheShortBatch() {
        let d = data(rows: 10, batch: 4, dropLast: true)
        #expect(d.batchCount == 2)
        let order = d.order(epoch: 3)
        #expect(Array(d.globalRows(order, step: 1)) == Array(order[4..<8]))
    }

    @Test func evaluationGoesThroughEveryRowInOrder() {
        let d = data(rows: 10, batch: 4, dropLast: true).inOrder
        #expect(d.batchCount == 3 && d.order(epoch: 2) == Array(0..<10))
    }

    @Test func orderDependsOnSeedAndEpochOnly() {
        let d = data(rows: 50, batch: 8)
        #expect(d.order(epoch: 1) == data(rows: 50, batch: 8).order(epoch: 1))
        #expect(d.order(epoch: 1) != d.order(epoch: 2))
        #expect(Batches(inputs: d.inputs, labels: d.labels, batchSize: 8, shuffle: false).order(epoch: 5) == Array(0..<50))
    }
}
