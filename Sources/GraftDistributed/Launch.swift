import GraftCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The communicator of how this process was started: MPI's world under `mpirun` (OpenMPI's `OMPI_COMM_WORLD_*`),
/// a PMIx or PMI launcher (`srun --mpi=pmix`, `srun --mpi=pmi2`) or a Slurm step of several tasks; otherwise a
/// single process, without starting MPI at all.
public func launchCommunicator() throws -> any Communicator {
    func has(_ name: String) -> Bool { getenv(name) != nil }
    let slurmTasks = getenv("SLURM_STEP_NUM_TASKS").flatMap { Int(String(cString: $0)) } ?? 1
    let launched = has("OMPI_COMM_WORLD_SIZE") || has("PMIX_RANK") || has("PMI_RANK") || slurmTasks > 1
    return launched ? try MPICommunicator.world() : LocalCommunicator()
}

/// An error that every rank throws alike, at the same point (the same reduced values led to it): rank 0 reports it,
/// the others stop without repeating it, and no rank waits for another.
public protocol CollectiveError: Error {}

/// Another rank failed and reported it; this rank stops without a message of its own.
public struct PeerFailure: Error, CustomStringConvertible {
    public let rank: Int
    public init(rank: Int) { self.rank = rank }
    public var description: String { "rank \(rank) stopped because another rank failed" }
}

/// An error that every rank knows of (the others threw `PeerFailure`), so no rank waits in a collective for it.
public struct AgreedFailure: Error, CustomStringConvertible {
    public let error: any Error
    public init(_ error: any Error) { self.error = error }
    public var description: String { "\(error)" }
}

extension Communicator {
    /// Runs `body` on every rank and agrees on the outcome: a rank that failed throws its error as an
    /// `AgreedFailure`, unless rank 0 failed too and speaks for everyone; the others throw `PeerFailure`.
    public func agree<T>(_ body: () throws -> T) throws -> T {
        let result = Result(catching: body)
        var failed = false
        if case .failure = result { failed = true }
        let failures = try allGather(Int64(failed ? 1 : 0))
        if case let .failure(error) = result, isRoot || failures[0] == 0 { throw AgreedFailure(error) }
        if failures.contains(1) { throw PeerFailure(rank: rank) }
        return try result.get()
    }
}

extension Communicator {
    /// The sum of `tensor` over ranks, as a differentiable op: every rank's output depends on every rank's input,
    /// so the gradient of an input is the sum of the output gradients over ranks. It runs inside a forward or
    /// backward pass, where an error cannot be thrown to a caller; a failed collective ends the whole job.
    public func differentiableSum(_ tensor: Tensor) -> Tensor {
        let output: Tensor
        do { output = try allReduce(tensor.detached()) } catch { abort(reporting: error) }
        return Tensor.custom("sumAcrossRanks", output: output, inputs: [tensor]) { g, needs in
            [needs[0] ? differentiableSum(g) : nil]
        }
    }

    /// Every rank's `rows` [n_r, …] stacked in rank order, [Σ n_r, …], on every rank, for a loss of the whole global
    /// batch (a kernel sum, a covariance) that every rank then computes alike. The gradient of the result goes back
    /// to a rank's own rows only: each rank's share of the summed gradient is the part its rows contribute, so the
    /// gradients summed over ranks are those of one process holding every row. Ends the job if a collective fails.
    public func gatherRows(_ rows: Tensor) throws -> Tensor {
        let width = rows.shape.dropFirst().reduce(1, *)
        let counts = try allGather(Int64(rows.shape[0])).map { Int($0) }
        let offset = counts.prefix(rank).reduce(0, +), total = counts.reduce(0, +)
        // Zeros elsewhere, so the sum over ranks is an exact copy of each rank's rows.
        var buffer = [Float](repeating: 0, count: total * width)
        for i in 0..<(counts[rank] * width) { buffer[offset * width + i] = rows.pointer[i] }
        try allReduce(&buffer)
        let output = Tensor(buffer, shape: [total] + rows.shape.dropFirst())
        let mine = offset..<(offset + counts[rank])
        return Tensor.custom("gatherRows", output: output, inputs: [rows]) { g, needs in
            [needs[0] ? g.slice(axis: 0, mine) : nil]
        }
    }

    /// Prints `error` with this rank's number and ends every rank.
    public func abort(reporting error: any Error) -> Never {
        let text = "[rank \(rank)/\(size)] error: \(error)\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        abort(code: 1)
    }
}
