import GraftCore
import GraftDistributed
import Testing

/// Both communicators, as the world of one process that `swift test` runs in (MPI as a singleton).
enum Implementation: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case local, mpi

    func make(maxChunkBytes: Int = MPICommunicator.defaultMaxChunkBytes) throws -> any Communicator {
        switch self {
        case .local: LocalCommunicator()
        case .mpi: try MPICommunicator.world(maxChunkBytes: maxChunkBytes)
        }
    }

    var broadcastCall: String { self == .local ? "broadcast" : "MPI_Bcast" }
    var testDescription: String { rawValue }
}

@Suite struct SingletonCommunicator {
    @Test(arguments: Implementation.allCases) func isRankZeroOfOne(_ kind: Implementation) throws {
        let comm = try kind.make()
        #expect(comm.rank == 0 && comm.size == 1 && comm.isRoot)
        try comm.barrier()
    }

    @Test(arguments: Implementation.allCases) func allReduceLeavesValues(_ kind: Implementation) throws {
        let comm = try kind.make()
        for op in ReduceOp.allCases {
            var floats: [Float] = [1.5, -2, 0, .greatestFiniteMagnitude, -.leastNonzeroMagnitude]
            let floatsBefore = floats
            try comm.allReduce(&floats, op: op)
            #expect(floats.map(\.bitPattern) == floatsBefore.map(\.bitPattern), "\(op)")
            var doubles: [Double] = [0.1, -1e300, 3]
            try comm.allReduce(&doubles, op: op)
            #expect(doubles == [0.1, -1e300, 3], "\(op)")
            #expect(try comm.allReduce(Int64.min + 1, op: op) == Int64.min + 1, "\(op)")
        }
        var empty: [Float] = []
        try comm.allReduce(&empty, op: .sum)
        #expect(empty.isEmpty)
    }

    @Test(arguments: Implementation.allCases) func broadcastFromRankZeroKeepsValues(_ kind: Implementation) throws {
        let comm = try kind.make()
        var rng = RandomGenerator(seed: 3)
        let tensor = Tensor.randomNormal([7, 5], using: &rng)
        let before = tensor.scalars
        try comm.broadcast(tensor, root: 0)
        #expect(tensor.scalars == before)
        var doubles: [Double] = [1, 2, 3]
        try comm.broadcast(&doubles, root: 0)
        #expect(doubles == [1, 2, 3])
        #expect(try comm.broadcast(bytes: Array("stop at epoch 7".utf8)) == Array("stop at epoch 7".utf8))
        #expect(try comm.broadcast(Int64(42)) == 42)
    }

    @Test(arguments: Implementation.allCases) func allGatherReturnsOwnValue(_ kind: Implementation) throws {
        let comm = try kind.make()
        #expect(try comm.allGather(Int64(17)) == [17])
        #expect(try comm.allGather(-2.5) == [-2.5])
    }

    @Test(arguments: Implementation.allCases) func invalidRootThrowsNamingTheCall(_ kind: Implementation) throws {
        let comm = try kind.make()
        for root in [1, -1, Int.max] {
            var values: [Float] = [1, 2]
            let error = try #require(throws: CommunicatorError.self) { try comm.broadcast(&values, root: root) }
            #expect(error.call == kind.broadcastCall && error.rank == 0 && !error.reason.isEmpty)
            #expect("\(error)".contains(kind.broadcastCall) && "\(error)".contains("rank 0"))
            if kind == .mpi { #expect(error.code != nil) }
            #expect(values == [1, 2])
        }
        // An empty buffer still checks its root.
        var empty: [Float] = []
        #expect(throws: CommunicatorError.self) { try comm.broadcast(&empty, root: 1) }
        // The communicator stays usable after a returned error.
        try comm.barrier()
    }

    @Test(arguments: Implementation.allCases) func tensorReductionsReturnNewTensors(_ kind: Implementation) throws {
        let comm = try kind.make()
        let grad = Tensor([1, -2, 3, 4.5], shape: [2, 2])
        let summed = try comm.allReduce(grad, op: .sum)
        let mean = try comm.allReduceMean(grad)
        #expect(summed.shape == [2, 2] && summed.scalars == grad.scalars)
        #expect(mean.scalars == grad.scalars)
        #expect(summed.storage !== grad.storage && mean.storage !== grad.storage)
    }

    @Test func chunkedMPIReductionCoversEveryElement() throws {
        // 12-byte chunks: 3 floats, so 10 floats go in 4 calls, the last one short.
        let comm = try Implementation.mpi.make(maxChunkBytes: 12)
        var values = (0..<10).map { Float($0) }
        try comm.allReduce(&values, op: .max)
        #expect(values == (0..<10).map { Float($0) })
        var doubles = (0..<5).map { Double($0) }
        try comm.broadcast(&doubles, root: 0)
        #expect(doubles == (0..<5).map { Double($0) })
    }

    @Test func concurrentCallersShareOneWorld() async throws {
        let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { try MPICommunicator.world().allReduce(Int64(1), op: .sum) == 1 ? 0 : 1 } }
            return try await group.reduce(0, +)
        }
        #expect(wrong == 0)
    }
}
