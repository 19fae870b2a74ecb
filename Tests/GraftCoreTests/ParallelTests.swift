import Dispatch
import Synchronization
import Testing
@testable import GraftCore

/// The worker pool behind `parallelChunks` and `shareImages`: every lane exactly once, nested regions and regions
/// from several threads at once (which fall back to libdispatch) all complete with the right results.
@Suite struct WorkerPool {
    @Test func everyLaneRunsOnce() {
        for lanes in 1...max(2, kernelThreads) {
            for _ in 0..<200 {
                let counts = Mutex([Int](repeating: 0, count: lanes))
                runLanes(lanes) { lane in counts.withLock { $0[lane] += 1 } }
                #expect(counts.withLock { $0 } == [Int](repeating: 1, count: lanes))
            }
        }
    }

    @Test func nestedRegionsComplete() {
        let total = Atomic<Int>(0)
        parallelChunks(4, grain: 1) { outer in
            for _ in outer {
                parallelChunks(1000, grain: 1) { inner in total.add(inner.count, ordering: .relaxed) }
            }
        }
        #expect(total.load(ordering: .relaxed) == 4000)
    }

    @Test func regionsFromSeveralThreadsAtOnce() {
        let sums = Mutex([Int](repeating: 0, count: 8))
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for _ in 0..<100 {
                parallelChunks(10_000, grain: 100) { r in
                    let part = r.reduce(0, +)
                    sums.withLock { $0[t] += part }
                }
            }
        }
        #expect(sums.withLock { $0 } == [Int](repeating: 100 * (10_000 * 9_999 / 2), count: 8))
    }
}
